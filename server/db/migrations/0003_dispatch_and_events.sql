-- 0003: remote mode (steps handed to workers over StreamStepTasks) and durable run events.

-- When a SCHEDULED attempt becomes due (set by SetStepScheduled, or by an automatic retry after
-- its retry_delay); NULL unless the step is scheduled.
ALTER TABLE {schema}.steps ADD COLUMN not_before timestamptz;
-- The worker running the current attempt through StreamStepTasks, the stream it came over, and
-- when the attempt is declared lost unless that stream's heartbeats move it on. NULL for attempts
-- not handed out by the server.
ALTER TABLE {schema}.steps ADD COLUMN worker_id text;
ALTER TABLE {schema}.steps ADD COLUMN task_stream_id uuid;
ALTER TABLE {schema}.steps ADD COLUMN task_expire_time timestamptz;
UPDATE {schema}.steps SET not_before = scheduled_time WHERE status = 'scheduled';

-- Dispatch looks for due scheduled steps, oldest due first, keeping those of the rpc names a
-- worker serves. (Not (rpc_name, not_before): a worker serving several names would then sort
-- every due step of them on each claim.)
CREATE INDEX steps_due ON {schema}.steps (not_before, step_id) WHERE status = 'scheduled';
-- The sweeper looks for handed-out attempts whose worker stopped heartbeating.
CREATE INDEX steps_task_expiry ON {schema}.steps (task_expire_time) WHERE task_expire_time IS NOT NULL;

-- Every change of a run's status and of a step attempt's status, written by triggers in the
-- transaction that makes the change, so no writer can forget one.
CREATE TABLE {schema}.run_events (
    event_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The writing transaction. Readers order events by (xact_id, event_id) and read only those of
    -- transactions older than every transaction still running: event_id alone is assigned before
    -- commit, so a reader going by it could pass over an event whose transaction commits late.
    xact_id    xid8 NOT NULL DEFAULT pg_current_xact_id(),
    run_id     uuid NOT NULL,
    -- NULL for a run's own status change.
    step_id    uuid,
    step_name  text,
    attempt    integer,
    status     text NOT NULL,
    event_time timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX run_events_order ON {schema}.run_events (xact_id, event_id);
CREATE INDEX run_events_of_run ON {schema}.run_events (run_id, xact_id, event_id);
-- Pruning (--event-retention) deletes the oldest events by time.
CREATE INDEX run_events_by_time ON {schema}.run_events (event_time);

-- No NOTIFY here: a NOTIFY serialises the commits of every transaction that sends one, which cost
-- about a third of the store's write throughput in a measurement; each server polls this table
-- instead (server/events.py), with one cheap query per interval while it has readers.
CREATE FUNCTION {schema}.record_run_event() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_TABLE_NAME = 'runs' THEN
        INSERT INTO run_events (run_id, status) VALUES (NEW.run_id, NEW.status);
    ELSE
        INSERT INTO run_events (run_id, step_id, step_name, attempt, status)
        VALUES (NEW.run_id, NEW.step_id, NEW.step_name, NEW.attempt, NEW.status);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER run_created AFTER INSERT ON {schema}.runs
    FOR EACH ROW EXECUTE FUNCTION {schema}.record_run_event();
CREATE TRIGGER run_status_changed AFTER UPDATE OF status ON {schema}.runs
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION {schema}.record_run_event();
CREATE TRIGGER attempt_created AFTER INSERT ON {schema}.step_attempts
    FOR EACH ROW EXECUTE FUNCTION {schema}.record_run_event();
CREATE TRIGGER attempt_status_changed AFTER UPDATE OF status ON {schema}.step_attempts
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION {schema}.record_run_event();

-- Wake the dispatchers serving a step's rpc_name when an attempt of it is scheduled (the channel
-- is derived from the schema name the same way in server/db/notifications.py). Only schedulings
-- notify, not every state change.
CREATE FUNCTION {schema}.announce_scheduled_step() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('workflowstate_tasks_' || left(md5(TG_TABLE_SCHEMA), 16), NEW.rpc_name);
    RETURN NULL;
END
$$;

CREATE TRIGGER step_scheduled AFTER UPDATE OF status, attempt_count ON {schema}.steps
    FOR EACH ROW WHEN (NEW.status = 'scheduled' AND (OLD.status <> 'scheduled' OR OLD.attempt_count <> NEW.attempt_count))
    EXECUTE FUNCTION {schema}.announce_scheduled_step();
