-- One step lifecycle as pgbench runs it: six statements, each its own (autocommit) transaction,
-- the least SQL behind the six RPCs of the gRPC figure. The payloads come in as pgbench variables
-- (-D workflow=... and so on) from bench/payloads.py; search_path names the bench's schema.

-- create_run
INSERT INTO runs (workflow, status, input)
VALUES (':workflow', 'running', ':run_input')
RETURNING run_id \gset

-- insert_step_state: the step and its first attempt
WITH step AS (
    INSERT INTO steps (run_id, step_name, rpc_name, data, status, retries)
    VALUES (':run_id', ':step_name', ':rpc_name', ':step_data', 'pending', :retries)
    RETURNING step_id
)
INSERT INTO step_attempts (step_id, attempt, status)
SELECT step_id, 1, 'pending' FROM step
RETURNING step_id \gset

-- set_step_running: the step and its current attempt
WITH step AS (
    UPDATE steps SET status = 'running', update_time = now()
    WHERE step_id = ':step_id'
    RETURNING step_id, attempt_count
)
UPDATE step_attempts a SET status = 'running', update_time = now()
FROM step WHERE a.step_id = step.step_id AND a.attempt = step.attempt_count;

-- set_step_result: the step and its current attempt
WITH step AS (
    UPDATE steps SET status = 'succeeded', result = ':step_result', update_time = now()
    WHERE step_id = ':step_id'
    RETURNING step_id, attempt_count
)
UPDATE step_attempts a SET status = 'succeeded', result = ':step_result', update_time = now()
FROM step WHERE a.step_id = step.step_id AND a.attempt = step.attempt_count;

-- get_step_state
SELECT step_id, status, data, result, error, attempt_count, retries
FROM steps WHERE run_id = ':run_id' AND step_name = ':step_name';

-- update_run_status: completed, with its output
UPDATE runs SET status = 'completed', output = ':run_output', update_time = now()
WHERE run_id = ':run_id';
