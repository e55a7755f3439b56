-- Leases on keys: acquire with a first-come first-served queue, keep alive, release.
-- {schema} is the quoted schema identifier; %(name)s are bound parameters.

-- lease_acquire --
-- Take the leases on keys that are free (never held, released, or expired) and for which no live
-- waiter queued before the input's own ticket (NULL: before anyone) waits, each with its key's next
-- fencing token; set-based (one or many: db/coalescer.py): one row per input with its ordinal, a
-- group holding each key once (so no statement touches a lease row twice). An input not granted,
-- with enqueue true and no ticket yet, queues its owner as a waiter; a granted one leaves the queue.
-- Returns whether it was granted, the key's token and expiry (the granted ones, or the key's
-- current ones: NULL for a key never leased) and the new waiter's ticket.
-- A lease row another transaction has locked (a fenced write or a release in flight) is skipped
-- (no row for its input): it runs alone, in this statement without SKIP LOCKED, waiting for the
-- lock. So is a key never leased whose row another statement inserted meanwhile (ON CONFLICT DO
-- NOTHING): alone, the statement sees that row and locks it.
WITH inputs AS MATERIALIZED (
    SELECT *
    FROM unnest(%(key)s::text[], %(owner_id)s::uuid[], %(holder)s::text[], %(ttl)s::interval[], %(ticket)s::bigint[],
                %(enqueue)s::boolean[])
         WITH ORDINALITY AS i(key, owner_id, holder, ttl, ticket, enqueue, ordinal)
), locked AS MATERIALIZED (
    SELECT l.key, l.fencing_token, l.owner_id, l.expire_time
    FROM {schema}.leases l
    WHERE l.key IN (SELECT key FROM inputs)
    ORDER BY l.key
    FOR NO KEY UPDATE OF l SKIP LOCKED
), decided AS MATERIALIZED (
    SELECT i.*, l.key IS NOT NULL AS leased_before, l.fencing_token, l.expire_time,
           (l.key IS NULL OR l.owner_id IS NULL OR l.expire_time <= now())
           AND NOT EXISTS (
               SELECT FROM {schema}.lease_waiters w
               WHERE w.key = i.key AND w.expire_time > now() AND (i.ticket IS NULL OR w.ticket < i.ticket)
           ) AS its_turn
    FROM inputs i LEFT JOIN locked l ON l.key = i.key
    WHERE l.key IS NOT NULL OR NOT EXISTS (SELECT FROM {schema}.leases x WHERE x.key = i.key)
), taken_over AS (
    UPDATE {schema}.leases l
    SET fencing_token = l.fencing_token + 1, owner_id = d.owner_id, holder = d.holder,
        acquire_time = now(), expire_time = now() + d.ttl
    FROM decided d
    WHERE l.key = d.key AND d.leased_before AND d.its_turn
    RETURNING l.key, l.fencing_token, l.expire_time
), taken_first AS (
    INSERT INTO {schema}.leases (key, fencing_token, owner_id, holder, acquire_time, expire_time)
    SELECT d.key, 1, d.owner_id, d.holder, now(), now() + d.ttl
    FROM decided d
    WHERE NOT d.leased_before AND d.its_turn
    ORDER BY d.ordinal
    ON CONFLICT (key) DO NOTHING
    RETURNING key, fencing_token, expire_time
), granted AS (
    SELECT * FROM taken_over UNION ALL SELECT * FROM taken_first
), left_queue AS (
    DELETE FROM {schema}.lease_waiters w
    USING decided d JOIN granted g ON g.key = d.key
    WHERE w.ticket = d.ticket
), queued AS (
    INSERT INTO {schema}.lease_waiters (key, owner_id, server_id, expire_time)
    SELECT d.key, d.owner_id, %(server_id)s::uuid, now() + %(waiter_ttl)s::interval
    FROM decided d
    WHERE d.enqueue AND d.ticket IS NULL AND NOT d.its_turn
    ORDER BY d.ordinal
    RETURNING owner_id, ticket
)
SELECT d.ordinal, g.key IS NOT NULL AS granted,
       CASE WHEN g.key IS NOT NULL THEN g.fencing_token ELSE d.fencing_token END AS fencing_token,
       CASE WHEN g.key IS NOT NULL THEN g.expire_time ELSE d.expire_time END AS expire_time,
       q.ticket
FROM decided d
LEFT JOIN granted g ON g.key = d.key
LEFT JOIN queued q ON q.owner_id = d.owner_id
WHERE g.key IS NOT NULL OR NOT d.its_turn;

