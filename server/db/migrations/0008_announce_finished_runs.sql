-- 0008: tell every server when a run finishes while workers hold attempts of it, so that the
-- worker streams holding them can send those workers a cancel (CancelRun, or any move of a run
-- out of running).
--
-- NOTIFY, not the run-event pump: the pump runs only while someone watches events, and looks at
-- every event of every run to find the few that matter here; a cancel is rare, so one notification
-- per finished run with held attempts costs nothing on the hot path (a run finished by its
-- workflow after its last step has none: the EXISTS finds no held step and nothing is sent). The
-- channel is derived from the schema name the same way in server/db/notifications.py; the
-- payload is the run's id. The EXISTS reads with a snapshot taken after the run's row was locked
-- for the update: a claim of one of its steps share-locks the run, so it either committed before
-- (and is seen here) or waits and then finds the run finished (and claims nothing).
CREATE FUNCTION {schema}.announce_finished_run() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF EXISTS (SELECT FROM steps WHERE run_id = NEW.run_id AND task_stream_id IS NOT NULL) THEN
        PERFORM pg_notify('workflowstate_finished_runs_' || left(md5(TG_TABLE_SCHEMA), 16), NEW.run_id::text);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER run_finished AFTER UPDATE OF status ON {schema}.runs
    FOR EACH ROW WHEN (OLD.status = 'running' AND NEW.status <> 'running')
    EXECUTE FUNCTION {schema}.announce_finished_run();
