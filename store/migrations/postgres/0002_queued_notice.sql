-- A job that becomes queued (submitted, or back in the queue) is also
-- announced with the payload 'queued', which the masters' claimers wait
-- for instead of every change. The id is still sent first: a master of
-- the previous version ignores the new payload and misses nothing.
CREATE OR REPLACE FUNCTION resh_jobs_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF TG_OP = 'DELETE' THEN
		PERFORM pg_notify('resh_jobs', OLD.id::text);
	ELSE
		PERFORM pg_notify('resh_jobs', NEW.id::text);
		IF NEW.state = 'queued' AND (TG_OP = 'INSERT' OR OLD.state <> 'queued') THEN
			PERFORM pg_notify('resh_jobs', 'queued');
		END IF;
	END IF;
	RETURN NULL;
END;
$$;
