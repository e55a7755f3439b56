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
--   same               already in the target status with the same payload: nothing written
--   different_payload  already in the target status with another result / error / output
--   finished_run       the run is finished: no more run or step writes
--   illegal_transition the current status is not one of from_statuses
--   not_held           (a worker's report) the attempt is not held by the reporting stream
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

-- create_run --
-- Insert a run in its start status (status). With a request_id that exists already, return that run
-- (DO UPDATE, unlike DO NOTHING, returns the existing row even when it was committed after this
-- statement's snapshot): same when the request matches it, else request_id_reused.
INSERT INTO {schema}.runs (run_id, workflow, status, input, request_id)
VALUES (gen_random_uuid(), %(workflow)s::text, %(status)s::text, %(input)s::jsonb, %(request_id)s::text)
ON CONFLICT (request_id) WHERE request_id IS NOT NULL
DO UPDATE SET request_id = EXCLUDED.request_id
RETURNING CASE WHEN xmax = 0 THEN 'changed'
               WHEN workflow = %(workflow)s::text AND input = %(input)s::jsonb THEN 'same'
               ELSE 'request_id_reused' END AS outcome,
          *;

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
-- Move a run to to_status if its current status is one of from_statuses. output is written
-- only when set_output is true; error only when given.
WITH current_run AS (
    SELECT r AS run, r.run_id, r.status, r.output, r.error, COALESCE(%(lease_key)s::text, 'run:' || r.run_id::text) AS lease_key
    FROM {schema}.runs r
    WHERE r.run_id = %(run_id)s::uuid
    FOR NO KEY UPDATE
), decided AS (
    SELECT c.*, f.current_token,
           CASE WHEN c.run_id IS NULL THEN 'missing'
                WHEN f.refusal IS NOT NULL THEN f.refusal
                WHEN c.status = %(to_status)s::text THEN
                    CASE WHEN (NOT %(set_output)s::boolean OR c.output IS NOT DISTINCT FROM %(output)s::jsonb)
                              AND (%(error)s::jsonb IS NULL OR c.error IS NOT DISTINCT FROM %(error)s::jsonb)
                         THEN 'same' ELSE 'different_payload' END
                WHEN c.status <> ALL(%(open_run_statuses)s::text[]) THEN 'finished_run'
                WHEN c.status <> ALL(%(from_statuses)s::text[]) THEN 'illegal_transition'
                ELSE 'changed' END AS outcome
    FROM (SELECT) AS one LEFT JOIN current_run c ON true
    LEFT JOIN {schema}.fence_check(c.lease_key, %(fencing_token)s::bigint) AS f ON true
), changed AS (
    UPDATE {schema}.runs r
    SET status = %(to_status)s::text,
        output = CASE WHEN %(set_output)s::boolean THEN %(output)s::jsonb ELSE r.output END,
        error = COALESCE(%(error)s::jsonb, r.error),
        update_time = now(),
        fencing_token = GREATEST(r.fencing_token, %(fencing_token)s::bigint)
    FROM decided d
    WHERE r.run_id = d.run_id AND d.outcome = 'changed'
    RETURNING r AS run
)
SELECT d.outcome, d.status AS prior_status, d.lease_key, d.current_token,
       (CASE WHEN d.outcome = 'changed' THEN ch.run ELSE d.run END).*
FROM decided d LEFT JOIN changed ch ON true;

-- insert_step --
-- Insert a step of a run that still takes writes, in its start status (status), with its first history
-- row. The run row is share-locked so a concurrent run status change waits for this insert (or
-- this sees it). A name taken already (ON CONFLICT, so also by an insert committed after this
-- statement's snapshot) is duplicate_name. Each option not given (opt_*, NULL) is taken from the
-- rpc name's dispatch defaults (migration 0011), read in this same statement; priority is 0
-- when neither sets it.
WITH run AS (
    SELECT run_id, status, COALESCE(%(lease_key)s::text, 'run:' || run_id::text) AS lease_key
    FROM {schema}.runs WHERE run_id = %(run_id)s::uuid FOR SHARE
), decided AS (
    SELECT run.*, f.current_token,
           CASE WHEN run.run_id IS NULL THEN 'missing'
                WHEN f.refusal IS NOT NULL THEN f.refusal
                WHEN run.status <> ALL(%(open_run_statuses)s::text[]) THEN 'finished_run'
                ELSE 'changed' END AS outcome
    FROM (SELECT) AS one LEFT JOIN run ON true
    LEFT JOIN {schema}.fence_check(run.lease_key, %(fencing_token)s::bigint) AS f ON true
), inserted AS (
    INSERT INTO {schema}.steps (step_id, run_id, step_name, rpc_name, data, status, retries, retry_delay, fencing_token,
                                backoff_coefficient, max_retry_delay, jitter, start_to_close, schedule_to_start, priority,
                                concurrency_key)
    SELECT gen_random_uuid(), d.run_id, %(step_name)s::text, %(rpc_name)s::text, %(data)s::jsonb,
           %(status)s::text, COALESCE(%(opt_retries)s::integer, df.retries), COALESCE(%(opt_retry_delay)s::interval, df.retry_delay),
           %(fencing_token)s::bigint,
           COALESCE(%(opt_backoff_coefficient)s::double precision, df.backoff_coefficient),
           COALESCE(%(opt_max_retry_delay)s::interval, df.max_retry_delay),
           COALESCE(%(opt_jitter)s::double precision, df.jitter),
           COALESCE(%(opt_start_to_close)s::interval, df.start_to_close),
           COALESCE(%(opt_schedule_to_start)s::interval, df.schedule_to_start),
           COALESCE(%(opt_priority)s::integer, df.priority, 0),
           %(opt_concurrency_key)s::text
    FROM decided d
    LEFT JOIN {schema}.dispatch_defaults df ON df.rpc_name = %(rpc_name)s::text
    WHERE d.outcome = 'changed'
    ON CONFLICT (run_id, step_name) DO NOTHING
    RETURNING *
), first_attempt AS (
    INSERT INTO {schema}.step_attempts (step_id, attempt, run_id, step_name, status, create_time, update_time)
    SELECT step_id, attempt_count, run_id, step_name, status, create_time, update_time FROM inserted
)
SELECT CASE WHEN d.outcome = 'changed' AND i.step_id IS NULL THEN 'duplicate_name' ELSE d.outcome END AS outcome,
       d.status AS run_status, d.lease_key, d.current_token, i.*
FROM decided d LEFT JOIN inserted i ON true;

-- get_step --
-- One step by run and name.
SELECT * FROM {schema}.steps WHERE run_id = %(run_id)s::uuid AND step_name = %(step_name)s::text;

-- get_step_by_id --
-- One step by id.
SELECT * FROM {schema}.steps WHERE step_id = %(step_id)s::uuid;

-- set_step_status --
-- Move a step to to_status if its current status is one of from_statuses and its run still
-- takes writes; stamp the status's time, store result (succeeded) or error (failed), set
-- not_before (scheduled), and update the current attempt's history row. The attempt leaves any
-- worker that had it. step_for_write (migration 0006) locks the step for update and its run for
-- share, and fences the write, so the decision
-- is made on the latest committed rows.
-- A worker's complete gives attempt and stream_id: only that attempt, held by that stream, may
-- change (wrong_attempt, not_held), and repeating the result it stored is `same`.
-- Scheduling may replace the step's options (opt_*, NULL: keep the stored one) and starts the
-- attempt's schedule_to_start clock at its due time (start_timeout_time).
WITH decided AS (
    SELECT w.step, w.run_status, w.lease_key, w.current_token, c.step_id, c.status, c.attempt_count, c.worker_id,
           COALESCE(w.refusal,
                    CASE WHEN c.attempt_count <> %(attempt)s::integer THEN 'wrong_attempt'
                         WHEN c.status = %(to_status)s::text THEN
                             CASE WHEN c.result IS NOT DISTINCT FROM %(result)s::jsonb AND c.error IS NOT DISTINCT FROM %(error)s::jsonb
                                  THEN 'same' ELSE 'different_payload' END
                         WHEN w.run_status <> ALL(%(open_run_statuses)s::text[]) THEN 'finished_run'
                         WHEN c.status <> ALL(%(from_statuses)s::text[]) THEN 'illegal_transition'
                         WHEN c.task_stream_id IS DISTINCT FROM %(stream_id)s::uuid AND %(stream_id)s::uuid IS NOT NULL THEN 'not_held'
                         WHEN %(stream_id)s::uuid IS NOT NULL AND c.task_timeout_time <= now() THEN 'timed_out'
                         ELSE 'changed' END) AS outcome
    FROM {schema}.step_for_write(%(step_id)s::uuid, %(lease_key)s::text, %(fencing_token)s::bigint) AS w
    CROSS JOIN LATERAL (SELECT (w.step).*) AS c
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
        worker_id = NULL, task_stream_id = NULL, task_expire_time = NULL, task_timeout_time = NULL,
        fencing_token = GREATEST(s.fencing_token, %(fencing_token)s::bigint),
        retries = COALESCE(%(opt_retries)s::integer, s.retries),
        retry_delay = COALESCE(%(opt_retry_delay)s::interval, s.retry_delay),
        backoff_coefficient = COALESCE(%(opt_backoff_coefficient)s::double precision, s.backoff_coefficient),
        max_retry_delay = COALESCE(%(opt_max_retry_delay)s::interval, s.max_retry_delay),
        jitter = COALESCE(%(opt_jitter)s::double precision, s.jitter),
        start_to_close = COALESCE(%(opt_start_to_close)s::interval, s.start_to_close),
        schedule_to_start = COALESCE(%(opt_schedule_to_start)s::interval, s.schedule_to_start),
        priority = COALESCE(%(opt_priority)s::integer, s.priority),
        concurrency_key = COALESCE(%(opt_concurrency_key)s::text, s.concurrency_key),
        start_timeout_time = CASE WHEN %(to_status)s::text = 'scheduled'
                                  THEN COALESCE(%(not_before)s::timestamptz, now() + COALESCE(%(delay)s::interval, interval '0'))
                                       + COALESCE(%(opt_schedule_to_start)s::interval, s.schedule_to_start) END
    FROM decided d
    WHERE s.step_id = d.step_id AND d.outcome = 'changed'
    RETURNING s AS step
), attempt AS (
    UPDATE {schema}.step_attempts a
    SET status = (ch.step).status, result = (ch.step).result, error = (ch.step).error, update_time = (ch.step).update_time
    FROM changed ch
    WHERE a.step_id = (ch.step).step_id AND a.attempt = (ch.step).attempt_count
)
SELECT d.outcome, d.status AS prior_status, d.attempt_count AS prior_attempt, d.run_status, d.lease_key,
       d.current_token, d.worker_id AS holder,
       (CASE WHEN d.outcome = 'changed' THEN ch.step ELSE d.step END).*
FROM decided d LEFT JOIN changed ch ON true;

-- create_retry_attempt --
-- Start the next attempt of a step whose status is one of from_statuses (a failed one), in
-- to_status: same step, attempt_count + 1, result, error and attempt times cleared, a new
-- history row. step_for_write locks and fences as for set_step_status.
WITH decided AS (
    SELECT (w.step).step_id, (w.step).status, w.run_status, w.lease_key, w.current_token,
           COALESCE(w.refusal,
                    CASE WHEN w.run_status <> ALL(%(open_run_statuses)s::text[]) THEN 'finished_run'
                         WHEN (w.step).status <> ALL(%(from_statuses)s::text[]) THEN 'illegal_transition'
                         ELSE 'changed' END) AS outcome
    FROM {schema}.step_for_write(%(step_id)s::uuid, %(lease_key)s::text, %(fencing_token)s::bigint) AS w
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
        task_timeout_time = NULL, start_timeout_time = NULL,
        fencing_token = GREATEST(s.fencing_token, %(fencing_token)s::bigint)
    FROM decided d
    WHERE s.step_id = d.step_id AND d.outcome = 'changed'
    RETURNING s.*
), next_attempt AS (
    INSERT INTO {schema}.step_attempts (step_id, attempt, run_id, step_name, status, create_time, update_time)
    SELECT step_id, attempt_count, run_id, step_name, status, update_time, update_time FROM changed
)
SELECT d.outcome, d.status AS prior_status, d.run_status, d.lease_key, d.current_token, ch.*
FROM decided d LEFT JOIN changed ch ON true;
