-- 0006: the locking and the first refusals of a step write, as one function (set_step_status and
-- create_retry_attempt used to repeat them).
--
-- step_for_write(step, lease key or NULL for the run's key, fencing token or NULL) locks the step
-- for the write (FOR NO KEY UPDATE) and its run for share, in that order, so a run status change
-- waits for the write or the write sees it; then, for a fenced write, the lease row through
-- fence_check (so the lock order stays: step, run, lease). It returns one row, also when there
-- is no such step: the locked step row, its run's status, the lease key used, the key's current
-- token (for the message) and why the write cannot even be considered: missing (no such step),
-- unknown_fence or stale_fence (see fence_check), or NULL, when the caller decides the rest.
-- VOLATILE because it locks, hence never inlined (it costs set_step_status about 1-3% of its
-- statement time, measured); ROWS 1 because it always returns one row, so plans join it as such.
CREATE FUNCTION {schema}.step_for_write(step_id uuid, given_key text, given_token bigint)
RETURNS TABLE (step {schema}.steps, run_status text, lease_key text, current_token bigint, refusal text)
LANGUAGE sql VOLATILE ROWS 1 SET search_path FROM CURRENT AS $$
    WITH locked AS (
        SELECT s AS step, s.step_id, r.status AS run_status,
               COALESCE(step_for_write.given_key, 'run:' || s.run_id::text) AS lease_key
        FROM steps s JOIN runs r ON r.run_id = s.run_id
        WHERE s.step_id = step_for_write.step_id
        FOR NO KEY UPDATE OF s FOR SHARE OF r
    )
    SELECT l.step, l.run_status, l.lease_key, f.current_token,
           CASE WHEN l.step_id IS NULL THEN 'missing' ELSE f.refusal END
    FROM (SELECT) AS one LEFT JOIN locked l ON true
    LEFT JOIN fence_check(l.lease_key, step_for_write.given_token) AS f ON true
$$;
