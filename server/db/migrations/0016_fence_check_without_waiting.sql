-- The fence check of a fenced write that runs in a group (db/coalescer.py), where no member may wait
-- for another transaction's lock: fence_check(lease key, token, wait). With wait true it is the
-- two-argument fence_check: it share-locks the key's lease row, waiting for a takeover in flight.
-- With wait false it takes the share lock only if it can at once (SKIP LOCKED), and says `locked`
-- when the row exists but another transaction holds it (a lease being acquired, kept alive or
-- released): the statement then returns no row for that input, and the coalescer runs it alone,
-- with wait true, so it waits as it always did. STRICT and VOLATILE as the two-argument form.
-- ROWS 1: it returns one row (none for a write without a token). Without it the planner expects
-- 1000 rows per input of a set-based statement, and joins the steps and runs it writes by a hash
-- over a sequential scan of the whole table instead of their primary keys.
CREATE FUNCTION {schema}.fence_check(lease_key text, given bigint, wait boolean)
RETURNS TABLE (current_token bigint, refusal text)
LANGUAGE sql VOLATILE STRICT ROWS 1 SET search_path FROM CURRENT AS $$
    WITH waiting AS (
        SELECT fencing_token FROM leases WHERE key = fence_check.lease_key AND fence_check.wait FOR SHARE
    ), not_waiting AS (
        SELECT fencing_token FROM leases WHERE key = fence_check.lease_key AND NOT fence_check.wait FOR SHARE SKIP LOCKED
    ), l AS (
        SELECT fencing_token FROM waiting UNION ALL SELECT fencing_token FROM not_waiting
    )
    SELECT l.fencing_token,
           CASE WHEN l.fencing_token IS NULL AND NOT fence_check.wait
                     AND EXISTS (SELECT FROM leases x WHERE x.key = fence_check.lease_key) THEN 'locked'
                WHEN l.fencing_token IS NULL THEN 'unknown_fence'
                WHEN l.fencing_token <> fence_check.given THEN 'stale_fence' END
    FROM (SELECT) AS one
    LEFT JOIN l ON true
$$;

-- The two-argument form returns one row too.
ALTER FUNCTION {schema}.fence_check(text, bigint) ROWS 1;
