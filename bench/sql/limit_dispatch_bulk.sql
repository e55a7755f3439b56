-- Remote mode in bulk as pgbench runs it: the least SQL behind a worker taking up to
-- :claim_size (bench/dispatch.py's BULK_IN_FLIGHT) scheduled steps in one statement and completing
-- each with its own statement, as the server does. sql_limit.py repeats the second statement once
-- per claimed place, {place} numbering them 1..claim_size; a place past the claim completes nothing.

-- claim the oldest due steps, skipping those other clients are claiming
WITH picked AS (
    SELECT step_id FROM steps
    WHERE status = 'scheduled' AND rpc_name = ':rpc_name' AND not_before <= now()
    ORDER BY not_before, step_id
    LIMIT :claim_size
    FOR NO KEY UPDATE SKIP LOCKED
), step AS (
    UPDATE steps s SET status = 'running', not_before = NULL, update_time = now()
    FROM picked WHERE s.step_id = picked.step_id
    RETURNING s.step_id, s.attempt_count
), attempt AS (
    UPDATE step_attempts a SET status = 'running', update_time = now()
    FROM step WHERE a.step_id = step.step_id AND a.attempt = step.attempt_count
    RETURNING a.step_id
)
SELECT coalesce(array_agg(step_id)::text, '{}') AS claimed FROM attempt \gset

-- complete one of them with its result
WITH step AS (
    UPDATE steps SET status = 'succeeded', result = ':step_result', update_time = now()
    WHERE step_id = (':claimed'::uuid[])[{place}] AND status = 'running'
    RETURNING step_id, attempt_count
)
UPDATE step_attempts a SET status = 'succeeded', result = ':step_result', update_time = now()
FROM step WHERE a.step_id = step.step_id AND a.attempt = step.attempt_count;
