-- The step lifecycle of limit_lifecycle.sql in its set-based form, as pgbench runs it: the same
-- six statements, each taking the inputs of a group of :group_size lifecycles as arrays (one
-- element per lifecycle, unnest ... WITH ORDINALITY numbering them) and returning one row per
-- input with its ordinal, the form in which a server serves a group of concurrent operations with
-- one statement and one commit. Each statement is its own (autocommit) transaction. Rows are locked
-- with FOR NO KEY UPDATE SKIP LOCKED, so a row another transaction holds would leave the group
-- instead of making it wait. The payloads come in as pgbench variables from bench/payloads.py,
-- each repeated into an array of one per lifecycle; the ids each statement returns go to the next
-- as a uuid array (\gset keeps one value: the rows are aggregated in ordinal order).

-- create_run: the group's runs
WITH given AS (
    SELECT gen_random_uuid() AS run_id, workflow, input::jsonb AS input, ord
    FROM unnest(array_fill(':workflow'::text, ARRAY[:group_size]), array_fill(':run_input'::text, ARRAY[:group_size]))
        WITH ORDINALITY AS g(workflow, input, ord)
), created AS (
    INSERT INTO runs (run_id, workflow, status, input)
    SELECT run_id, workflow, 'running', input FROM given
    RETURNING run_id
)
SELECT array_agg(given.run_id ORDER BY given.ord)::text AS run_ids
FROM given JOIN created USING (run_id) \gset

-- insert_step_state: each run's step and its first attempt
WITH given AS (
    SELECT gen_random_uuid() AS step_id, run_id, step_name, rpc_name, data::jsonb AS data, ord
    FROM unnest(':run_ids'::uuid[], array_fill(':step_name'::text, ARRAY[:group_size]),
                array_fill(':rpc_name'::text, ARRAY[:group_size]), array_fill(':step_data'::text, ARRAY[:group_size]))
        WITH ORDINALITY AS g(run_id, step_name, rpc_name, data, ord)
), step AS (
    INSERT INTO steps (step_id, run_id, step_name, rpc_name, data, status, retries)
    SELECT step_id, run_id, step_name, rpc_name, data, 'pending', :retries FROM given
    RETURNING step_id
), attempt AS (
    INSERT INTO step_attempts (step_id, attempt, status)
    SELECT step_id, 1, 'pending' FROM step
    RETURNING step_id
)
SELECT array_agg(given.step_id ORDER BY given.ord)::text AS step_ids
FROM given JOIN attempt USING (step_id) \gset

-- set_step_running: each step and its current attempt
WITH given AS (
    SELECT step_id, ord FROM unnest(':step_ids'::uuid[]) WITH ORDINALITY AS g(step_id, ord)
), locked AS (
    SELECT s.step_id FROM steps s JOIN given USING (step_id)
    FOR NO KEY UPDATE OF s SKIP LOCKED
), step AS (
    UPDATE steps s SET status = 'running', update_time = now()
    FROM locked WHERE s.step_id = locked.step_id
    RETURNING s.step_id, s.attempt_count
), attempt AS (
    UPDATE step_attempts a SET status = 'running', update_time = now()
    FROM step WHERE a.step_id = step.step_id AND a.attempt = step.attempt_count
    RETURNING a.step_id
)
SELECT given.ord, attempt.step_id IS NOT NULL AS applied
FROM given LEFT JOIN attempt USING (step_id) ORDER BY given.ord;

-- set_step_result: each step and its current attempt, with its result
WITH given AS (
    SELECT step_id, result::jsonb AS result, ord
    FROM unnest(':step_ids'::uuid[], array_fill(':step_result'::text, ARRAY[:group_size]))
        WITH ORDINALITY AS g(step_id, result, ord)
), locked AS (
    SELECT s.step_id, given.result FROM steps s JOIN given USING (step_id)
    FOR NO KEY UPDATE OF s SKIP LOCKED
), step AS (
    UPDATE steps s SET status = 'succeeded', result = locked.result, update_time = now()
    FROM locked WHERE s.step_id = locked.step_id
    RETURNING s.step_id, s.attempt_count, s.result
), attempt AS (
    UPDATE step_attempts a SET status = 'succeeded', result = step.result, update_time = now()
    FROM step WHERE a.step_id = step.step_id AND a.attempt = step.attempt_count
    RETURNING a.step_id
)
SELECT given.ord, attempt.step_id IS NOT NULL AS applied
FROM given LEFT JOIN attempt USING (step_id) ORDER BY given.ord;

-- get_step_state: each run's step
SELECT g.ord, s.step_id, s.status, s.data, s.result, s.error, s.attempt_count, s.retries
FROM unnest(':run_ids'::uuid[], array_fill(':step_name'::text, ARRAY[:group_size])) WITH ORDINALITY AS g(run_id, step_name, ord)
LEFT JOIN steps s ON s.run_id = g.run_id AND s.step_name = g.step_name
ORDER BY g.ord;

-- update_run_status: each run completed, with its output
WITH given AS (
    SELECT run_id, output::jsonb AS output, ord
    FROM unnest(':run_ids'::uuid[], array_fill(':run_output'::text, ARRAY[:group_size]))
        WITH ORDINALITY AS g(run_id, output, ord)
), locked AS (
    SELECT r.run_id, given.output FROM runs r JOIN given USING (run_id)
    FOR NO KEY UPDATE OF r SKIP LOCKED
), updated AS (
    UPDATE runs r SET status = 'completed', output = locked.output, update_time = now()
    FROM locked WHERE r.run_id = locked.run_id
    RETURNING r.run_id
)
SELECT given.ord, updated.run_id IS NOT NULL AS applied
FROM given LEFT JOIN updated USING (run_id) ORDER BY given.ord;
