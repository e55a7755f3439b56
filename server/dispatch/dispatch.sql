-- Remote mode's statements: hand due steps to workers, keep their task leases, fail lost ones.
-- {schema} is the quoted schema identifier; %(name)s are bound parameters. The statuses come
-- from state/transitions.py as parameters: from_statuses / to_status of the move (claim: the
-- scheduled -> running move; task fail: running -> failed, then the automatic retry's target),
-- held_status (where a claim leads: the status of an attempt a worker holds) and
-- open_run_statuses (the run statuses that still take writes). The state-changing statements
-- return an `outcome` column (see state/outcomes.py and the top of state/state.sql).

-- claim_tasks --
-- Hand up to `limit` due scheduled steps of the given rpc names to one worker's stream: each
-- becomes RUNNING with a task lease, in this one statement. SKIP LOCKED lets several dispatchers
-- run at once, on any number of servers, without two picking one attempt. Steps are read in
-- steps_due_by_priority order (priority, highest first, then due time) with their run's status
-- as a per-row filter, not a join, so the plan stays a short ordered index scan however few runs
-- are still running. The dispatch policies are decided here too:
-- * concurrency: a step with a concurrency_key whose rpc name's defaults set concurrency_limit is
--   taken only while fewer than the limit of its key run. Candidates of a key that looks full in
--   this statement's snapshot are not even picked (so they do not crowd the others out); for the
--   rest, concurrency_running takes the key's lock and counts its running attempts afresh, and
--   the k-th candidate of a key in this claim is taken only if running + k <= limit. The lock
--   is held until this statement commits, so claims of one key on all servers decide in turn.
--   Keys are locked in the order of their lock ids (concurrency_lock_id), so two claims never
--   wait for each other's.
-- * rate limit: of the steps left, those of an rpc name with a rate_limit take a token each from
--   its bucket (rate_buckets, kept by a trigger on dispatch_defaults), locked and updated in
--   `tokens`; the rest stay due.
-- The picked steps' runs are then share-locked, skipping a run being finished right now (its
-- steps stay scheduled).
WITH picked AS (
    SELECT s.step_id, s.run_id, s.rpc_name, s.concurrency_key, s.priority, s.not_before
    FROM {schema}.steps s
    WHERE s.status = ANY(%(from_statuses)s::text[]) AND s.rpc_name = ANY(%(rpc_names)s::text[]) AND s.not_before <= now()
      AND (SELECT r.status FROM {schema}.runs r WHERE r.run_id = s.run_id) = ANY(%(open_run_statuses)s::text[])
      AND CASE WHEN s.concurrency_key IS NULL THEN true
               ELSE (SELECT d.concurrency_limit IS NULL
                            OR (SELECT count(*) FROM {schema}.steps k JOIN {schema}.runs kr ON kr.run_id = k.run_id
                                WHERE k.concurrency_key = s.concurrency_key AND k.status = %(to_status)s::text
                                  AND kr.status = ANY(%(open_run_statuses)s::text[])) < d.concurrency_limit
                     FROM (SELECT) AS one LEFT JOIN {schema}.dispatch_defaults d ON d.rpc_name = s.rpc_name) END
    ORDER BY s.priority DESC, s.not_before, s.step_id
    LIMIT %(limit)s
    FOR NO KEY UPDATE OF s SKIP LOCKED
), limited AS (
    SELECT p.*, d.concurrency_limit, d.rate_limit, d.rate_period,
           row_number() OVER (PARTITION BY p.concurrency_key ORDER BY p.priority DESC, p.not_before, p.step_id) AS nth_of_key
    FROM picked p LEFT JOIN {schema}.dispatch_defaults d ON d.rpc_name = p.rpc_name
), keys AS (
    SELECT k.concurrency_key, {schema}.concurrency_running(k.concurrency_key, %(to_status)s::text, %(open_run_statuses)s::text[]) AS running
    FROM (SELECT DISTINCT concurrency_key, {schema}.concurrency_lock_id(concurrency_key) AS lock_order FROM limited
          WHERE concurrency_key IS NOT NULL AND concurrency_limit IS NOT NULL
          ORDER BY lock_order, concurrency_key) k
), within_concurrency AS (
    SELECT l.*, row_number() OVER (PARTITION BY l.rpc_name ORDER BY l.priority DESC, l.not_before, l.step_id) AS nth_of_rpc
    FROM limited l LEFT JOIN keys k ON k.concurrency_key = l.concurrency_key AND l.concurrency_limit IS NOT NULL
    WHERE k.concurrency_key IS NULL OR k.running + l.nth_of_key <= l.concurrency_limit
), wanted AS (
    SELECT w.rpc_name, count(*) AS wanted, min(w.rate_limit) AS rate_limit, min(w.rate_period) AS rate_period, clock_timestamp() AS at
    FROM within_concurrency w WHERE w.rate_limit IS NOT NULL
    GROUP BY w.rpc_name
), tokens AS (
    -- The bucket refilled to `at` (rate_limit per rate_period, at most rate_limit), less what this
    -- claim takes (granted). An UPDATE that waited for another claim's lock recomputes on its new
    -- row, whose refill_time may then be after `at`: no refill, never a token too many. (SET
    -- expressions read the row as it was, so the refill is written out in each.)
    UPDATE {schema}.rate_buckets b
    SET granted = least(w.wanted, floor(least(w.rate_limit, b.tokens + w.rate_limit
                            * greatest(0, extract(epoch FROM w.at - b.refill_time)) / extract(epoch FROM w.rate_period)))),
        tokens = least(w.rate_limit, b.tokens + w.rate_limit
                       * greatest(0, extract(epoch FROM w.at - b.refill_time)) / extract(epoch FROM w.rate_period))
                 - least(w.wanted, floor(least(w.rate_limit, b.tokens + w.rate_limit
                            * greatest(0, extract(epoch FROM w.at - b.refill_time)) / extract(epoch FROM w.rate_period)))),
        refill_time = greatest(b.refill_time, w.at)
    FROM wanted w
    WHERE b.rpc_name = w.rpc_name
    RETURNING b.rpc_name, b.granted
), taken AS (
    -- clock_timestamp(), not now(): the attempt starts once the claim holds its keys' locks, so
    -- its running_time is after the end of any attempt whose slot it took.
    SELECT w.step_id, w.run_id, clock_timestamp() AS claim_time
    FROM within_concurrency w LEFT JOIN tokens t ON t.rpc_name = w.rpc_name
    WHERE w.rate_limit IS NULL OR w.nth_of_rpc <= t.granted
), running_runs AS (
    SELECT r.run_id FROM {schema}.runs r
    WHERE r.run_id IN (SELECT run_id FROM taken) AND r.status = ANY(%(open_run_statuses)s::text[])
    FOR SHARE SKIP LOCKED
), changed AS (
    UPDATE {schema}.steps s
    SET status = %(to_status)s::text, running_time = p.claim_time, update_time = now(), not_before = NULL,
        worker_id = %(worker_id)s::text, task_stream_id = %(stream_id)s::uuid,
        task_timeout_time = p.claim_time + s.start_to_close,
        task_expire_time = least(now() + %(task_lease)s::interval, p.claim_time + s.start_to_close),
        start_timeout_time = NULL
    FROM taken p JOIN running_runs rr ON rr.run_id = p.run_id
    WHERE s.step_id = p.step_id
    RETURNING s.step_id, s.run_id, s.step_name, s.rpc_name, s.data, s.attempt_count, s.task_expire_time, s.task_timeout_time,
              s.running_time
), attempt AS (
    UPDATE {schema}.step_attempts a
    SET status = %(to_status)s::text, update_time = now(), running_time = c.running_time
    FROM changed c
    WHERE a.step_id = c.step_id AND a.attempt = c.attempt_count
)
-- Only the rows it changed: a step it could not take is simply not picked.
SELECT 'changed' AS outcome, * FROM changed ORDER BY step_id;

