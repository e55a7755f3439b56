-- One dispatched step as pgbench runs it: the least SQL behind a worker taking a scheduled step
-- and completing it. Two autocommit statements, each touching the step and its current attempt;
-- the steps were scheduled beforehand (bench/dispatch.py fills the backlog).

-- claim the oldest due step, skipping those other clients are claiming
WITH picked AS (
    SELECT step_id FROM steps
    WHERE status = 'scheduled' AND rpc_name = ':rpc_name' AND not_before <= now()
    ORDER BY not_before, step_id
    LIMIT 1
    FOR NO KEY UPDATE SKIP LOCKED
), step AS (
    UPDATE steps s SET status = 'running', not_before = NULL, update_time = now()
    FROM picked WHERE s.step_id = picked.step_id
    RETURNING s.step_id, s.attempt_count
)
UPDATE step_attempts a SET status = 'running', update_time = now()
FROM step WHERE a.step_id = step.step_id AND a.attempt = step.attempt_count
RETURNING a.step_id \gset

-- complete it with its result
WITH step AS (
    UPDATE steps SET status = 'succeeded', result = ':step_result', update_time = now()
    WHERE step_id = ':step_id' AND status = 'running'
    RETURNING step_id, attempt_count
)
UPDATE step_attempts a SET status = 'succeeded', result = ':step_result', update_time = now()
FROM step WHERE a.step_id = step.step_id AND a.attempt = step.attempt_count;
