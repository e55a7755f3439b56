-- Every SQL statement of the store, each under a "-- name --" header with what it does.
-- {schema} is the quoted schema identifier; %(name)s are bound parameters. Every state change is
-- ONE statement: it locks the rows it decides on, checks the current status against the allowed
-- ones given by server/transitions.py, and writes the row and its history together, so two racing
-- writers cannot both win. A statement that changes nothing returns the current status so the
-- store can say why.
--
-- Fencing: a write given %(fencing_token)s share-locks the lease row of its key (by default the
-- run's key 'run:<run_id>') and writes only when the token is still the key's latest, so a
-- holder whose lease was taken over cannot write, and a takeover waits for a write in flight.

-- create_run --
-- Insert a run in status 'running'. With a request_id that exists already, return that run
-- (DO UPDATE, unlike DO NOTHING, returns the existing row even when it was committed after this
-- statement's snapshot) and say whether it was created and whether the request matches it.
INSERT INTO {schema}.runs (run_id, workflow, status, input, request_id)
VALUES (gen_random_uuid(), %(workflow)s::text, 'running', %(input)s::jsonb, %(request_id)s::text)
ON CONFLICT (request_id) WHERE request_id IS NOT NULL
DO UPDATE SET request_id = EXCLUDED.request_id
RETURNING *,
    (xmax = 0) AS created,
    (workflow = %(workflow)s::text AND input = %(input)s::jsonb) AS same_request;

-- get_run --
-- One run by id.
SELECT * FROM {schema}.runs WHERE run_id = %(run_id)s::uuid;

-- get_run_history --
-- Every attempt of every step of a run, oldest first. The run row is joined so a missing run
-- (no row at all) is told apart from a run without steps (one row with a NULL step_id).
SELECT a.step_id, a.step_name, a.attempt, a.status, a.result, a.error, a.create_time, a.update_time
FROM {schema}.runs r
LEFT JOIN {schema}.step_attempts a ON a.run_id = r.run_id
WHERE r.run_id = %(run_id)s::uuid
ORDER BY a.create_time, a.seq;

-- update_run_status --
-- Move a run to a status, if its current status is one of from_statuses. output is written only
-- when set_output is true; error only when given.
WITH current_run AS (
    SELECT run_id, status, output, error, COALESCE(%(lease_key)s::text, 'run:' || run_id::text) AS lease_key
    FROM {schema}.runs
    WHERE run_id = %(run_id)s::uuid
    FOR NO KEY UPDATE
), fence AS (
    SELECT l.fencing_token FROM {schema}.leases l JOIN current_run c ON l.key = c.lease_key
    WHERE %(fencing_token)s::bigint IS NOT NULL
    FOR SHARE OF l
), changed AS (
    UPDATE {schema}.runs r
    SET status = %(status)s::text,
        output = CASE WHEN %(set_output)s::boolean THEN %(output)s::jsonb ELSE r.output END,
        error = COALESCE(%(error)s::jsonb, r.error),
        update_time = now(),
        fencing_token = GREATEST(r.fencing_token, %(fencing_token)s::bigint)
    FROM current_run c
    WHERE r.run_id = c.run_id AND c.status = ANY(%(from_statuses)s::text[])
      AND (%(fencing_token)s::bigint IS NULL OR %(fencing_token)s::bigint = (SELECT fencing_token FROM fence))
    RETURNING r.*
)
SELECT c.status AS prior_status, c.lease_key, (SELECT fencing_token FROM fence) AS current_token,
       (NOT %(set_output)s::boolean OR c.output IS NOT DISTINCT FROM %(output)s::jsonb)
           AND (%(error)s::jsonb IS NULL OR c.error IS NOT DISTINCT FROM %(error)s::jsonb) AS same_payload,
       ch.*
FROM current_run c LEFT JOIN changed ch ON true;

-- insert_step --
-- Insert a step of a running run in status 'pending' with its first history row. The run row is
-- share-locked so a concurrent run status change waits for this insert (or this sees it).
WITH run AS (
    SELECT run_id, status, COALESCE(%(lease_key)s::text, 'run:' || run_id::text) AS lease_key
    FROM {schema}.runs WHERE run_id = %(run_id)s::uuid FOR SHARE
), fence AS (
    SELECT l.fencing_token FROM {schema}.leases l JOIN run ON l.key = run.lease_key
    WHERE %(fencing_token)s::bigint IS NOT NULL
    FOR SHARE OF l
), inserted AS (
    INSERT INTO {schema}.steps (step_id, run_id, step_name, rpc_name, data, status, retries, retry_delay, fencing_token)
    SELECT gen_random_uuid(), run.run_id, %(step_name)s::text, %(rpc_name)s::text, %(data)s::jsonb,
           'pending', %(retries)s::integer, %(retry_delay)s::interval, %(fencing_token)s::bigint
    FROM run
    WHERE run.status = 'running'
      AND (%(fencing_token)s::bigint IS NULL OR %(fencing_token)s::bigint = (SELECT fencing_token FROM fence))
    ON CONFLICT (run_id, step_name) DO NOTHING
    RETURNING *
), first_attempt AS (
    INSERT INTO {schema}.step_attempts (step_id, attempt, run_id, step_name, status, create_time, update_time)
    SELECT step_id, attempt_count, run_id, step_name, status, create_time, update_time FROM inserted
)
SELECT run.status AS run_status, run.lease_key, (SELECT fencing_token FROM fence) AS current_token, i.*
FROM run LEFT JOIN inserted i ON true;

-- get_step --
-- One step by run and name.
SELECT * FROM {schema}.steps WHERE run_id = %(run_id)s::uuid AND step_name = %(step_name)s::text;

-- get_step_by_id --
-- One step by id.
SELECT * FROM {schema}.steps WHERE step_id = %(step_id)s::uuid;

-- set_step_status --
-- Move a step to to_status if its current status is one of from_statuses and its run is still
-- running (and, when attempt is given, the current attempt is that one: a worker's completion is
-- fenced by its attempt number); stamp the status's time, store result (succeeded) or error
-- (failed), set not_before (scheduled), and update the current attempt's history row. The attempt
-- leaves any worker that had it. The step is locked for update and its run share-locked, so the
-- decision is made on the latest committed rows.
WITH current_step AS (
    SELECT s.step_id, s.status, s.result, s.error, s.attempt_count, r.status AS run_status,
           COALESCE(%(lease_key)s::text, 'run:' || s.run_id::text) AS lease_key
    FROM {schema}.steps s JOIN {schema}.runs r ON r.run_id = s.run_id
    WHERE s.step_id = %(step_id)s::uuid
    FOR NO KEY UPDATE OF s FOR SHARE OF r
), fence AS (
    SELECT l.fencing_token FROM {schema}.leases l JOIN current_step c ON l.key = c.lease_key
    WHERE %(fencing_token)s::bigint IS NOT NULL
    FOR SHARE OF l
), changed AS (
    UPDATE {schema}.steps s
    SET status = %(to_status)s::text,
        result = CASE WHEN %(to_status)s::text = 'succeeded' THEN %(result)s::jsonb ELSE s.result END,
        error = CASE WHEN %(to_status)s::text = 'failed' THEN %(error)s::jsonb ELSE s.error END,
        update_time = now(),
        scheduled_time = CASE WHEN %(to_status)s::text = 'scheduled' THEN now() ELSE s.scheduled_time END,
        running_time = CASE WHEN %(to_status)s::text = 'running' THEN now() ELSE s.running_time END,
        succeeded_time = CASE WHEN %(to_status)s::text = 'succeeded' THEN now() ELSE s.succeeded_time END,
        failed_time = CASE WHEN %(to_status)s::text = 'failed' THEN now() ELSE s.failed_time END,
        not_before = CASE WHEN %(to_status)s::text = 'scheduled'
                          THEN COALESCE(%(not_before)s::timestamptz, now() + COALESCE(%(delay)s::interval, interval '0')) END,
        worker_id = NULL, task_stream_id = NULL, task_expire_time = NULL,
        fencing_token = GREATEST(s.fencing_token, %(fencing_token)s::bigint)
    FROM current_step c
    WHERE s.step_id = c.step_id AND c.run_status = 'running' AND c.status = ANY(%(from_statuses)s::text[])
      AND (%(attempt)s::integer IS NULL OR c.attempt_count = %(attempt)s::integer)
      AND (%(fencing_token)s::bigint IS NULL OR %(fencing_token)s::bigint = (SELECT fencing_token FROM fence))
    RETURNING s.*
), attempt AS (
    UPDATE {schema}.step_attempts a
    SET status = ch.status, result = ch.result, error = ch.error, update_time = ch.update_time
    FROM changed ch
    WHERE a.step_id = ch.step_id AND a.attempt = ch.attempt_count
)
SELECT c.status AS prior_status, c.attempt_count AS prior_attempt, c.run_status, c.lease_key,
       (SELECT fencing_token FROM fence) AS current_token,
       c.result IS NOT DISTINCT FROM %(result)s::jsonb AND c.error IS NOT DISTINCT FROM %(error)s::jsonb AS same_payload,
       ch.*
FROM current_step c LEFT JOIN changed ch ON true;

-- create_retry_attempt --
-- Start the next attempt of a step whose status is one of from_statuses (a failed one): same
-- step, attempt_count + 1, result, error and attempt times cleared, a new history row.
WITH current_step AS (
    SELECT s.step_id, s.status, r.status AS run_status,
           COALESCE(%(lease_key)s::text, 'run:' || s.run_id::text) AS lease_key
    FROM {schema}.steps s JOIN {schema}.runs r ON r.run_id = s.run_id
    WHERE s.step_id = %(step_id)s::uuid
    FOR NO KEY UPDATE OF s FOR SHARE OF r
), fence AS (
    SELECT l.fencing_token FROM {schema}.leases l JOIN current_step c ON l.key = c.lease_key
    WHERE %(fencing_token)s::bigint IS NOT NULL
    FOR SHARE OF l
), changed AS (
    UPDATE {schema}.steps s
    SET status = %(to_status)s::text,
        attempt_count = s.attempt_count + 1,
        result = NULL,
        error = NULL,
        update_time = now(),
        scheduled_time = NULL,
        running_time = CASE WHEN %(to_status)s::text = 'running' THEN now() END,
        succeeded_time = NULL,
        failed_time = NULL,
        not_before = NULL, worker_id = NULL, task_stream_id = NULL, task_expire_time = NULL,
        fencing_token = GREATEST(s.fencing_token, %(fencing_token)s::bigint)
    FROM current_step c
    WHERE s.step_id = c.step_id AND c.run_status = 'running' AND c.status = ANY(%(from_statuses)s::text[])
      AND (%(fencing_token)s::bigint IS NULL OR %(fencing_token)s::bigint = (SELECT fencing_token FROM fence))
    RETURNING s.*
), next_attempt AS (
    INSERT INTO {schema}.step_attempts (step_id, attempt, run_id, step_name, status, create_time, update_time)
    SELECT step_id, attempt_count, run_id, step_name, status, update_time, update_time FROM changed
)
SELECT c.status AS prior_status, c.run_status, c.lease_key, (SELECT fencing_token FROM fence) AS current_token,
       false AS same_payload, ch.*
FROM current_step c LEFT JOIN changed ch ON true;

-- claim_tasks --
-- Hand up to %(limit)s due scheduled steps of the given rpc names to one worker's stream: each
-- becomes RUNNING with a task lease, in this one statement. SKIP LOCKED lets several dispatchers
-- run at once, on any number of servers, without two picking one attempt. Steps are read in
-- steps_due order with their run's status as a per-row filter, not a join, so the plan stays a
-- short ordered index scan however few runs are still running. The picked steps' runs are then
-- share-locked, skipping a run being finished right now (its steps stay scheduled).
WITH picked AS (
    SELECT s.step_id, s.run_id
    FROM {schema}.steps s
    WHERE s.status = 'scheduled' AND s.rpc_name = ANY(%(rpc_names)s::text[]) AND s.not_before <= now()
      AND (SELECT r.status FROM {schema}.runs r WHERE r.run_id = s.run_id) = 'running'
    ORDER BY s.not_before, s.step_id
    LIMIT %(limit)s
    FOR NO KEY UPDATE OF s SKIP LOCKED
), running_runs AS (
    SELECT r.run_id FROM {schema}.runs r
    WHERE r.run_id IN (SELECT run_id FROM picked) AND r.status = 'running'
    FOR SHARE SKIP LOCKED
), changed AS (
    UPDATE {schema}.steps s
    SET status = 'running', running_time = now(), update_time = now(), not_before = NULL,
        worker_id = %(worker_id)s::text, task_stream_id = %(stream_id)s::uuid,
        task_expire_time = now() + %(task_lease)s::interval
    FROM picked p JOIN running_runs rr ON rr.run_id = p.run_id
    WHERE s.step_id = p.step_id
    RETURNING s.step_id, s.run_id, s.step_name, s.rpc_name, s.data, s.attempt_count, s.task_expire_time
), attempt AS (
    UPDATE {schema}.step_attempts a
    SET status = 'running', update_time = now()
    FROM changed c
    WHERE a.step_id = c.step_id AND a.attempt = c.attempt_count
)
SELECT * FROM changed ORDER BY step_id;

-- next_task_due --
-- When the next scheduled step of the given rpc names falls due, if it is in the future (steps
-- already due are announced by NOTIFY when scheduled).
-- (The run's status is a row filter, as in claim_tasks, so min() stays one ordered index probe.)
SELECT min(s.not_before) AS due
FROM {schema}.steps s
WHERE s.status = 'scheduled' AND s.rpc_name = ANY(%(rpc_names)s::text[]) AND s.not_before > now()
  AND (SELECT r.status FROM {schema}.runs r WHERE r.run_id = s.run_id) = 'running';

-- extend_tasks --
-- A worker's heartbeat: move the task lease of the attempts its stream still runs.
UPDATE {schema}.steps
SET task_expire_time = now() + %(task_lease)s::interval
WHERE step_id = ANY(%(step_ids)s::uuid[]) AND task_stream_id = %(stream_id)s::uuid AND status = 'running'
RETURNING step_id;

-- adopt_tasks --
-- A reconnected worker's tasks from an earlier stream become this stream's, with a fresh task
-- lease: those still running at the given attempt and handed out by the server.
UPDATE {schema}.steps s
SET task_stream_id = %(stream_id)s::uuid, worker_id = %(worker_id)s::text, task_expire_time = now() + %(task_lease)s::interval
FROM unnest(%(step_ids)s::uuid[], %(attempts)s::integer[]) AS i(step_id, attempt)
WHERE s.step_id = i.step_id AND s.attempt_count = i.attempt AND s.status = 'running' AND s.task_stream_id IS NOT NULL
RETURNING s.step_id, s.attempt_count;

-- expired_tasks --
-- Handed-out attempts whose task lease passed: their worker, or its server, stopped heartbeating.
-- Steps of finished runs are left out: they take no more writes, so they would come back on
-- every sweep and, past 100 of them, hide the others.
SELECT s.step_id, s.attempt_count FROM {schema}.steps s JOIN {schema}.runs r ON r.run_id = s.run_id
WHERE s.task_expire_time < now() AND s.status = 'running' AND r.status = 'running'
ORDER BY s.task_expire_time
LIMIT 100;

-- fail_tasks --
-- Fail the given running attempts (step_ids[i] at attempts[i]; any other attempt is left alone:
-- the attempt number is the fence) with one error. The attempt's history row becomes failed;
-- when retryable and retries remain (attempt_count <= retries), the step moves on to its next
-- attempt, SCHEDULED and due after retry_delay, else the step is FAILED with this error.
-- (`changed` reads `failed_attempt`, so each failed row is written before its step moves on,
-- and the two events come out in that order.)
WITH sent AS (
    SELECT * FROM unnest(%(step_ids)s::uuid[], %(attempts)s::integer[]) AS i(step_id, attempt)
), current_step AS (
    SELECT s.step_id, s.status, s.attempt_count, r.status AS run_status, i.attempt AS sent_attempt,
           %(retryable)s::boolean AND s.attempt_count <= COALESCE(s.retries, 0) AS retry
    FROM sent i
    JOIN {schema}.steps s ON s.step_id = i.step_id
    JOIN {schema}.runs r ON r.run_id = s.run_id
    ORDER BY s.step_id
    FOR NO KEY UPDATE OF s FOR SHARE OF r
), eligible AS (
    SELECT * FROM current_step
    WHERE status = 'running' AND attempt_count = sent_attempt AND run_status = 'running'
), failed_attempt AS (
    UPDATE {schema}.step_attempts a
    SET status = 'failed', error = %(error)s::jsonb, update_time = now()
    FROM eligible e
    WHERE a.step_id = e.step_id AND a.attempt = e.attempt_count
    RETURNING a.step_id
), changed AS (
    UPDATE {schema}.steps s
    SET status = CASE WHEN e.retry THEN 'scheduled' ELSE 'failed' END,
        attempt_count = s.attempt_count + CASE WHEN e.retry THEN 1 ELSE 0 END,
        error = CASE WHEN e.retry THEN NULL ELSE %(error)s::jsonb END,
        update_time = now(),
        scheduled_time = CASE WHEN e.retry THEN now() ELSE s.scheduled_time END,
        running_time = CASE WHEN e.retry THEN NULL ELSE s.running_time END,
        failed_time = CASE WHEN e.retry THEN NULL ELSE now() END,
        not_before = CASE WHEN e.retry THEN now() + COALESCE(s.retry_delay, interval '0') END,
        worker_id = NULL, task_stream_id = NULL, task_expire_time = NULL
    FROM eligible e JOIN failed_attempt f ON f.step_id = e.step_id
    WHERE s.step_id = e.step_id
    RETURNING s.*
), next_attempt AS (
    INSERT INTO {schema}.step_attempts (step_id, attempt, run_id, step_name, status, create_time, update_time)
    SELECT step_id, attempt_count, run_id, step_name, status, update_time, update_time FROM changed
    WHERE status = 'scheduled'
)
SELECT c.step_id, c.sent_attempt, c.status AS prior_status, c.attempt_count AS prior_attempt, c.run_status,
       ch.status AS new_status
FROM current_step c LEFT JOIN changed ch ON ch.step_id = c.step_id;

-- run_event_position --
-- Where an event sorts in the order events are read, to resume after it.
SELECT run_id, step_id, status, xact_id::text AS xact_id FROM {schema}.run_events WHERE event_id = %(event_id)s::bigint;

-- run_events_of_run --
-- The next events of one run after the position (xact_id, event_id), in that order, of
-- transactions older than every transaction still running: only then can no event sort before
-- them any more (see run_events in migration 0003).
SELECT e.event_id, e.xact_id::text AS xact_id, e.run_id, r.workflow, e.step_id, e.step_name, e.attempt,
       e.status, e.event_time
FROM {schema}.run_events e JOIN {schema}.runs r ON r.run_id = e.run_id
WHERE e.run_id = %(run_id)s::uuid
  AND (e.xact_id, e.event_id) > (%(after_xact)s::xid8, %(after_event_id)s::bigint)
  AND e.xact_id < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY e.xact_id, e.event_id
LIMIT %(limit)s;

-- run_events_all --
-- The same over every run, or every run of one workflow.
SELECT e.event_id, e.xact_id::text AS xact_id, e.run_id, r.workflow, e.step_id, e.step_name, e.attempt,
       e.status, e.event_time
FROM {schema}.run_events e JOIN {schema}.runs r ON r.run_id = e.run_id
WHERE (%(workflow)s::text IS NULL OR r.workflow = %(workflow)s::text)
  AND (e.xact_id, e.event_id) > (%(after_xact)s::xid8, %(after_event_id)s::bigint)
  AND e.xact_id < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY e.xact_id, e.event_id
LIMIT %(limit)s;

-- prune_run_events --
-- Delete up to 10,000 events older than the retention; returns how many went.
WITH gone AS (
    DELETE FROM {schema}.run_events
    WHERE event_id IN (
        SELECT event_id FROM {schema}.run_events
        WHERE event_time < now() - %(retention)s::interval
        ORDER BY event_time
        LIMIT 10000
    )
    RETURNING 1
)
SELECT count(*) AS pruned FROM gone;

-- run_events_newest --
-- The position of the newest readable event: where a server's event pump starts.
SELECT xact_id::text AS xact_id, event_id FROM {schema}.run_events
WHERE xact_id < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY xact_id DESC, event_id DESC
LIMIT 1;

-- run_events_touched --
-- The runs of the readable events after a position, in order, and where each event sorts: what
-- a server's event pump tells its readers.
SELECT run_id, xact_id::text AS xact_id, event_id FROM {schema}.run_events
WHERE (xact_id, event_id) > (%(after_xact)s::xid8, %(after_event_id)s::bigint)
  AND xact_id < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY xact_id, event_id
LIMIT %(limit)s;

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
-- and free the lease in case the interrupted statement had granted it.
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
-- Keep this server's waiters in the queue, and drop rows of waiters whose server stopped
-- refreshing them long ago.
WITH refreshed AS (
    UPDATE {schema}.lease_waiters SET expire_time = now() + %(waiter_ttl)s::interval
    WHERE server_id = %(server_id)s::uuid
    RETURNING ticket
), purged AS (
    DELETE FROM {schema}.lease_waiters WHERE expire_time < now() - interval '1 minute'
)
SELECT count(*) AS refreshed FROM refreshed;

-- ping --
-- The health probe: one round trip.
SELECT 1;
