-- Tell the servers whose readers follow a run that it has a new event, with a NOTIFY sent in the
-- transaction that writes the event (so it is delivered only once that commits). Only runs that a
-- server follows notify: a NOTIFY serialises the commits of every transaction that sends one
-- (which is why run events did without), so a run nobody follows costs one index probe, not that.

-- The runs followed by each server, by the backend pid of the server's LISTEN connection: rows of a
-- connection that is gone are stale, and a server deletes them when its LISTEN connection starts
-- (they cost at most a needless NOTIFY meanwhile). The nil uuid stands for every run (readers of
-- StreamRunEvents).
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
    IF EXISTS (SELECT FROM run_event_listeners WHERE run_id IN (NEW.run_id, '00000000-0000-0000-0000-000000000000')) THEN
        PERFORM pg_notify('workflowstate_run_events_' || left(md5(TG_TABLE_SCHEMA), 16), NEW.run_id::text || ' ' || pg_current_xact_id()::text);
    END IF;
    RETURN NULL;
END
$$;
