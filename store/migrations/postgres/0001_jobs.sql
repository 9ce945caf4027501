-- Jobs and their output. Times are Unix nanoseconds, 0 for none.
CREATE TABLE jobs (
	id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	owner       TEXT    NOT NULL,
	lang        TEXT    NOT NULL,
	name        TEXT    NOT NULL,
	args        TEXT    NOT NULL,                  -- JSON array of strings
	source      BYTEA   NOT NULL,
	stdin       BYTEA,                             -- NULL: no input
	limits      BYTEA,                             -- JSON, opaque
	max_retries INTEGER NOT NULL,
	attempts    INTEGER NOT NULL DEFAULT 0,
	state       TEXT    NOT NULL,
	executor    TEXT    NOT NULL DEFAULT '',
	master      TEXT    NOT NULL DEFAULT '',
	lease       BIGINT  NOT NULL DEFAULT 0,
	lease_until BIGINT  NOT NULL DEFAULT 0,
	submitted   BIGINT  NOT NULL,
	started     BIGINT  NOT NULL DEFAULT 0,
	ended       BIGINT  NOT NULL DEFAULT 0,
	result      BYTEA,                             -- JSON, opaque
	exit_code   INTEGER NOT NULL DEFAULT 0,
	reason      TEXT    NOT NULL DEFAULT '',
	stdout_len  BIGINT  NOT NULL DEFAULT 0,
	stderr_len  BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX jobs_queued ON jobs (lang, id) WHERE state = 'queued';
CREATE INDEX jobs_running ON jobs (lease_until) WHERE state = 'running';
CREATE INDEX jobs_ended ON jobs (ended) WHERE state IN ('finished', 'cancelled', 'failed');
CREATE INDEX jobs_owner ON jobs (owner, id);
CREATE INDEX jobs_state ON jobs (state, id);

-- Output by stream (1 stdout, 2 stderr) in chunks: data is the bytes from
-- offset off on.
CREATE TABLE output (
	job_id BIGINT  NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
	stream INTEGER NOT NULL,
	off    BIGINT  NOT NULL,
	data   BYTEA   NOT NULL,
	PRIMARY KEY (job_id, stream, off)
);

-- Every change of a job is announced on the channel resh_jobs with the
-- job's id, at commit, to the masters LISTENing there.
CREATE FUNCTION resh_jobs_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'DELETE' THEN
		PERFORM pg_notify('resh_jobs', OLD.id::text);
	ELSE
		PERFORM pg_notify('resh_jobs', NEW.id::text);
	END IF;
	RETURN NULL;
END;
$$;
CREATE TRIGGER jobs_notify AFTER INSERT OR UPDATE OR DELETE ON jobs
	FOR EACH ROW EXECUTE FUNCTION resh_jobs_notify();
