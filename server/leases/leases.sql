-- Leases on keys: acquire with a first-come first-served queue, keep alive, release.
-- {schema} is the quoted schema identifier; %(name)s are bound parameters.

-- lease_acquire --
-- Take the lease on a key if it is free (never held, released, or expired) and no live waiter
-- queued before this one (ticket NULL: before anyone), with the next fencing token. When not
-- granted and enqueue is true, queue this stream as a waiter. Returns whether it was granted,
-- the key's token and expiry, and the new waiter's ticket.
WITH granted AS (
    INSERT INTO {schema}.leases AS l (key, fencing_token, owner_id, holder, acquire_time, expire_time)
    VALUES (%(key)s::text, 1, %(owner_id)s::uuid, %(holder)s::text, now(), now() + %(ttl)s::interval)
    ON CONFLICT (key) DO UPDATE
    SET fencing_token = l.fencing_token + 1, owner_id = EXCLUDED.owner_id, holder = EXCLUDED.holder,
        acquire_time = EXCLUDED.acquire_time, expire_time = EXCLUDED.expire_time
    WHERE (l.owner_id IS NULL OR l.expire_time <= now())
      AND NOT EXISTS (
          SELECT FROM {schema}.lease_waiters w
          WHERE w.key = %(key)s::text AND w.expire_time > now()
            AND (%(ticket)s::bigint IS NULL OR w.ticket < %(ticket)s::bigint)
      )
    RETURNING l.fencing_token, l.expire_time
), left_queue AS (
    DELETE FROM {schema}.lease_waiters
    WHERE ticket = %(ticket)s::bigint AND EXISTS (SELECT FROM granted)
), queued AS (
    INSERT INTO {schema}.lease_waiters (key, owner_id, server_id, expire_time)
    SELECT %(key)s::text, %(owner_id)s::uuid, %(server_id)s::uuid, now() + %(waiter_ttl)s::interval
    WHERE %(enqueue)s::boolean AND %(ticket)s::bigint IS NULL AND NOT EXISTS (SELECT FROM granted)
    RETURNING ticket
)
SELECT true AS granted, g.fencing_token, g.expire_time, NULL::bigint AS ticket FROM granted g
UNION ALL
SELECT false, l.fencing_token, l.expire_time, (SELECT ticket FROM queued)
FROM (SELECT 1) AS one
LEFT JOIN {schema}.leases l ON l.key = %(key)s::text
WHERE NOT EXISTS (SELECT FROM granted);

-- lease_keep_alive --
-- Extend a lease this stream still holds and that has not expired. Returns the new expiry, or
-- NULL with the key's current token when the lease is gone.
WITH kept AS (
    UPDATE {schema}.leases
    SET expire_time = now() + %(ttl)s::interval
    WHERE key = %(key)s::text AND owner_id = %(owner_id)s::uuid AND fencing_token = %(fencing_token)s::bigint
      AND expire_time > now()
    RETURNING expire_time
)
SELECT (SELECT expire_time FROM kept) AS expire_time, l.fencing_token AS current_token
FROM {schema}.leases l WHERE l.key = %(key)s::text;

-- lease_release --
-- Free a lease this stream holds and, when the key has waiters, wake them on every server.
-- Returns one row when it was still held. (No waiters, no NOTIFY: a NOTIFY serialises commits
-- and wakes every server's listener. A waiter queued by a statement racing this one is missed
-- here and looks again within the poll interval.)
WITH released AS (
    UPDATE {schema}.leases
    SET owner_id = NULL, holder = NULL, acquire_time = NULL, expire_time = NULL
    WHERE key = %(key)s::text AND owner_id = %(owner_id)s::uuid AND fencing_token = %(fencing_token)s::bigint
    RETURNING key
)
SELECT CASE WHEN EXISTS (SELECT FROM {schema}.lease_waiters w WHERE w.key = released.key)
            THEN pg_notify(%(channel)s::text, released.key) END
FROM released;

-- lease_abandon --
-- Undo an acquire that was interrupted (stream gone, wait given up): leave the waiters' queue,
-- and free the lease in case the interrupted statement had granted it. By owner only, so it is
-- safe to run again (a clean-up that failed is retried) whoever holds the key by then.
WITH left_queue AS (
    DELETE FROM {schema}.lease_waiters WHERE owner_id = %(owner_id)s::uuid
), released AS (
    UPDATE {schema}.leases
    SET owner_id = NULL, holder = NULL, acquire_time = NULL, expire_time = NULL
    WHERE key = %(key)s::text AND owner_id = %(owner_id)s::uuid
    RETURNING key
)
SELECT pg_notify(%(channel)s::text, key) FROM released;

-- lease_get --
-- The live lease on a key, if any.
SELECT key, holder, fencing_token, acquire_time, expire_time FROM {schema}.leases
WHERE key = %(key)s::text AND owner_id IS NOT NULL AND expire_time > now();

-- lease_waiters_refresh --
-- Keep the given waiters in the queue (by ticket: those still waiting, never every row of the
-- server, so the row of a waiter whose clean-up failed expires at its own waiter_ttl), and drop
-- rows of waiters nobody refreshed for a long time.
WITH refreshed AS (
    UPDATE {schema}.lease_waiters SET expire_time = now() + %(waiter_ttl)s::interval
    WHERE ticket = ANY(%(tickets)s::bigint[])
    RETURNING ticket
), purged AS (
    DELETE FROM {schema}.lease_waiters WHERE expire_time < now() - interval '1 minute'
)
SELECT count(*) AS refreshed FROM refreshed;

-- leases_held --
-- One page of the leases held now (an owner, not expired), by key, whose key starts with the
-- prefix (NULL: any), after the key after_key (NULL: from the first).
SELECT key, holder, fencing_token, acquire_time, expire_time FROM {schema}.leases
WHERE owner_id IS NOT NULL AND expire_time > now()
  AND (%(prefix)s::text IS NULL OR starts_with(key, %(prefix)s::text))
  AND (%(after_key)s::text IS NULL OR key > %(after_key)s::text)
ORDER BY key
LIMIT %(limit)s;
