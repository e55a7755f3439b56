-- Remote mode's statements: hand due steps to workers, keep their task leases, fail lost ones.
-- {schema} is the quoted schema identifier; %(name)s are bound parameters.

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
