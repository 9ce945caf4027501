-- Jobs and their output. Times are Unix nanoseconds, 0 for none.
CREATE TABLE jobs (
	id          INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused, even after Purge
	owner       TEXT    NOT NULL,
	lang        TEXT    NOT NULL,
	name        TEXT    NOT NULL,
	args        TEXT    NOT NULL,                  -- JSON array of strings
	source      BLOB    NOT NULL,
	stdin       BLOB,                              -- NULL: no input
	limits      BLOB,                              -- JSON, opaque
	max_retries INTEGER NOT NULL,
	attempts    INTEGER NOT NULL DEFAULT 0,
	state       TEXT    NOT NULL,
	executor    TEXT    NOT NULL DEFAULT '',
	master      TEXT    NOT NULL DEFAULT '',
	lease       INTEGER NOT NULL DEFAULT 0,
	lease_until INTEGER NOT NULL DEFAULT 0,
	submitted   INTEGER NOT NULL,
	started     INTEGER NOT NULL DEFAULT 0,
	ended       INTEGER NOT NULL DEFAULT 0,
	result      BLOB,                              -- JSON, opaque
	exit_code   INTEGER NOT NULL DEFAULT 0,
	reason      TEXT    NOT NULL DEFAULT '',
	stdout_len  INTEGER NOT NULL DEFAULT 0,
	stderr_len  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX jobs_queued ON jobs (lang, id) WHERE state = 'queued';
CREATE INDEX jobs_running ON jobs (lease_until) WHERE state = 'running';
CREATE INDEX jobs_ended ON jobs (ended) WHERE state IN ('finished', 'cancelled', 'failed');
CREATE INDEX jobs_owner ON jobs (owner, id);
CREATE INDEX jobs_state ON jobs (state, id);

-- Output by stream (1 stdout, 2 stderr) in chunks: data is the bytes from
-- offset off on.
CREATE TABLE output (
	job_id INTEGER NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
	stream INTEGER NOT NULL,
	off    INTEGER NOT NULL,
	data   BLOB    NOT NULL,
	PRIMARY KEY (job_id, stream, off)
);
