-- Every statement on runs and steps, each under a "-- name --" header with what it does.
-- {schema} is the quoted schema identifier; %(name)s are bound parameters. Every state change is
-- ONE statement: it locks the rows it decides on, decides its outcome, and writes the row and
-- its history together only when the outcome is 'changed', so two racing writers cannot both win.
-- The statuses a change may start from and go to come from state/transitions.py as parameters
-- (from_statuses, to_status, open_run_statuses: the run statuses that still take writes). The
-- only status literals left map a status to its own column (its time stamp, result or error).
--
-- Outcome: every state-changing statement returns one text column `outcome` (state/outcomes.py
-- maps it to the answer or the error), decided in its `decided` CTE, first match wins:
--   missing            no such run / step
--   unknown_fence      a fencing token was given but no lease was ever granted on its key
--   stale_fence        the fencing token is no longer its key's latest
--   wrong_attempt      (a worker's report) the step is at another attempt
--   wrong_rpc          (claim_step) the step runs another function than the one named
--   missing_child      (set_step_child_run) no run has the child run's id
--   same               already in the target status with the same payload: nothing written
--   different_payload  already in the target status with another result / error / output
--   worker_task        (set_step_status, claim_step) the step is a worker's task and the caller may not take one
--   finished_run       the run is finished: no more run or step writes
--   illegal_transition the current status is not one of from_statuses
--   not_held           (a worker's report) the attempt is not held by the reporting stream
--   too_large          (update_run_state) the run's state would pass the payload limit
--   timed_out          (a worker's report) the attempt ran past its start_to_close (task_timeout_time)
--   changed            written
--   duplicate_name     (insert_step) the run has a step of that name
--   request_id_reused  (create_run) the request_id belongs to a run of another workflow or input
-- Beside it they return the context the messages need (prior_status, prior_attempt, run_status,
-- lease_key, current_token, holder) and the row: as written when changed, as it is otherwise.
--
-- Fencing: a write given %(fencing_token)s share-locks the lease row of its key (by default the
-- run's key 'run:<run_id>') and writes only when the token is still the key's latest, so a
-- holder whose lease was taken over cannot write, and a takeover waits for a write in flight.
-- In a group (%(alone)s false: db/coalescer.py) no member may wait for another transaction's lock:
-- fence_check's wait is %(alone)s, so in a group it says `locked` for a lease row another
-- transaction holds, and the statement returns no row for that input (WHERE outcome <> 'locked'):
-- it runs alone, where fence_check waits for the lease row as it always did. `locked` is never an answer.

-- create_run --
-- Insert runs in their start status (status), set-based (one or many: db/coalescer.py): one row per
-- input with its ordinal. With a request_id that exists already, return that run (DO UPDATE, unlike
-- DO NOTHING, returns the existing row even when it was committed after this statement's snapshot):
-- same when the request matches it, else request_id_reused. A group holds each request_id once (ON
-- CONFLICT may not touch a row twice), so an input's row is the one of its new id or its request_id.
WITH inputs AS MATERIALIZED (
    SELECT gen_random_uuid() AS new_run_id, i.*
    FROM unnest(%(workflow)s::text[], %(input)s::text[], %(request_id)s::text[], %(inline)s::boolean[], %(graph_hash)s::text[],
                %(metadata)s::text[], %(deterministic)s::boolean[], %(planned_steps)s::text[])
         WITH ORDINALITY AS i(workflow, input, request_id, inline, graph_hash, metadata, deterministic, planned_steps, ordinal)
), written AS (
    INSERT INTO {schema}.runs AS r (run_id, workflow, status, input, request_id, inline, graph_hash, metadata, deterministic, planned_steps)
    SELECT new_run_id, workflow, %(status)s::text, input::jsonb, request_id, inline, graph_hash, metadata::jsonb, deterministic,
           planned_steps::jsonb
    FROM inputs ORDER BY ordinal
    ON CONFLICT (request_id) WHERE request_id IS NOT NULL
    DO UPDATE SET request_id = EXCLUDED.request_id
    RETURNING r.xmax = 0 AS inserted, r AS run
)
SELECT i.ordinal,
       CASE WHEN w.inserted THEN 'changed'
            WHEN (w.run).workflow = i.workflow AND (w.run).input = i.input::jsonb THEN 'same'
            ELSE 'request_id_reused' END AS outcome,
       (w.run).*
FROM inputs i JOIN written w ON (w.run).run_id = i.new_run_id OR (w.run).request_id = i.request_id;

-- get_run --
-- Runs by id, set-based (one or many: db/coalescer.py): one row per input with its ordinal, the
-- run's columns NULL when no run has the id.
SELECT i.ordinal, r.*
FROM unnest(%(run_id)s::uuid[]) WITH ORDINALITY AS i(run_id, ordinal)
LEFT JOIN {schema}.runs r ON r.run_id = i.run_id;

-- get_run_history --
-- Every attempt of every step of a run, oldest first. The run row is joined so a missing run
-- (no row at all) is told apart from a run without steps (one row with a NULL step_id).
SELECT a.step_id, a.step_name, a.attempt, a.status, a.result, a.error, a.create_time, a.update_time,
       a.scheduled_time, a.running_time, a.succeeded_time, a.failed_time
FROM {schema}.runs r
LEFT JOIN {schema}.step_attempts a ON a.run_id = r.run_id
WHERE r.run_id = %(run_id)s::uuid
ORDER BY a.create_time, a.seq;

-- update_run_status --
-- Move runs to to_status if the current status is one of from_statuses, set-based (one or many:
-- db/coalescer.py): one row per input with its ordinal; a group holds each run once. output is
-- written only when set_output is true; error when given, else cleared when clear_error (a move to
-- running or completed: the stored error described the suspension the run left), else kept.
-- from_statuses is one comma-separated list per input. A run another transaction has locked is
-- skipped (no row for its input): it runs alone, in this statement without SKIP LOCKED.
WITH inputs AS MATERIALIZED (
    SELECT *
    FROM unnest(%(run_id)s::uuid[], %(to_status)s::text[], %(set_output)s::boolean[], %(output)s::text[], %(error)s::text[],
                %(clear_error)s::boolean[], %(from_statuses)s::text[], %(fencing_token)s::bigint[], %(lease_key)s::text[])
         WITH ORDINALITY AS i(run_id, to_status, set_output, output, error, clear_error, from_statuses, fencing_token, lease_key, ordinal)
), current_run AS (
    SELECT r AS run, r.run_id, r.status, r.output, r.error
    FROM {schema}.runs r
    WHERE r.run_id = ANY(%(run_id)s::uuid[])
    ORDER BY r.run_id
    FOR NO KEY UPDATE SKIP LOCKED
), found AS (
    SELECT i.ordinal, i.to_status, i.set_output, i.output::jsonb AS new_output, i.error::jsonb AS new_error, i.clear_error,
           string_to_array(i.from_statuses, ',') AS from_statuses, i.fencing_token,
           c.run, c.run_id, c.status, c.output, c.error,
           CASE WHEN c.run_id IS NOT NULL THEN COALESCE(i.lease_key, 'run:' || c.run_id::text) END AS lease_key
    FROM inputs i LEFT JOIN current_run c ON c.run_id = i.run_id
    WHERE c.run_id IS NOT NULL OR NOT EXISTS (SELECT FROM {schema}.runs x WHERE x.run_id = i.run_id)
), decided AS (
    SELECT c.*, f.current_token,
           CASE WHEN c.run_id IS NULL THEN 'missing'
                WHEN f.refusal IS NOT NULL THEN f.refusal
                WHEN c.status = c.to_status THEN
                    CASE WHEN (NOT c.set_output OR c.output IS NOT DISTINCT FROM c.new_output)
                              AND (c.new_error IS NULL OR c.error IS NOT DISTINCT FROM c.new_error)
                         THEN 'same' ELSE 'different_payload' END
                WHEN c.status <> ALL(%(open_run_statuses)s::text[]) THEN 'finished_run'
                WHEN c.status <> ALL(c.from_statuses) THEN 'illegal_transition'
                ELSE 'changed' END AS outcome
    FROM found c
    LEFT JOIN LATERAL {schema}.fence_check(c.lease_key, c.fencing_token, %(alone)s::boolean) AS f ON true
), changed AS (
    UPDATE {schema}.runs r
    SET status = d.to_status,
        output = CASE WHEN d.set_output THEN d.new_output ELSE r.output END,
        error = COALESCE(d.new_error, CASE WHEN d.clear_error THEN NULL ELSE r.error END),
        update_time = now(),
        fencing_token = GREATEST(r.fencing_token, d.fencing_token)
    FROM decided d
    WHERE r.run_id = d.run_id AND d.outcome = 'changed'
    RETURNING r AS run
)
SELECT d.ordinal, d.outcome, d.status AS prior_status, d.lease_key, d.current_token,
       (CASE WHEN d.outcome = 'changed' THEN ch.run ELSE d.run END).*
FROM decided d LEFT JOIN changed ch ON (ch.run).run_id = d.run_id
WHERE d.outcome <> 'locked';

-- insert_step --
-- Insert steps of runs that still take writes, in their start status (status), each with its first
-- history row, set-based (one or many: db/coalescer.py): one row per input with its ordinal; a
-- group holds each (run, step name) once. The run row is share-locked so a concurrent run status
-- change waits for this insert (or this sees it); a run another transaction has locked for update
-- is skipped (no row for its input): it runs alone, in this statement without SKIP LOCKED, waiting.
-- A name taken already (ON CONFLICT, so also by an insert committed after this statement's
-- snapshot) is duplicate_name. Each option not given (opt_*, NULL) is taken from the rpc name's
-- dispatch defaults (table dispatch_defaults), read in this same statement; priority is 0 when neither sets it.
WITH inputs AS MATERIALIZED (
    SELECT *
    FROM unnest(%(run_id)s::uuid[], %(step_name)s::text[], %(rpc_name)s::text[], %(from_step_name)s::text[], %(data)s::text[],
                %(fencing_token)s::bigint[], %(lease_key)s::text[],
                %(opt_retries)s::integer[], %(opt_retry_delay)s::interval[], %(opt_backoff_coefficient)s::double precision[],
                %(opt_max_retry_delay)s::interval[], %(opt_jitter)s::double precision[], %(opt_start_to_close)s::interval[],
                %(opt_schedule_to_start)s::interval[], %(opt_priority)s::integer[], %(opt_concurrency_key)s::text[])
         WITH ORDINALITY AS i(run_id, step_name, rpc_name, from_step_name, data, fencing_token, lease_key,
                              opt_retries, opt_retry_delay, opt_backoff_coefficient, opt_max_retry_delay, opt_jitter,
                              opt_start_to_close, opt_schedule_to_start, opt_priority, opt_concurrency_key, ordinal)
), run AS (
    SELECT run_id, status
    FROM {schema}.runs WHERE run_id = ANY(%(run_id)s::uuid[])
    ORDER BY run_id
    FOR SHARE SKIP LOCKED
), found AS (
    SELECT i.*, run.run_id AS found_run_id, run.status,
           CASE WHEN run.run_id IS NOT NULL THEN COALESCE(i.lease_key, 'run:' || run.run_id::text) END AS key_of_lease
    FROM inputs i LEFT JOIN run ON run.run_id = i.run_id
    WHERE run.run_id IS NOT NULL OR NOT EXISTS (SELECT FROM {schema}.runs x WHERE x.run_id = i.run_id)
), decided AS (
    SELECT f.*, fc.current_token,
           CASE WHEN f.found_run_id IS NULL THEN 'missing'
                WHEN fc.refusal IS NOT NULL THEN fc.refusal
                WHEN f.status <> ALL(%(open_run_statuses)s::text[]) THEN 'finished_run'
                ELSE 'changed' END AS outcome
    FROM found f
    LEFT JOIN LATERAL {schema}.fence_check(f.key_of_lease, f.fencing_token, %(alone)s::boolean) AS fc ON true
), inserted AS (
    INSERT INTO {schema}.steps (step_id, run_id, step_name, rpc_name, data, status, retries, retry_delay, fencing_token,
                                backoff_coefficient, max_retry_delay, jitter, start_to_close, schedule_to_start, priority,
                                concurrency_key, from_step_name)
    SELECT gen_random_uuid(), d.found_run_id, d.step_name, d.rpc_name, d.data::jsonb,
           %(status)s::text, COALESCE(d.opt_retries, df.retries), COALESCE(d.opt_retry_delay, df.retry_delay),
           d.fencing_token,
           COALESCE(d.opt_backoff_coefficient, df.backoff_coefficient),
           COALESCE(d.opt_max_retry_delay, df.max_retry_delay),
           COALESCE(d.opt_jitter, df.jitter),
           COALESCE(d.opt_start_to_close, df.start_to_close),
           COALESCE(d.opt_schedule_to_start, df.schedule_to_start),
           COALESCE(d.opt_priority, df.priority, 0),
           d.opt_concurrency_key, d.from_step_name
    FROM decided d
    LEFT JOIN {schema}.dispatch_defaults df ON df.rpc_name = d.rpc_name
    WHERE d.outcome = 'changed'
    ORDER BY d.ordinal
    ON CONFLICT (run_id, step_name) DO NOTHING
    RETURNING *
), first_attempt AS (
    INSERT INTO {schema}.step_attempts (step_id, attempt, run_id, step_name, status, create_time, update_time)
    SELECT step_id, attempt_count, run_id, step_name, status, create_time, update_time FROM inserted
)
SELECT d.ordinal, CASE WHEN d.outcome = 'changed' AND ins.step_id IS NULL THEN 'duplicate_name' ELSE d.outcome END AS outcome,
       d.status AS run_status, d.key_of_lease AS lease_key, d.current_token, ins.*
FROM decided d LEFT JOIN inserted ins ON ins.run_id = d.found_run_id AND ins.step_name = d.step_name
WHERE d.outcome <> 'locked';

-- get_step --
-- Steps by run and name, set-based (one or many: db/coalescer.py): one row per input with its
-- ordinal, the step's columns NULL when the run has no step of that name.
SELECT i.ordinal, s.*
FROM unnest(%(run_id)s::uuid[], %(step_name)s::text[]) WITH ORDINALITY AS i(run_id, step_name, ordinal)
LEFT JOIN {schema}.steps s ON s.run_id = i.run_id AND s.step_name = i.step_name;

-- get_step_by_id --
-- Steps by id, set-based (one or many: db/coalescer.py): one row per input with its ordinal, the
-- step's columns NULL when no step has the id.
SELECT i.ordinal, s.*
FROM unnest(%(step_id)s::uuid[]) WITH ORDINALITY AS i(step_id, ordinal)
LEFT JOIN {schema}.steps s ON s.step_id = i.step_id;

-- set_step_status --
-- Move steps to to_status if the current status is one of from_statuses and the run still
-- takes writes, set-based (one or many: db/coalescer.py): one row per input with its ordinal; a
-- group holds each step once. Stamp the status's time, store result (succeeded) or error (failed),
-- set not_before (scheduled), and update the current attempt's history row (its times are the
-- step's, which are the current attempt's). The attempt leaves any worker that had it (so a
-- worker holding an attempt that is suspended has its later report refused). The step is locked
-- for update and its run for share (as the function step_for_write does for one step), and
-- the write fenced, so the decision is made on the latest committed rows. A step (or its run)
-- another transaction has locked is skipped (no row for its input): it runs alone, in this
-- statement without SKIP LOCKED, waiting for the lock.
-- A worker's complete gives attempt and stream_id: only that attempt, held by that stream, may
-- change (wrong_attempt, not_held), and repeating the result it stored is `same`.
-- With refuse_worker_tasks (a caller whose token may not take worker tasks), a step that is a
-- worker task (function worker_task) is not moved: worker_task.
-- Scheduling may replace the step's options (opt_*, NULL: keep the stored one) and starts the
-- attempt's schedule_to_start clock at its due time (start_timeout_time). from_statuses is one
-- comma-separated list per input; <status>_status name the statuses whose own columns (time stamp,
-- result, error) a move fills, as parameters: the target differs from input to input.
WITH inputs AS MATERIALIZED (
    SELECT *
    FROM unnest(%(step_id)s::uuid[], %(to_status)s::text[], %(from_statuses)s::text[], %(result)s::text[], %(error)s::text[],
                %(not_before)s::timestamptz[], %(delay)s::interval[], %(attempt)s::integer[], %(stream_id)s::uuid[],
                %(refuse_worker_tasks)s::boolean[], %(fencing_token)s::bigint[], %(lease_key)s::text[],
                %(opt_retries)s::integer[], %(opt_retry_delay)s::interval[], %(opt_backoff_coefficient)s::double precision[],
                %(opt_max_retry_delay)s::interval[], %(opt_jitter)s::double precision[], %(opt_start_to_close)s::interval[],
                %(opt_schedule_to_start)s::interval[], %(opt_priority)s::integer[], %(opt_concurrency_key)s::text[])
         WITH ORDINALITY AS i(step_id, to_status, from_statuses, result, error, not_before, delay, attempt, stream_id,
                              refuse_worker_tasks, fencing_token, lease_key, opt_retries, opt_retry_delay, opt_backoff_coefficient,
                              opt_max_retry_delay, opt_jitter, opt_start_to_close, opt_schedule_to_start, opt_priority,
                              opt_concurrency_key, ordinal)
), locked AS (
    SELECT s AS step, s.step_id, s.run_id, r.status AS run_status
    FROM {schema}.steps s JOIN {schema}.runs r ON r.run_id = s.run_id
    WHERE s.step_id = ANY(%(step_id)s::uuid[])
    ORDER BY s.step_id
    FOR NO KEY UPDATE OF s SKIP LOCKED FOR SHARE OF r SKIP LOCKED
), found AS (
    SELECT i.*, i.result::jsonb AS new_result, i.error::jsonb AS new_error, string_to_array(i.from_statuses, ',') AS sources,
           l.step, l.run_status, l.step_id IS NOT NULL AS exists,
           CASE WHEN l.step_id IS NOT NULL THEN COALESCE(i.lease_key, 'run:' || l.run_id::text) END AS key_of_lease
    FROM inputs i LEFT JOIN locked l ON l.step_id = i.step_id
    WHERE l.step_id IS NOT NULL OR NOT EXISTS (SELECT FROM {schema}.steps x WHERE x.step_id = i.step_id)
), decided AS (
    SELECT f.ordinal, f.step_id AS input_step_id, f.to_status, f.new_result, f.new_error, f.not_before AS new_not_before, f.delay,
           f.fencing_token AS new_fencing_token, f.opt_retries, f.opt_retry_delay, f.opt_backoff_coefficient, f.opt_max_retry_delay,
           f.opt_jitter, f.opt_start_to_close, f.opt_schedule_to_start, f.opt_priority, f.opt_concurrency_key,
           f.step, f.run_status, f.key_of_lease AS lease_key, fc.current_token, c.step_id, c.status, c.attempt_count, c.worker_id,
           COALESCE(CASE WHEN NOT f.exists THEN 'missing' ELSE fc.refusal END,
                    CASE WHEN c.attempt_count <> f.attempt THEN 'wrong_attempt'
                         WHEN c.status = f.to_status THEN
                             CASE WHEN c.result IS NOT DISTINCT FROM f.new_result AND c.error IS NOT DISTINCT FROM f.new_error
                                  THEN 'same' ELSE 'different_payload' END
                         WHEN f.refuse_worker_tasks
                              AND {schema}.worker_task(c.status, c.rpc_name, c.task_stream_id, %(worker_due_statuses)s::text[])
                              THEN 'worker_task'
                         WHEN f.run_status <> ALL(%(open_run_statuses)s::text[]) THEN 'finished_run'
                         WHEN c.status <> ALL(f.sources) THEN 'illegal_transition'
                         WHEN c.task_stream_id IS DISTINCT FROM f.stream_id AND f.stream_id IS NOT NULL THEN 'not_held'
                         WHEN f.stream_id IS NOT NULL AND c.task_timeout_time <= now() THEN 'timed_out'
                         ELSE 'changed' END) AS outcome
    FROM found f
    LEFT JOIN LATERAL {schema}.fence_check(f.key_of_lease, f.fencing_token, %(alone)s::boolean) AS fc ON true
    LEFT JOIN LATERAL (SELECT (f.step).*) AS c ON true
), changed AS (
    UPDATE {schema}.steps s
    SET status = d.to_status,
        result = CASE WHEN d.to_status = %(succeeded_status)s::text THEN d.new_result ELSE s.result END,
        error = CASE WHEN d.to_status = %(failed_status)s::text THEN d.new_error ELSE s.error END,
        update_time = now(),
        scheduled_time = CASE WHEN d.to_status = %(scheduled_status)s::text THEN now() ELSE s.scheduled_time END,
        running_time = CASE WHEN d.to_status = %(running_status)s::text THEN now() ELSE s.running_time END,
        succeeded_time = CASE WHEN d.to_status = %(succeeded_status)s::text THEN now() ELSE s.succeeded_time END,
        failed_time = CASE WHEN d.to_status = %(failed_status)s::text THEN now() ELSE s.failed_time END,
        not_before = CASE WHEN d.to_status = %(scheduled_status)s::text
                          THEN COALESCE(d.new_not_before, now() + COALESCE(d.delay, interval '0')) END,
        worker_id = NULL, task_stream_id = NULL, task_expire_time = NULL, task_timeout_time = NULL,
        fencing_token = GREATEST(s.fencing_token, d.new_fencing_token),
        retries = COALESCE(d.opt_retries, s.retries),
        retry_delay = COALESCE(d.opt_retry_delay, s.retry_delay),
        backoff_coefficient = COALESCE(d.opt_backoff_coefficient, s.backoff_coefficient),
        max_retry_delay = COALESCE(d.opt_max_retry_delay, s.max_retry_delay),
        jitter = COALESCE(d.opt_jitter, s.jitter),
        start_to_close = COALESCE(d.opt_start_to_close, s.start_to_close),
        schedule_to_start = COALESCE(d.opt_schedule_to_start, s.schedule_to_start),
        priority = COALESCE(d.opt_priority, s.priority),
        concurrency_key = COALESCE(d.opt_concurrency_key, s.concurrency_key),
        start_timeout_time = CASE WHEN d.to_status = %(scheduled_status)s::text
                                  THEN COALESCE(d.new_not_before, now() + COALESCE(d.delay, interval '0'))
                                       + COALESCE(d.opt_schedule_to_start, s.schedule_to_start) END
    FROM decided d
    WHERE s.step_id = d.step_id AND d.outcome = 'changed'
    RETURNING s AS step
), attempt AS (
    UPDATE {schema}.step_attempts a
    SET status = (ch.step).status, result = (ch.step).result, error = (ch.step).error, update_time = (ch.step).update_time,
        scheduled_time = (ch.step).scheduled_time, running_time = (ch.step).running_time,
        succeeded_time = (ch.step).succeeded_time, failed_time = (ch.step).failed_time
    FROM changed ch
    WHERE a.step_id = (ch.step).step_id AND a.attempt = (ch.step).attempt_count
)
SELECT d.ordinal, d.outcome, d.status AS prior_status, d.attempt_count AS prior_attempt, d.run_status, d.lease_key,
       d.current_token, d.worker_id AS holder,
       (CASE WHEN d.outcome = 'changed' THEN ch.step ELSE d.step END).*
FROM decided d LEFT JOIN changed ch ON (ch.step).step_id = d.step_id
WHERE d.outcome <> 'locked';

-- create_retry_attempt --
-- Start the next attempt of steps whose status is one of from_statuses (a failed one), in
-- to_status, set-based (one or many: db/coalescer.py): one row per input with its ordinal; a group
-- holds each step once. Same step, attempt_count + 1, result, error, attempt times, child run and
-- branch cleared, a new history row. Locks and fences as set_step_status does: a step (or its run)
-- another transaction has locked is skipped (no row for its input) and runs alone, waiting.
-- from_statuses is one comma-separated list per input; running_status names the status whose own
-- column (running_time) the new attempt stamps.
WITH inputs AS MATERIALIZED (
    SELECT *
    FROM unnest(%(step_id)s::uuid[], %(to_status)s::text[], %(from_statuses)s::text[], %(fencing_token)s::bigint[], %(lease_key)s::text[])
         WITH ORDINALITY AS i(step_id, to_status, from_statuses, fencing_token, lease_key, ordinal)
), locked AS (
    SELECT s.step_id, s.run_id, s.status, r.status AS run_status
    FROM {schema}.steps s JOIN {schema}.runs r ON r.run_id = s.run_id
    WHERE s.step_id = ANY(%(step_id)s::uuid[])
    ORDER BY s.step_id
    FOR NO KEY UPDATE OF s SKIP LOCKED FOR SHARE OF r SKIP LOCKED
), found AS (
    SELECT i.ordinal, i.to_status, string_to_array(i.from_statuses, ',') AS sources, i.fencing_token,
           l.step_id, l.status, l.run_status,
           CASE WHEN l.step_id IS NOT NULL THEN COALESCE(i.lease_key, 'run:' || l.run_id::text) END AS lease_key
    FROM inputs i LEFT JOIN locked l ON l.step_id = i.step_id
    WHERE l.step_id IS NOT NULL OR NOT EXISTS (SELECT FROM {schema}.steps x WHERE x.step_id = i.step_id)
), decided AS (
    SELECT f.*, fc.current_token,
           COALESCE(CASE WHEN f.step_id IS NULL THEN 'missing' ELSE fc.refusal END,
                    CASE WHEN f.run_status <> ALL(%(open_run_statuses)s::text[]) THEN 'finished_run'
                         WHEN f.status <> ALL(f.sources) THEN 'illegal_transition'
                         ELSE 'changed' END) AS outcome
    FROM found f
    LEFT JOIN LATERAL {schema}.fence_check(f.lease_key, f.fencing_token, %(alone)s::boolean) AS fc ON true
), changed AS (
    UPDATE {schema}.steps s
    SET status = d.to_status,
        attempt_count = s.attempt_count + 1,
        result = NULL,
        error = NULL,
        update_time = now(),
        scheduled_time = NULL,
        running_time = CASE WHEN d.to_status = %(running_status)s::text THEN now() END,
        succeeded_time = NULL,
        failed_time = NULL,
        not_before = NULL, worker_id = NULL, task_stream_id = NULL, task_expire_time = NULL,
        child_run_id = NULL, branch_key = NULL,
        task_timeout_time = NULL, start_timeout_time = NULL,
        fencing_token = GREATEST(s.fencing_token, d.fencing_token)
    FROM decided d
    WHERE s.step_id = d.step_id AND d.outcome = 'changed'
    RETURNING s.*
), next_attempt AS (
    INSERT INTO {schema}.step_attempts (step_id, attempt, run_id, step_name, status, create_time, update_time, running_time)
    SELECT step_id, attempt_count, run_id, step_name, status, update_time, update_time, running_time FROM changed
)
SELECT d.ordinal, d.outcome, d.status AS prior_status, d.run_status, d.lease_key, d.current_token, ch.*
FROM decided d LEFT JOIN changed ch ON ch.step_id = d.step_id
WHERE d.outcome <> 'locked';

-- Engine state: what a workflow engine such as Pikku keeps beside runs and steps.

-- claim_step --
-- Claim steps, named by run and step name, for their callers to run, set-based (one or many:
-- db/coalescer.py): one row per input with its ordinal; a group holds each step once. Each step is
-- locked for update and its run for share (as step_for_write does), so of two callers racing for a
-- step exactly one gets it. rpc_name must be the step's (else wrong_rpc); a step without one ('')
-- has no function to name, so any rpc_name claims it (as Pikku's claim does). A step in one of
-- from_statuses moves to to_status (running), stamped and taken from any worker; from one of
-- next_attempt_from (failed) it starts its next attempt there, as create_retry_attempt does. A
-- step in any other status is not claimed: `same`, returned as it is, nothing written (also when
-- its run is finished: a duplicate message after the end is answered, not refused).
-- With refuse_worker_tasks, a claimable step that is a worker task (function worker_task:
-- due for a connected worker of its rpc name) is not claimed: worker_task.
-- A step (or its run) another transaction has locked is skipped (no row for its input): it runs
-- alone, in this statement without SKIP LOCKED, waiting for the lock.
WITH inputs AS MATERIALIZED (
    SELECT *
    FROM unnest(%(run_id)s::uuid[], %(step_name)s::text[], %(rpc_name)s::text[], %(refuse_worker_tasks)s::boolean[],
                %(fencing_token)s::bigint[], %(lease_key)s::text[])
         WITH ORDINALITY AS i(run_id, step_name, rpc_name, refuse_worker_tasks, fencing_token, lease_key, ordinal)
), locked AS (
    SELECT s AS step, s.step_id, s.run_id, s.step_name, s.status, s.rpc_name, r.status AS run_status
    FROM {schema}.steps s JOIN {schema}.runs r ON r.run_id = s.run_id
    WHERE (s.run_id, s.step_name) IN (SELECT run_id, step_name FROM inputs)
    ORDER BY s.step_id
    FOR NO KEY UPDATE OF s SKIP LOCKED FOR SHARE OF r SKIP LOCKED
), found AS (
    SELECT i.ordinal, i.rpc_name AS claimed_rpc_name, i.refuse_worker_tasks, i.fencing_token,
           l.step, l.step_id, l.status, l.rpc_name, l.run_status,
           CASE WHEN l.step_id IS NOT NULL THEN COALESCE(i.lease_key, 'run:' || l.run_id::text) END AS lease_key
    FROM inputs i LEFT JOIN locked l ON l.run_id = i.run_id AND l.step_name = i.step_name
    WHERE l.step_id IS NOT NULL OR NOT EXISTS (SELECT FROM {schema}.steps x WHERE x.run_id = i.run_id AND x.step_name = i.step_name)
), decided AS (
    SELECT c.*, f.current_token,
           CASE WHEN c.step_id IS NULL THEN 'missing'
                WHEN f.refusal IS NOT NULL THEN f.refusal
                WHEN c.rpc_name <> '' AND c.rpc_name <> c.claimed_rpc_name THEN 'wrong_rpc'
                WHEN c.status <> ALL(%(from_statuses)s::text[]) THEN 'same'
                WHEN c.refuse_worker_tasks
                     AND {schema}.worker_task(c.status, c.rpc_name, (c.step).task_stream_id, %(worker_due_statuses)s::text[])
                     THEN 'worker_task'
                WHEN c.run_status <> ALL(%(open_run_statuses)s::text[]) THEN 'finished_run'
                ELSE 'changed' END AS outcome,
           COALESCE(c.status = ANY(%(next_attempt_from)s::text[]), false) AS next_attempt
    FROM found c
    LEFT JOIN LATERAL {schema}.fence_check(c.lease_key, c.fencing_token, %(alone)s::boolean) AS f ON true
), changed AS (
    UPDATE {schema}.steps s
    SET status = %(to_status)s::text,
        attempt_count = s.attempt_count + CASE WHEN d.next_attempt THEN 1 ELSE 0 END,
        result = CASE WHEN d.next_attempt THEN NULL ELSE s.result END,
        error = CASE WHEN d.next_attempt THEN NULL ELSE s.error END,
        update_time = now(),
        scheduled_time = CASE WHEN d.next_attempt THEN NULL ELSE s.scheduled_time END,
        running_time = now(),
        succeeded_time = CASE WHEN d.next_attempt THEN NULL ELSE s.succeeded_time END,
        failed_time = CASE WHEN d.next_attempt THEN NULL ELSE s.failed_time END,
        child_run_id = CASE WHEN d.next_attempt THEN NULL ELSE s.child_run_id END,
        branch_key = CASE WHEN d.next_attempt THEN NULL ELSE s.branch_key END,
        not_before = NULL, worker_id = NULL, task_stream_id = NULL, task_expire_time = NULL,
        task_timeout_time = NULL, start_timeout_time = NULL,
        fencing_token = GREATEST(s.fencing_token, d.fencing_token)
    FROM decided d
    WHERE s.step_id = d.step_id AND d.outcome = 'changed'
    RETURNING s AS step, d.next_attempt
), this_attempt AS (
    UPDATE {schema}.step_attempts a
    SET status = (ch.step).status, update_time = (ch.step).update_time, running_time = (ch.step).running_time
    FROM changed ch
    WHERE NOT ch.next_attempt AND a.step_id = (ch.step).step_id AND a.attempt = (ch.step).attempt_count
), next_attempt AS (
    INSERT INTO {schema}.step_attempts (step_id, attempt, run_id, step_name, status, create_time, update_time, running_time)
    SELECT (ch.step).step_id, (ch.step).attempt_count, (ch.step).run_id, (ch.step).step_name, (ch.step).status,
           (ch.step).update_time, (ch.step).update_time, (ch.step).running_time
    FROM changed ch
    WHERE ch.next_attempt
)
SELECT d.ordinal, d.outcome, d.status AS prior_status, d.rpc_name AS prior_rpc_name, d.run_status, d.lease_key, d.current_token,
       (CASE WHEN d.outcome = 'changed' THEN ch.step ELSE d.step END).*
FROM decided d LEFT JOIN changed ch ON (ch.step).step_id = d.step_id
WHERE d.outcome <> 'locked';

-- set_step_child_run --
-- Record child_run_id as the run the step's current attempt started, set-based (one or many:
-- db/coalescer.py): one row per input with its ordinal; a group holds each step once. The child must
-- exist (missing_child); the same child again is `same`; another one for the same attempt is
-- different_payload (create_retry_attempt clears it for the next). Any status of the step, while
-- its run takes writes. Locks and fences as set_step_status does: a step (or its run) another
-- transaction has locked is skipped (no row for its input) and runs alone, waiting.
WITH inputs AS MATERIALIZED (
    SELECT *
    FROM unnest(%(step_id)s::uuid[], %(child_run_id)s::uuid[], %(fencing_token)s::bigint[], %(lease_key)s::text[])
         WITH ORDINALITY AS i(step_id, link, fencing_token, lease_key, ordinal)
), locked AS (
    SELECT s AS step, s.step_id, s.run_id, r.status AS run_status
    FROM {schema}.steps s JOIN {schema}.runs r ON r.run_id = s.run_id
    WHERE s.step_id = ANY(%(step_id)s::uuid[])
    ORDER BY s.step_id
    FOR NO KEY UPDATE OF s SKIP LOCKED FOR SHARE OF r SKIP LOCKED
), found AS (
    SELECT i.ordinal, i.link, i.fencing_token, l.step, l.step_id, l.run_status,
           CASE WHEN l.step_id IS NOT NULL THEN COALESCE(i.lease_key, 'run:' || l.run_id::text) END AS lease_key
    FROM inputs i LEFT JOIN locked l ON l.step_id = i.step_id
    WHERE l.step_id IS NOT NULL OR NOT EXISTS (SELECT FROM {schema}.steps x WHERE x.step_id = i.step_id)
), decided AS (
    SELECT f.ordinal, f.link, f.fencing_token, f.step, f.step_id, f.run_status, f.lease_key, fc.current_token,
           (f.step).attempt_count AS prior_attempt, (f.step).child_run_id::text AS prior_link,
           COALESCE(CASE WHEN f.step_id IS NULL THEN 'missing' ELSE fc.refusal END,
                    CASE WHEN NOT EXISTS (SELECT FROM {schema}.runs r WHERE r.run_id = f.link) THEN 'missing_child'
                         WHEN (f.step).child_run_id = f.link THEN 'same'
                         WHEN (f.step).child_run_id IS NOT NULL THEN 'different_payload'
                         WHEN f.run_status <> ALL(%(open_run_statuses)s::text[]) THEN 'finished_run'
                         ELSE 'changed' END) AS outcome
    FROM found f
    LEFT JOIN LATERAL {schema}.fence_check(f.lease_key, f.fencing_token, %(alone)s::boolean) AS fc ON true
), changed AS (
    UPDATE {schema}.steps s
    SET child_run_id = d.link, update_time = now(),
        fencing_token = GREATEST(s.fencing_token, d.fencing_token)
    FROM decided d
    WHERE s.step_id = d.step_id AND d.outcome = 'changed'
    RETURNING s AS step
)
SELECT d.ordinal, d.outcome, d.prior_attempt, d.prior_link, d.run_status, d.lease_key, d.current_token,
       (CASE WHEN d.outcome = 'changed' THEN ch.step ELSE d.step END).*
FROM decided d LEFT JOIN changed ch ON (ch.step).step_id = d.step_id
WHERE d.outcome <> 'locked';

-- set_step_branch --
-- Record branch_key as the branch the step's current attempt took, set-based as set_step_child_run:
-- the same key again is `same`, another one for the same attempt different_payload.
-- It is set_step_child_run with another column (text, not a run's uuid) and no check that the link
-- exists, written out rather than shared: one statement choosing its column by a parameter would
-- cast the link both ways and carry both columns' CASEs in every plan, and a SQL function for the
-- common lock-fence-decide part would have to return the step row through a composite type,
-- hiding the statement's columns from the statement tests and its plan from EXPLAIN. The two are
-- short enough to read side by side; a change to one is a change to the other.
WITH inputs AS MATERIALIZED (
    SELECT *
    FROM unnest(%(step_id)s::uuid[], %(branch_key)s::text[], %(fencing_token)s::bigint[], %(lease_key)s::text[])
         WITH ORDINALITY AS i(step_id, link, fencing_token, lease_key, ordinal)
), locked AS (
    SELECT s AS step, s.step_id, s.run_id, r.status AS run_status
    FROM {schema}.steps s JOIN {schema}.runs r ON r.run_id = s.run_id
    WHERE s.step_id = ANY(%(step_id)s::uuid[])
    ORDER BY s.step_id
    FOR NO KEY UPDATE OF s SKIP LOCKED FOR SHARE OF r SKIP LOCKED
), found AS (
    SELECT i.ordinal, i.link, i.fencing_token, l.step, l.step_id, l.run_status,
           CASE WHEN l.step_id IS NOT NULL THEN COALESCE(i.lease_key, 'run:' || l.run_id::text) END AS lease_key
    FROM inputs i LEFT JOIN locked l ON l.step_id = i.step_id
    WHERE l.step_id IS NOT NULL OR NOT EXISTS (SELECT FROM {schema}.steps x WHERE x.step_id = i.step_id)
), decided AS (
    SELECT f.ordinal, f.link, f.fencing_token, f.step, f.step_id, f.run_status, f.lease_key, fc.current_token,
           (f.step).attempt_count AS prior_attempt, (f.step).branch_key::text AS prior_link,
           COALESCE(CASE WHEN f.step_id IS NULL THEN 'missing' ELSE fc.refusal END,
                    CASE WHEN (f.step).branch_key = f.link THEN 'same'
                         WHEN (f.step).branch_key IS NOT NULL THEN 'different_payload'
                         WHEN f.run_status <> ALL(%(open_run_statuses)s::text[]) THEN 'finished_run'
                         ELSE 'changed' END) AS outcome
    FROM found f
    LEFT JOIN LATERAL {schema}.fence_check(f.lease_key, f.fencing_token, %(alone)s::boolean) AS fc ON true
), changed AS (
    UPDATE {schema}.steps s
    SET branch_key = d.link, update_time = now(),
        fencing_token = GREATEST(s.fencing_token, d.fencing_token)
    FROM decided d
    WHERE s.step_id = d.step_id AND d.outcome = 'changed'
    RETURNING s AS step
)
SELECT d.ordinal, d.outcome, d.prior_attempt, d.prior_link, d.run_status, d.lease_key, d.current_token,
       (CASE WHEN d.outcome = 'changed' THEN ch.step ELSE d.step END).*
FROM decided d LEFT JOIN changed ch ON (ch.step).step_id = d.step_id
WHERE d.outcome <> 'locked';

-- update_run_state --
-- Set one variable of a run's state per input, set-based (one or many: db/coalescer.py): one row per
-- input with its ordinal; a group holds each run once. `state = coalesce(state, jsonb_build_object())
-- || jsonb_build_object(name, value)`, on the run's row locked for update, so concurrent writers of
-- different names each add to what the one before wrote (a name is one key: dots and quotes are
-- part of it). Refused for a finished run (finished_run) and when the new state's JSON text would
-- pass max_bytes (too_large, with state_bytes). A run another transaction has locked is skipped (no
-- row for its input): it runs alone, in this statement without SKIP LOCKED, waiting for the lock.
WITH inputs AS MATERIALIZED (
    SELECT *
    FROM unnest(%(run_id)s::uuid[], %(name)s::text[], %(value)s::text[], %(max_bytes)s::integer[], %(fencing_token)s::bigint[],
                %(lease_key)s::text[])
         WITH ORDINALITY AS i(run_id, name, value, max_bytes, fencing_token, lease_key, ordinal)
), current_run AS (
    SELECT r.run_id, r.status, r.state
    FROM {schema}.runs r
    WHERE r.run_id = ANY(%(run_id)s::uuid[])
    ORDER BY r.run_id
    FOR NO KEY UPDATE SKIP LOCKED
), found AS (
    SELECT i.ordinal, i.name, i.value::jsonb AS new_value, i.max_bytes, i.fencing_token, c.run_id, c.status, c.state,
           CASE WHEN c.run_id IS NOT NULL THEN COALESCE(i.lease_key, 'run:' || c.run_id::text) END AS lease_key
    FROM inputs i LEFT JOIN current_run c ON c.run_id = i.run_id
    WHERE c.run_id IS NOT NULL OR NOT EXISTS (SELECT FROM {schema}.runs x WHERE x.run_id = i.run_id)
), decided AS (
    SELECT c.*, f.current_token, size.state_bytes,
           CASE WHEN c.run_id IS NULL THEN 'missing'
                WHEN f.refusal IS NOT NULL THEN f.refusal
                WHEN c.status <> ALL(%(open_run_statuses)s::text[]) THEN 'finished_run'
                WHEN size.state_bytes > c.max_bytes THEN 'too_large'
                ELSE 'changed' END AS outcome
    FROM found c
    LEFT JOIN LATERAL {schema}.fence_check(c.lease_key, c.fencing_token, %(alone)s::boolean) AS f ON true
    LEFT JOIN LATERAL (
        SELECT octet_length((COALESCE(c.state, jsonb_build_object()) || jsonb_build_object(c.name, c.new_value))::text) AS state_bytes
    ) AS size ON true
), changed AS (
    UPDATE {schema}.runs r
    SET state = COALESCE(r.state, jsonb_build_object()) || jsonb_build_object(d.name, d.new_value),
        update_time = now(),
        fencing_token = GREATEST(r.fencing_token, d.fencing_token)
    FROM decided d
    WHERE r.run_id = d.run_id AND d.outcome = 'changed'
    RETURNING r.run_id
)
SELECT d.ordinal, d.outcome, d.status AS run_status, d.lease_key, d.current_token, d.state_bytes, d.run_id
FROM decided d LEFT JOIN changed ch ON ch.run_id = d.run_id
WHERE d.outcome <> 'locked';

-- get_run_state --
-- Runs' state variables by id, set-based (one or many: db/coalescer.py): one row per input with its
-- ordinal; an empty object when none was set, run_id NULL when no run has the id.
SELECT i.ordinal, r.run_id, COALESCE(r.state, jsonb_build_object()) AS state
FROM unnest(%(run_id)s::uuid[]) WITH ORDINALITY AS i(run_id, ordinal)
LEFT JOIN {schema}.runs r ON r.run_id = i.run_id;
