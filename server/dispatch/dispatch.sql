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
-- steps_due order with their run's status as a per-row filter, not a join, so the plan stays a
-- short ordered index scan however few runs are still running. The picked steps' runs are then
-- share-locked, skipping a run being finished right now (its steps stay scheduled).
WITH picked AS (
    SELECT s.step_id, s.run_id
    FROM {schema}.steps s
    WHERE s.status = ANY(%(from_statuses)s::text[]) AND s.rpc_name = ANY(%(rpc_names)s::text[]) AND s.not_before <= now()
      AND (SELECT r.status FROM {schema}.runs r WHERE r.run_id = s.run_id) = ANY(%(open_run_statuses)s::text[])
    ORDER BY s.not_before, s.step_id
    LIMIT %(limit)s
    FOR NO KEY UPDATE OF s SKIP LOCKED
), running_runs AS (
    SELECT r.run_id FROM {schema}.runs r
    WHERE r.run_id IN (SELECT run_id FROM picked) AND r.status = ANY(%(open_run_statuses)s::text[])
    FOR SHARE SKIP LOCKED
), changed AS (
    UPDATE {schema}.steps s
    SET status = %(to_status)s::text, running_time = now(), update_time = now(), not_before = NULL,
        worker_id = %(worker_id)s::text, task_stream_id = %(stream_id)s::uuid,
        task_expire_time = now() + %(task_lease)s::interval
    FROM picked p JOIN running_runs rr ON rr.run_id = p.run_id
    WHERE s.step_id = p.step_id
    RETURNING s.step_id, s.run_id, s.step_name, s.rpc_name, s.data, s.attempt_count, s.task_expire_time
), attempt AS (
    UPDATE {schema}.step_attempts a
    SET status = %(to_status)s::text, update_time = now(), running_time = now()
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
-- lease: those still running at the given attempt and handed out by the server.
UPDATE {schema}.steps s
SET task_stream_id = %(stream_id)s::uuid, worker_id = %(worker_id)s::text, task_expire_time = now() + %(task_lease)s::interval
FROM unnest(%(step_ids)s::uuid[], %(attempts)s::integer[]) AS i(step_id, attempt)
WHERE s.step_id = i.step_id AND s.attempt_count = i.attempt AND s.status = %(held_status)s::text AND s.task_stream_id IS NOT NULL
RETURNING s.step_id, s.attempt_count, s.run_id;

-- finished_runs --
-- Of the given runs, those that are finished (no longer in open_run_statuses), with their status
-- and error: the runs whose attempts a worker stream must tell its worker to cancel.
SELECT run_id, status, error FROM {schema}.runs
WHERE run_id = ANY(%(run_ids)s::uuid[]) AND status <> ALL(%(open_run_statuses)s::text[]);

-- expired_tasks --
-- Handed-out attempts whose task lease passed: their worker, or its server, stopped heartbeating.
-- Steps of finished runs are left out: they take no more writes, so they would come back on
-- every sweep and, past 100 of them, hide the others.
SELECT s.step_id, s.attempt_count FROM {schema}.steps s JOIN {schema}.runs r ON r.run_id = s.run_id
WHERE s.task_expire_time < now() AND s.status = %(held_status)s::text AND r.status = ANY(%(open_run_statuses)s::text[])
ORDER BY s.task_expire_time
LIMIT 100;

-- fail_tasks --
-- Fail the given attempts (step_ids[i] at attempts[i]) with one error, each only if it is the
-- step's current attempt (else wrong_attempt), its run still takes writes (finished_run), its
-- status is one of from_statuses (illegal_transition) and, when stream_id is given, that stream
-- holds it (not_held). The attempt's history row becomes failed_status; when retryable and
-- retries remain (attempt_count <= retries), the step moves on to its next attempt in
-- retry_status, due after retry_delay, else the step is failed_status with this error.
-- One row per attempt given: its outcome, its context, and new_status and run_id when changed.
-- (`changed` reads `failed_attempt`, so each failed row is written before its step moves on,
-- and the two events come out in that order.) Each attempt row keeps its own times: the failed
-- one its failed_time, the next one its scheduled_time; the next attempt starts without the
-- child run and branch of the one before.
WITH sent AS (
    SELECT * FROM unnest(%(step_ids)s::uuid[], %(attempts)s::integer[]) AS i(step_id, attempt)
), current_step AS (
    SELECT s.step_id, s.status, s.attempt_count, s.task_stream_id, s.worker_id, r.status AS run_status,
           %(retryable)s::boolean AND s.attempt_count <= COALESCE(s.retries, 0) AS retry
    FROM {schema}.steps s
    JOIN {schema}.runs r ON r.run_id = s.run_id
    WHERE s.step_id IN (SELECT step_id FROM sent)
    ORDER BY s.step_id
    FOR NO KEY UPDATE OF s FOR SHARE OF r
), decided AS (
    SELECT i.step_id AS sent_step_id, i.attempt AS sent_attempt, c.*,
           CASE WHEN c.step_id IS NULL THEN 'missing'
                WHEN c.attempt_count <> i.attempt THEN 'wrong_attempt'
                WHEN c.run_status <> ALL(%(open_run_statuses)s::text[]) THEN 'finished_run'
                WHEN c.status <> ALL(%(from_statuses)s::text[]) THEN 'illegal_transition'
                WHEN c.task_stream_id IS DISTINCT FROM %(stream_id)s::uuid AND %(stream_id)s::uuid IS NOT NULL THEN 'not_held'
                ELSE 'changed' END AS outcome
    FROM sent i LEFT JOIN current_step c ON c.step_id = i.step_id
), failed_attempt AS (
    UPDATE {schema}.step_attempts a
    SET status = %(failed_status)s::text, error = %(error)s::jsonb, update_time = now(), failed_time = now()
    FROM decided d
    WHERE a.step_id = d.step_id AND a.attempt = d.attempt_count AND d.outcome = 'changed'
    RETURNING a.step_id
), changed AS (
    UPDATE {schema}.steps s
    SET status = CASE WHEN d.retry THEN %(retry_status)s::text ELSE %(failed_status)s::text END,
        attempt_count = s.attempt_count + CASE WHEN d.retry THEN 1 ELSE 0 END,
        error = CASE WHEN d.retry THEN NULL ELSE %(error)s::jsonb END,
        update_time = now(),
        scheduled_time = CASE WHEN d.retry THEN now() ELSE s.scheduled_time END,
        running_time = CASE WHEN d.retry THEN NULL ELSE s.running_time END,
        failed_time = CASE WHEN d.retry THEN NULL ELSE now() END,
        not_before = CASE WHEN d.retry THEN now() + COALESCE(s.retry_delay, interval '0') END,
        child_run_id = CASE WHEN d.retry THEN NULL ELSE s.child_run_id END,
        branch_key = CASE WHEN d.retry THEN NULL ELSE s.branch_key END,
        worker_id = NULL, task_stream_id = NULL, task_expire_time = NULL
    FROM decided d JOIN failed_attempt f ON f.step_id = d.step_id
    WHERE s.step_id = d.step_id
    RETURNING s.*, d.retry
), next_attempt AS (
    INSERT INTO {schema}.step_attempts (step_id, attempt, run_id, step_name, status, create_time, update_time, scheduled_time)
    SELECT step_id, attempt_count, run_id, step_name, status, update_time, update_time, scheduled_time FROM changed
    WHERE retry
)
SELECT d.outcome, d.sent_step_id AS step_id, d.sent_attempt, d.status AS prior_status, d.attempt_count AS prior_attempt,
       d.run_status, d.worker_id AS holder, ch.status AS new_status, ch.run_id
FROM decided d LEFT JOIN changed ch ON ch.step_id = d.sent_step_id;

-- The worker streams connected to every server (table worker_streams, migration 0009), for
-- ListWorkers. A row is written when a stream subscribes, at each of its heartbeats, and deleted
-- when it ends; a row whose heartbeat_time + task_lease passed is a stream whose server died (a
-- live stream heartbeats within its task lease, or its server ends it): never listed, and deleted
-- by the sweeper.

-- worker_connected --
-- A stream subscribed (or heartbeats again after its row was swept while the database was away):
-- its row, as of now.
INSERT INTO {schema}.worker_streams
    (stream_id, worker_id, rpc_names, max_in_flight, tasks_in_flight, task_lease, server_id, server_address)
VALUES (%(stream_id)s::uuid, %(worker_id)s::text, %(rpc_names)s::text[], %(max_in_flight)s::integer, %(tasks_in_flight)s::integer,
        %(task_lease)s::interval, %(server_id)s::uuid, %(server_address)s::text)
ON CONFLICT (stream_id) DO UPDATE SET tasks_in_flight = EXCLUDED.tasks_in_flight, heartbeat_time = now()
RETURNING stream_id;

-- worker_heartbeat --
-- A worker's heartbeat, in one statement: move the task lease of the attempts its stream still
-- runs (those of step_ids it still holds; none when step_ids is empty) and note the heartbeat on its stream's row
-- (re-inserted if the sweeper took it while the database was away).
WITH extended AS (
    UPDATE {schema}.steps
    SET task_expire_time = now() + %(task_lease)s::interval
    WHERE step_id = ANY(%(step_ids)s::uuid[]) AND task_stream_id = %(stream_id)s::uuid AND status = %(held_status)s::text
    RETURNING step_id
), noted AS (
    INSERT INTO {schema}.worker_streams
        (stream_id, worker_id, rpc_names, max_in_flight, tasks_in_flight, task_lease, server_id, server_address)
    VALUES (%(stream_id)s::uuid, %(worker_id)s::text, %(rpc_names)s::text[], %(max_in_flight)s::integer,
            cardinality(%(step_ids)s::uuid[]), %(task_lease)s::interval, %(server_id)s::uuid, %(server_address)s::text)
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