-- next_task_due --
-- When the next scheduled step of the given rpc names falls due, if it is in the future (steps
-- already due are announced by NOTIFY when scheduled).
-- (The run's status is a row filter, as in claim_tasks, so min() stays one ordered index probe.)
SELECT min(s.not_before) AS due
FROM {schema}.steps s
WHERE s.status = ANY(%(from_statuses)s::text[]) AND s.rpc_name = ANY(%(rpc_names)s::text[]) AND s.not_before > now()
  AND (SELECT r.status FROM {schema}.runs r WHERE r.run_id = s.run_id) = ANY(%(open_run_statuses)s::text[]);

-- adopt_tasks --
-- A reconnected worker's tasks from an earlier stream become this stream's, with a fresh task
-- lease (never past its start_to_close timeout): those still running at the given attempt and
-- handed out by the server. A worker takes back only what is its own: an attempt whose stream's
-- worker is gone (worker_stream_live), or one held under its own worker_id by a stream of the same
-- token (credential; both NULL without auth). An attempt another worker holds while its stream is
-- live is `not_held`, and then nothing is adopted (the subscribe is refused whole). One row per
-- attempt found running: its outcome (`changed` when adopted) and its holder; attempts not
-- running are left out.
WITH sent AS (
    SELECT * FROM unnest(%(step_ids)s::uuid[], %(attempts)s::integer[]) AS i(step_id, attempt)
), current_step AS (
    SELECT s.step_id, s.attempt_count, s.run_id, s.worker_id, s.task_stream_id
    FROM {schema}.steps s JOIN sent i ON i.step_id = s.step_id AND i.attempt = s.attempt_count
    WHERE s.status = %(held_status)s::text AND s.task_stream_id IS NOT NULL
    ORDER BY s.step_id
    FOR NO KEY UPDATE OF s
), decided AS (
    SELECT c.*,
           CASE WHEN NOT {schema}.worker_stream_live(c.task_stream_id) THEN 'changed'
                WHEN c.worker_id = %(worker_id)s::text
                     AND (SELECT w.credential FROM {schema}.worker_streams w WHERE w.stream_id = c.task_stream_id)
                         IS NOT DISTINCT FROM %(credential)s::text THEN 'changed'
                ELSE 'not_held' END AS outcome
    FROM current_step c
), adopted AS (
    UPDATE {schema}.steps s
    SET task_stream_id = %(stream_id)s::uuid, worker_id = %(worker_id)s::text,
        task_expire_time = least(now() + %(task_lease)s::interval, s.task_timeout_time)
    FROM decided d
    WHERE s.step_id = d.step_id AND NOT EXISTS (SELECT FROM decided WHERE outcome <> 'changed')
    RETURNING s.step_id
)
SELECT d.outcome, d.step_id, d.attempt_count, d.run_id, d.worker_id AS holder FROM decided d
ORDER BY d.step_id;

-- finished_runs --
-- Of the given runs, those that are finished (no longer in open_run_statuses), with their status
-- and error: the runs whose attempts a worker stream must tell its worker to cancel.
SELECT run_id, status, error FROM {schema}.runs
WHERE run_id = ANY(%(run_ids)s::uuid[]) AND status <> ALL(%(open_run_statuses)s::text[]);

-- expired_tasks --
-- Handed-out attempts whose task lease passed: their worker, or its server, stopped heartbeating,
-- or (timed_out) the attempt ran its start_to_close out (the lease never goes past it).
-- Steps of finished runs are left out: they take no more writes, so they would come back on
-- every sweep and, past 100 of them, hide the others.
SELECT s.step_id, s.attempt_count, s.start_to_close, COALESCE(s.task_timeout_time <= s.task_expire_time, false) AS timed_out
FROM {schema}.steps s JOIN {schema}.runs r ON r.run_id = s.run_id
WHERE s.task_expire_time < now() AND s.status = %(held_status)s::text AND r.status = ANY(%(open_run_statuses)s::text[])
ORDER BY s.task_expire_time
LIMIT 100;

-- start_timeouts --
-- Scheduled attempts nobody claimed within their schedule_to_start of their due time (at most
-- 100 at a time; those of finished runs left out, as above).
SELECT s.step_id, s.attempt_count, s.schedule_to_start FROM {schema}.steps s JOIN {schema}.runs r ON r.run_id = s.run_id
WHERE s.start_timeout_time < now() AND s.status = ANY(%(from_statuses)s::text[]) AND r.status = ANY(%(open_run_statuses)s::text[])
ORDER BY s.start_timeout_time
LIMIT 100;

-- fail_tasks --
-- Fail attempts (step_id at attempt, each with its own error), set-based (one or many:
-- db/coalescer.py): one row per input with its ordinal; a group holds each step once. Each is
-- failed only if it is the step's current attempt (else wrong_attempt), its run still takes writes
-- (finished_run), its status is one of its from_statuses (illegal_transition) and, when its
-- stream_id is given, that stream holds it (not_held) and it did not run past its start_to_close
-- (timed_out: the sweeper fails it, with the timeout's error). The attempt's history row becomes
-- failed_status; when retryable and retries remain (attempt_count <= retries), the step moves on to
-- its next attempt in retry_status, due after retry_backoff (the function: retry_delay grown by
-- backoff_coefficient per failed attempt, capped at max_retry_delay, less up to jitter of it at
-- random), its schedule_to_start clock started at that due time; else the step is failed_status
-- with this error. (Also the sweeper's fail of a scheduled attempt nobody claimed in time, with
-- from_statuses of that move and retryable false.) from_statuses is one comma-separated list per
-- input. A step (or its run) another transaction has locked is skipped (no row for its input): it
-- runs alone, in this statement without SKIP LOCKED, waiting for the lock.
-- Each row: its outcome, its context, and new_status and run_id when changed.
-- (`changed` reads `failed_attempt`, so each failed row is written before its step moves on,
-- and the two events come out in that order.) Each attempt row keeps its own times: the failed
-- one its failed_time, the next one its scheduled_time; the next attempt starts without the
-- child run and branch of the one before.
WITH inputs AS MATERIALIZED (
    SELECT *
    FROM unnest(%(step_id)s::uuid[], %(attempt)s::integer[], %(error)s::text[], %(retryable)s::boolean[], %(stream_id)s::uuid[],
                %(from_statuses)s::text[])
         WITH ORDINALITY AS i(step_id, attempt, error, retryable, stream_id, from_statuses, ordinal)
), locked AS (
    SELECT s.step_id, s.status, s.attempt_count, s.task_stream_id, s.worker_id, s.task_timeout_time, s.retries, r.status AS run_status,
           now() + {schema}.retry_backoff(s.retry_delay, s.backoff_coefficient, s.max_retry_delay, s.jitter, s.attempt_count) AS next_due
    FROM {schema}.steps s
    JOIN {schema}.runs r ON r.run_id = s.run_id
    WHERE s.step_id = ANY(%(step_id)s::uuid[])
    ORDER BY s.step_id
    FOR NO KEY UPDATE OF s SKIP LOCKED FOR SHARE OF r SKIP LOCKED
), found AS (
    SELECT i.ordinal, i.step_id AS sent_step_id, i.attempt AS sent_attempt, i.error::jsonb AS new_error, i.stream_id AS sent_stream_id,
           string_to_array(i.from_statuses, ',') AS sources, i.retryable AND l.attempt_count <= COALESCE(l.retries, 0) AS retry,
           l.*
    FROM inputs i LEFT JOIN locked l ON l.step_id = i.step_id
    WHERE l.step_id IS NOT NULL OR NOT EXISTS (SELECT FROM {schema}.steps x WHERE x.step_id = i.step_id)
), decided AS (
    SELECT f.*,
           CASE WHEN f.step_id IS NULL THEN 'missing'
                WHEN f.attempt_count <> f.sent_attempt THEN 'wrong_attempt'
                WHEN f.run_status <> ALL(%(open_run_statuses)s::text[]) THEN 'finished_run'
                WHEN f.status <> ALL(f.sources) THEN 'illegal_transition'
                WHEN f.task_stream_id IS DISTINCT FROM f.sent_stream_id AND f.sent_stream_id IS NOT NULL THEN 'not_held'
                WHEN f.sent_stream_id IS NOT NULL AND f.task_timeout_time <= now() THEN 'timed_out'
                ELSE 'changed' END AS outcome
    FROM found f
), failed_attempt AS (
    UPDATE {schema}.step_attempts a
    SET status = %(failed_status)s::text, error = d.new_error, update_time = now(), failed_time = now()
    FROM decided d
    WHERE a.step_id = d.step_id AND a.attempt = d.attempt_count AND d.outcome = 'changed'
    RETURNING a.step_id
), changed AS (
    UPDATE {schema}.steps s
    SET status = CASE WHEN d.retry THEN %(retry_status)s::text ELSE %(failed_status)s::text END,
        attempt_count = s.attempt_count + CASE WHEN d.retry THEN 1 ELSE 0 END,
        error = CASE WHEN d.retry THEN NULL ELSE d.new_error END,
        update_time = now(),
        scheduled_time = CASE WHEN d.retry THEN now() ELSE s.scheduled_time END,
        running_time = CASE WHEN d.retry THEN NULL ELSE s.running_time END,
        failed_time = CASE WHEN d.retry THEN NULL ELSE now() END,
        not_before = CASE WHEN d.retry THEN d.next_due END,
        start_timeout_time = CASE WHEN d.retry THEN d.next_due + s.schedule_to_start END,
        child_run_id = CASE WHEN d.retry THEN NULL ELSE s.child_run_id END,
        branch_key = CASE WHEN d.retry THEN NULL ELSE s.branch_key END,
        worker_id = NULL, task_stream_id = NULL, task_expire_time = NULL, task_timeout_time = NULL
    FROM decided d JOIN failed_attempt f ON f.step_id = d.step_id
    WHERE s.step_id = d.step_id
    RETURNING s.*, d.retry
), next_attempt AS (
    INSERT INTO {schema}.step_attempts (step_id, attempt, run_id, step_name, status, create_time, update_time, scheduled_time)
    SELECT step_id, attempt_count, run_id, step_name, status, update_time, update_time, scheduled_time FROM changed
    WHERE retry
)
SELECT d.ordinal, d.outcome, d.sent_step_id AS step_id, d.sent_attempt, d.status AS prior_status, d.attempt_count AS prior_attempt,
       d.run_status, d.worker_id AS holder, ch.status AS new_status, ch.run_id
FROM decided d LEFT JOIN changed ch ON ch.step_id = d.sent_step_id;

-- The worker streams connected to every server (table worker_streams), for
-- ListWorkers. A row is written when a stream subscribes, at each of its heartbeats, and deleted
-- when it ends; a row whose heartbeat_time + task_lease passed is a stream whose server died (a
-- live stream heartbeats within its task lease, or its server ends it): never listed, and deleted
-- by the sweeper.

-- worker_connected --
-- A stream subscribed (or heartbeats again after its row was swept while the database was away):
-- its row, as of now.
INSERT INTO {schema}.worker_streams
    (stream_id, worker_id, rpc_names, max_in_flight, tasks_in_flight, task_lease, server_id, server_address, credential)
VALUES (%(stream_id)s::uuid, %(worker_id)s::text, %(rpc_names)s::text[], %(max_in_flight)s::integer, %(tasks_in_flight)s::integer,
        %(task_lease)s::interval, %(server_id)s::uuid, %(server_address)s::text, %(credential)s::text)
ON CONFLICT (stream_id) DO UPDATE SET tasks_in_flight = EXCLUDED.tasks_in_flight, heartbeat_time = now()
RETURNING stream_id;

-- worker_heartbeat --
-- A worker's heartbeat, in one statement: move the task lease of the attempts its stream still
-- runs (those of step_ids it still holds; none when step_ids is empty), never past their
-- start_to_close timeout (task_timeout_time; least() ignores a NULL one), and note the heartbeat on its stream's row
-- (re-inserted if the sweeper took it while the database was away).
WITH extended AS (
    UPDATE {schema}.steps
    SET task_expire_time = least(now() + %(task_lease)s::interval, task_timeout_time)
    WHERE step_id = ANY(%(step_ids)s::uuid[]) AND task_stream_id = %(stream_id)s::uuid AND status = %(held_status)s::text
    RETURNING step_id
), noted AS (
    INSERT INTO {schema}.worker_streams
        (stream_id, worker_id, rpc_names, max_in_flight, tasks_in_flight, task_lease, server_id, server_address, credential)
    VALUES (%(stream_id)s::uuid, %(worker_id)s::text, %(rpc_names)s::text[], %(max_in_flight)s::integer,
            cardinality(%(step_ids)s::uuid[]), %(task_lease)s::interval, %(server_id)s::uuid, %(server_address)s::text,
            %(credential)s::text)
    ON CONFLICT (stream_id) DO UPDATE SET tasks_in_flight = EXCLUDED.tasks_in_flight, heartbeat_time = now()
)
SELECT count(*) AS extended FROM extended;

-- worker_disconnected --
-- A stream ended.
DELETE FROM {schema}.worker_streams WHERE stream_id = %(stream_id)s::uuid RETURNING stream_id;

-- list_workers --
-- The streams connected now, by connect time.
SELECT * FROM {schema}.worker_streams
WHERE heartbeat_time + task_lease >= now()
ORDER BY connect_time, stream_id;

-- sweep_workers --
-- Delete the rows of streams whose server stopped heartbeating them (see above).
DELETE FROM {schema}.worker_streams WHERE heartbeat_time + task_lease < now() RETURNING stream_id;
