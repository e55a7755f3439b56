-- 0004: deleting a run deletes its run events (they had no tie to the run, and stayed behind).
--
-- A trigger, not a foreign key run_events.run_id -> runs ON DELETE CASCADE: the key's check on
-- every event insert would share-lock the run's row from each transaction that changes one of its
-- steps, and concurrent workers on the steps of one run would then pile multixacts onto that row,
-- on the hot path of every write. The trigger costs nothing until a run is deleted, and then one
-- scan of run_events_of_run (run_id leads it). It fires after the run's steps are deleted (the
-- foreign key's trigger comes first, by name order) and reads with a snapshot taken then: every
-- change of an attempt also writes or key-locks its step's row, so a concurrent one either made
-- that delete wait and committed first (its event is deleted here), or finds its step gone and
-- writes no event.

-- Events of runs deleted before this migration.
DELETE FROM {schema}.run_events e WHERE NOT EXISTS (SELECT FROM {schema}.runs r WHERE r.run_id = e.run_id);

CREATE FUNCTION {schema}.delete_run_events() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    DELETE FROM run_events WHERE run_id = OLD.run_id;
    RETURN NULL;
END
$$;

CREATE TRIGGER run_deleted AFTER DELETE ON {schema}.runs
    FOR EACH ROW EXECUTE FUNCTION {schema}.delete_run_events();