-- lease_keep_alive --
-- Extend leases their owners still hold under the given tokens and that have not expired, each
-- by its ttl; set-based (one or many: db/coalescer.py): one row per input with its ordinal, a
-- group holding each key once. Returns the new expiry, or NULL when the lease is gone, with the
-- key's current token (NULL for a key never leased). A lease row another transaction has locked
-- is skipped (no row for its input): it runs alone, in this statement without SKIP LOCKED.
WITH inputs AS MATERIALIZED (
    SELECT *
    FROM unnest(%(key)s::text[], %(owner_id)s::uuid[], %(fencing_token)s::bigint[], %(ttl)s::interval[])
         WITH ORDINALITY AS i(key, owner_id, fencing_token, ttl, ordinal)
), locked AS MATERIALIZED (
    SELECT l.key, l.fencing_token, l.owner_id, l.expire_time
    FROM {schema}.leases l
    WHERE l.key IN (SELECT key FROM inputs)
    ORDER BY l.key
    FOR NO KEY UPDATE OF l SKIP LOCKED
), decided AS MATERIALIZED (
    SELECT i.ordinal, i.key, i.ttl, l.fencing_token AS current_token,
           COALESCE(l.owner_id = i.owner_id AND l.fencing_token = i.fencing_token AND l.expire_time > now(), false) AS held
    FROM inputs i LEFT JOIN locked l ON l.key = i.key
    WHERE l.key IS NOT NULL OR NOT EXISTS (SELECT FROM {schema}.leases x WHERE x.key = i.key)
), kept AS (
    UPDATE {schema}.leases l
    SET expire_time = now() + d.ttl
    FROM decided d
    WHERE l.key = d.key AND d.held
    RETURNING l.key, l.expire_time
)
SELECT d.ordinal, k.expire_time, d.current_token
FROM decided d LEFT JOIN kept k ON k.key = d.key;

-- lease_release --
-- Free leases their owners hold under the given tokens; set-based (one or many:
-- db/coalescer.py): one row per input with its ordinal (released: whether it was still held), a
-- group holding each key once. A lease row another transaction has locked is skipped (no row for
-- its input): it runs alone, in this statement without SKIP LOCKED.
-- A released key with waiters wakes them on every server: one NOTIFY per such key, all sent at the
-- group's one commit (what a NOTIFY costs is paid per transaction: it serialises the commits of
-- notifying transactions). No waiters, no NOTIFY: it would wake every server's listener for
-- nothing. A waiter queued by a statement racing this one is missed here and looks again within
-- the poll interval.
WITH inputs AS MATERIALIZED (
    SELECT *
    FROM unnest(%(key)s::text[], %(owner_id)s::uuid[], %(fencing_token)s::bigint[])
         WITH ORDINALITY AS i(key, owner_id, fencing_token, ordinal)
), locked AS MATERIALIZED (
    SELECT l.key, l.fencing_token, l.owner_id
    FROM {schema}.leases l
    WHERE l.key IN (SELECT key FROM inputs)
    ORDER BY l.key
    FOR NO KEY UPDATE OF l SKIP LOCKED
), decided AS MATERIALIZED (
    SELECT i.ordinal, i.key, COALESCE(l.owner_id = i.owner_id AND l.fencing_token = i.fencing_token, false) AS held
    FROM inputs i LEFT JOIN locked l ON l.key = i.key
    WHERE l.key IS NOT NULL OR NOT EXISTS (SELECT FROM {schema}.leases x WHERE x.key = i.key)
), released AS (
    UPDATE {schema}.leases l
    SET owner_id = NULL, holder = NULL, acquire_time = NULL, expire_time = NULL
    FROM decided d
    WHERE l.key = d.key AND d.held
    RETURNING l.key
)
SELECT d.ordinal, r.key IS NOT NULL AS released,
       CASE WHEN r.key IS NOT NULL AND EXISTS (SELECT FROM {schema}.lease_waiters w WHERE w.key = r.key)
            THEN pg_notify(%(channel)s::text, r.key) END AS woken
FROM decided d LEFT JOIN released r ON r.key = d.key;

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
-- The live leases on keys, set-based (one or many: db/coalescer.py): one row per input with its
-- ordinal, the lease's columns NULL when nobody holds the key.
SELECT i.ordinal, l.key, l.holder, l.fencing_token, l.acquire_time, l.expire_time
FROM unnest(%(key)s::text[]) WITH ORDINALITY AS i(key, ordinal)
LEFT JOIN {schema}.leases l ON l.key = i.key AND l.owner_id IS NOT NULL AND l.expire_time > now();

-- lease_waiters_refresh --
-- Keep the given waiters in the queue (by ticket: those still waiting, never every row of the
-- server, so the row of a waiter whose clean-up failed expires at its own waiter_ttl), and drop
-- rows of waiters nobody refreshed for a long time. A waiter row another statement has locked is
-- being deleted (its waiter was granted the key, or gave up) and is skipped: so this never waits
-- for a group of acquires, which deletes several waiters' rows in an order of its own (waiting
-- for each other, the two would deadlock).
WITH refreshed AS (
    UPDATE {schema}.lease_waiters SET expire_time = now() + %(waiter_ttl)s::interval
    WHERE ticket IN (SELECT ticket FROM {schema}.lease_waiters WHERE ticket = ANY(%(tickets)s::bigint[]) FOR UPDATE SKIP LOCKED)
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
