-- Every SQL statement of the store, each under a "-- name --" header with what it does.
-- {schema} is the quoted schema identifier; %(name)s are bound parameters. Every state change is
-- ONE statement: it locks the rows it decides on, checks the current status against the allowed
-- ones given by server/transitions.py, and writes the row and its history together, so two racing
-- writers cannot both win. A statement that changes nothing returns the current status so the
-- store can say why.

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
    SELECT run_id, status, output, error
    FROM {schema}.runs
    WHERE run_id = %(run_id)s::uuid
    FOR NO KEY UPDATE
), changed AS (
    UPDATE {schema}.runs r
    SET status = %(status)s::text,
        output = CASE WHEN %(set_output)s::boolean THEN %(output)s::jsonb ELSE r.output END,
        error = COALESCE(%(error)s::jsonb, r.error),
        update_time = now()
    FROM current_run c
    WHERE r.run_id = c.run_id AND c.status = ANY(%(from_statuses)s::text[])
    RETURNING r.*
)
SELECT c.status AS prior_status,
       (NOT %(set_output)s::boolean OR c.output IS NOT DISTINCT FROM %(output)s::jsonb)
           AND (%(error)s::jsonb IS NULL OR c.error IS NOT DISTINCT FROM %(error)s::jsonb) AS same_payload,
       ch.*
FROM current_run c LEFT JOIN changed ch ON true;

-- insert_step --
-- Insert a step of a running run in status 'pending' with its first history row. The run row is
-- share-locked so a concurrent run status change waits for this insert (or this sees it).
WITH run AS (
    SELECT run_id, status FROM {schema}.runs WHERE run_id = %(run_id)s::uuid FOR SHARE
), inserted AS (
    INSERT INTO {schema}.steps (step_id, run_id, step_name, rpc_name, data, status, retries, retry_delay)
    SELECT gen_random_uuid(), run.run_id, %(step_name)s::text, %(rpc_name)s::text, %(data)s::jsonb,
           'pending', %(retries)s::integer, %(retry_delay)s::interval
    FROM run
    WHERE run.status = 'running'
    ON CONFLICT (run_id, step_name) DO NOTHING
    RETURNING *
), first_attempt AS (
    INSERT INTO {schema}.step_attempts (step_id, attempt, run_id, step_name, status, create_time, update_time)
    SELECT step_id, attempt_count, run_id, step_name, status, create_time, update_time FROM inserted
)
SELECT run.status AS run_status, i.*
FROM run LEFT JOIN inserted i ON true;

-- get_step --
-- One step by run and name.
SELECT * FROM {schema}.steps WHERE run_id = %(run_id)s::uuid AND step_name = %(step_name)s::text;

-- get_step_by_id --
-- One step by id.
SELECT * FROM {schema}.steps WHERE step_id = %(step_id)s::uuid;

-- set_step_status --
-- Move a step to to_status if its current status is one of from_statuses and its run is still
-- running; stamp the status's time, store result (succeeded) or error (failed), and update the
-- current attempt's history row. The step is locked for update and its run share-locked, so the
-- decision is made on the latest committed rows.
WITH current_step AS (
    SELECT s.step_id, s.status, s.result, s.error, r.status AS run_status
    FROM {schema}.steps s JOIN {schema}.runs r ON r.run_id = s.run_id
    WHERE s.step_id = %(step_id)s::uuid
    FOR NO KEY UPDATE OF s FOR SHARE OF r
), changed AS (
    UPDATE {schema}.steps s
    SET status = %(to_status)s::text,
        result = CASE WHEN %(to_status)s::text = 'succeeded' THEN %(result)s::jsonb ELSE s.result END,
        error = CASE WHEN %(to_status)s::text = 'failed' THEN %(error)s::jsonb ELSE s.error END,
        update_time = now(),
        scheduled_time = CASE WHEN %(to_status)s::text = 'scheduled' THEN now() ELSE s.scheduled_time END,
        running_time = CASE WHEN %(to_status)s::text = 'running' THEN now() ELSE s.running_time END,
        succeeded_time = CASE WHEN %(to_status)s::text = 'succeeded' THEN now() ELSE s.succeeded_time END,
        failed_time = CASE WHEN %(to_status)s::text = 'failed' THEN now() ELSE s.failed_time END
    FROM current_step c
    WHERE s.step_id = c.step_id AND c.run_status = 'running' AND c.status = ANY(%(from_statuses)s::text[])
    RETURNING s.*
), attempt AS (
    UPDATE {schema}.step_attempts a
    SET status = ch.status, result = ch.result, error = ch.error, update_time = ch.update_time
    FROM changed ch
    WHERE a.step_id = ch.step_id AND a.attempt = ch.attempt_count
)
SELECT c.status AS prior_status, c.run_status,
       c.result IS NOT DISTINCT FROM %(result)s::jsonb AND c.error IS NOT DISTINCT FROM %(error)s::jsonb AS same_payload,
       ch.*
FROM current_step c LEFT JOIN changed ch ON true;

-- create_retry_attempt --
-- Start the next attempt of a step whose status is one of from_statuses (a failed one): same
-- step, attempt_count + 1, result, error and attempt times cleared, a new history row.
WITH current_step AS (
    SELECT s.step_id, s.status, r.status AS run_status
    FROM {schema}.steps s JOIN {schema}.runs r ON r.run_id = s.run_id
    WHERE s.step_id = %(step_id)s::uuid
    FOR NO KEY UPDATE OF s FOR SHARE OF r
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
        failed_time = NULL
    FROM current_step c
    WHERE s.step_id = c.step_id AND c.run_status = 'running' AND c.status = ANY(%(from_statuses)s::text[])
    RETURNING s.*
), next_attempt AS (
    INSERT INTO {schema}.step_attempts (step_id, attempt, run_id, step_name, status, create_time, update_time)
    SELECT step_id, attempt_count, run_id, step_name, status, update_time, update_time FROM changed
)
SELECT c.status AS prior_status, c.run_status, false AS same_payload, ch.*
FROM current_step c LEFT JOIN changed ch ON true;

-- ping --
-- The health probe: one round trip.
SELECT 1;
