-- The bound on the number of schedules (--max-schedules), decided one create at a time.
--
-- schedule_room(max_schedules, schedule_id) says whether a create of schedule_id may insert: the
-- schema holds fewer than max_schedules schedules, or one with that id exists already (then the
-- create answers with it, or refuses other settings, as before). It first takes a transaction-
-- scoped advisory lock of the schema's schedules, held until the create that took it commits;
-- VOLATILE plpgsql takes a fresh snapshot for its count, so the count sees every create that
-- committed before the lock was granted, and creates racing on any servers decide one after the
-- other: the bound is never passed. Two int4 keys, a constant naming this purpose ("WSSC") and
-- the hash of the schema's name (the function's own, through its search_path), so the schedules of
-- two schemas do not wait for each other. Creates are rare; the rest of schedules never takes it.
CREATE FUNCTION {schema}.schedule_room(max_schedules bigint, schedule_id text) RETURNS boolean
LANGUAGE plpgsql VOLATILE SET search_path FROM CURRENT AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(1465078595, hashtext(current_schema()));
    RETURN (SELECT count(*) FROM schedules) < max_schedules
        OR EXISTS (SELECT FROM schedules s WHERE s.schedule_id = schedule_room.schedule_id);
END
$$;
