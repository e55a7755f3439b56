-- 0005: the fence check of a fenced write, as one function (the state statements used to repeat it).
--
-- A write given a fencing token calls fence_check(its lease key, the token) after locking the
-- rows it writes (so the lock order stays: run / step rows, then the lease row). It share-locks
-- the key's lease row, so a takeover (which updates that row) waits for the fenced write in
-- flight, and says why the write is refused: unknown_fence (no lease was ever granted on the
-- key), stale_fence (the token is no longer the key's latest) or NULL (the token is current),
-- beside the key's current token for the message. VOLATILE because it locks (PostgreSQL refuses
-- FOR SHARE in a stable function), hence never inlined. STRICT: a write without a token (or
-- without a row, so without a key) does not run it at all; PostgreSQL skips a strict function
-- given a NULL, so unfenced writes, the hot path, do not pay for it.
CREATE FUNCTION {schema}.fence_check(lease_key text, given bigint)
RETURNS TABLE (current_token bigint, refusal text)
LANGUAGE sql VOLATILE STRICT SET search_path FROM CURRENT AS $$
    SELECT l.fencing_token,
           CASE WHEN l.fencing_token IS NULL THEN 'unknown_fence'
                WHEN l.fencing_token <> fence_check.given THEN 'stale_fence' END
    FROM (SELECT) AS one
    LEFT JOIN (SELECT fencing_token FROM leases WHERE key = fence_check.lease_key FOR SHARE) AS l ON true
$$;
