-- Tell the servers whose readers follow a run that it has a new event, with a NOTIFY sent in the
-- transaction that writes the event (so it is delivered only once that commits). Only runs that a
-- server follows for its WatchRun readers notify: a NOTIFY serialises the commits of every
-- transaction that sends one (which is why run events did without; measured again, 16 writers of
-- one insert each went from about 2,700 to about 800 transactions/s when every one notified), so a
-- run nobody follows costs one index probe, and a followed run's writers take turns at commit.
-- StreamRunEvents readers (of every run) are not followed: they would make every write notify.

-- The runs followed by each server, by the backend pid of the server's LISTEN connection: rows of a
-- connection that is gone are stale, and a server deletes them when its LISTEN connection starts
-- (they cost at most a needless NOTIFY meanwhile).
CREATE TABLE {schema}.run_event_listeners (
    run_id       uuid NOT NULL,
    listener_pid integer NOT NULL,
    PRIMARY KEY (run_id, listener_pid)
);

-- The channel is derived from the schema name the same way in server/db/notifications.py; the
-- payload is the run's id and the writing transaction's id (a server whose reader of the run has
-- read past that transaction need not read again). PostgreSQL sends one notification per distinct
-- payload per transaction, however many events of the run the transaction writes.
CREATE OR REPLACE FUNCTION {schema}.record_run_event() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_TABLE_NAME = 'runs' THEN
        INSERT INTO run_events (run_id, status) VALUES (NEW.run_id, NEW.status);
    ELSE
        INSERT INTO run_events (run_id, step_id, step_name, attempt, status)
        VALUES (NEW.run_id, NEW.step_id, NEW.step_name, NEW.attempt, NEW.status);
    END IF;
    IF EXISTS (SELECT FROM run_event_listeners WHERE run_id = NEW.run_id) THEN
        PERFORM pg_notify('workflowstate_run_events_' || left(md5(TG_TABLE_SCHEMA), 16), NEW.run_id::text || ' ' || pg_current_xact_id()::text);
    END IF;
    RETURN NULL;
END
$$;
