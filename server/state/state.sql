-- Every statement on runs and steps, each under a "-- name --" header with what it does.
-- {schema} is the quoted schema identifier; %(name)s are bound parameters. Every state change is
-- ONE statement: it locks the rows it decides on, checks the current status against the allowed
-- ones given by state/transitions.py, and writes the row and its history together, so two racing
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
