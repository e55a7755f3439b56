-- The operator's view of runs: list them by filter and page, and (later) cancel and delete them.
-- {schema} is the quoted schema identifier; %(name)s are bound parameters.
--
-- A run filter is the same set of parameters everywhere (a NULL one matches every run):
-- workflow, statuses (text[]), created_after (inclusive), created_before (exclusive),
-- updated_after (inclusive), updated_before (exclusive).
--
-- Pages are keyset positions on (create_time, run_id), which is unique: after_time and after_id
-- (both NULL for the first page) name the last run of the previous page, and a page holds the runs
-- strictly past it. A run inserted while a client pages gets create_time now(), so it sorts past
-- every run that existed when the walk began (or before its position, where it is simply not seen):
-- it never shifts the others, so none is seen twice or missed. One statement per direction and per
-- workflow filter (given or not), so that each reads runs_by_create_time or
-- runs_of_workflow_by_create_time in its own order whatever plan PostgreSQL keeps for it: psycopg
-- prepares a statement after a few runs, and a generic plan of `workflow = $1 OR $1 IS NULL` scans
-- every run for a rare workflow (26 ms a page at 200,000 runs, measured, against 0.2 ms).
-- full = false leaves the payloads out (input, output, the error's stack, metadata and the planned
-- steps).

-- list_runs_newest_first --
-- One page of the runs that match the filter (any workflow), newest first.
SELECT r.run_id, r.workflow, r.status,
       CASE WHEN %(full)s::boolean THEN r.input END AS input,
       CASE WHEN %(full)s::boolean THEN r.output END AS output,
       CASE WHEN %(full)s::boolean THEN r.error ELSE r.error - 'stack' END AS error,
       r.create_time, r.update_time, r.inline, r.graph_hash, r.deterministic,
       CASE WHEN %(full)s::boolean THEN r.metadata END AS metadata,
       CASE WHEN %(full)s::boolean THEN r.planned_steps END AS planned_steps,
       r.schedule_id, r.schedule_time
FROM {schema}.runs r
WHERE (%(statuses)s::text[] IS NULL OR r.status = ANY(%(statuses)s::text[]))
  AND (%(created_after)s::timestamptz IS NULL OR r.create_time >= %(created_after)s::timestamptz)
  AND (%(created_before)s::timestamptz IS NULL OR r.create_time < %(created_before)s::timestamptz)
  AND (%(updated_after)s::timestamptz IS NULL OR r.update_time >= %(updated_after)s::timestamptz)
  AND (%(updated_before)s::timestamptz IS NULL OR r.update_time < %(updated_before)s::timestamptz)
  AND (%(after_time)s::timestamptz IS NULL OR (r.create_time, r.run_id) < (%(after_time)s::timestamptz, %(after_id)s::uuid))
ORDER BY r.create_time DESC, r.run_id DESC
LIMIT %(limit)s;

-- list_runs_oldest_first --
-- One page of the runs that match the filter (any workflow), oldest first.
SELECT r.run_id, r.workflow, r.status,
       CASE WHEN %(full)s::boolean THEN r.input END AS input,
       CASE WHEN %(full)s::boolean THEN r.output END AS output,
       CASE WHEN %(full)s::boolean THEN r.error ELSE r.error - 'stack' END AS error,
       r.create_time, r.update_time, r.inline, r.graph_hash, r.deterministic,
       CASE WHEN %(full)s::boolean THEN r.metadata END AS metadata,
       CASE WHEN %(full)s::boolean THEN r.planned_steps END AS planned_steps,
       r.schedule_id, r.schedule_time
FROM {schema}.runs r
WHERE (%(statuses)s::text[] IS NULL OR r.status = ANY(%(statuses)s::text[]))
  AND (%(created_after)s::timestamptz IS NULL OR r.create_time >= %(created_after)s::timestamptz)
  AND (%(created_before)s::timestamptz IS NULL OR r.create_time < %(created_before)s::timestamptz)
  AND (%(updated_after)s::timestamptz IS NULL OR r.update_time >= %(updated_after)s::timestamptz)
  AND (%(updated_before)s::timestamptz IS NULL OR r.update_time < %(updated_before)s::timestamptz)
  AND (%(after_time)s::timestamptz IS NULL OR (r.create_time, r.run_id) > (%(after_time)s::timestamptz, %(after_id)s::uuid))
ORDER BY r.create_time, r.run_id
LIMIT %(limit)s;

-- list_runs_of_workflow_newest_first --
-- One page of the runs of one workflow that match the filter, newest first.
SELECT r.run_id, r.workflow, r.status,
       CASE WHEN %(full)s::boolean THEN r.input END AS input,
       CASE WHEN %(full)s::boolean THEN r.output END AS output,
       CASE WHEN %(full)s::boolean THEN r.error ELSE r.error - 'stack' END AS error,
       r.create_time, r.update_time, r.inline, r.graph_hash, r.deterministic,
       CASE WHEN %(full)s::boolean THEN r.metadata END AS metadata,
       CASE WHEN %(full)s::boolean THEN r.planned_steps END AS planned_steps,
       r.schedule_id, r.schedule_time
FROM {schema}.runs r
WHERE r.workflow = %(workflow)s::text
  AND (%(statuses)s::text[] IS NULL OR r.status = ANY(%(statuses)s::text[]))
  AND (%(created_after)s::timestamptz IS NULL OR r.create_time >= %(created_after)s::timestamptz)
  AND (%(created_before)s::timestamptz IS NULL OR r.create_time < %(created_before)s::timestamptz)
  AND (%(updated_after)s::timestamptz IS NULL OR r.update_time >= %(updated_after)s::timestamptz)
  AND (%(updated_before)s::timestamptz IS NULL OR r.update_time < %(updated_before)s::timestamptz)
  AND (%(after_time)s::timestamptz IS NULL OR (r.create_time, r.run_id) < (%(after_time)s::timestamptz, %(after_id)s::uuid))
ORDER BY r.create_time DESC, r.run_id DESC
LIMIT %(limit)s;

-- list_runs_of_workflow_oldest_first --
-- One page of the runs of one workflow that match the filter, oldest first.
SELECT r.run_id, r.workflow, r.status,
       CASE WHEN %(full)s::boolean THEN r.input END AS input,
       CASE WHEN %(full)s::boolean THEN r.output END AS output,
       CASE WHEN %(full)s::boolean THEN r.error ELSE r.error - 'stack' END AS error,
       r.create_time, r.update_time, r.inline, r.graph_hash, r.deterministic,
       CASE WHEN %(full)s::boolean THEN r.metadata END AS metadata,
       CASE WHEN %(full)s::boolean THEN r.planned_steps END AS planned_steps,
       r.schedule_id, r.schedule_time
FROM {schema}.runs r
WHERE r.workflow = %(workflow)s::text
  AND (%(statuses)s::text[] IS NULL OR r.status = ANY(%(statuses)s::text[]))
  AND (%(created_after)s::timestamptz IS NULL OR r.create_time >= %(created_after)s::timestamptz)
  AND (%(created_before)s::timestamptz IS NULL OR r.create_time < %(created_before)s::timestamptz)
  AND (%(updated_after)s::timestamptz IS NULL OR r.update_time >= %(updated_after)s::timestamptz)
  AND (%(updated_before)s::timestamptz IS NULL OR r.update_time < %(updated_before)s::timestamptz)
  AND (%(after_time)s::timestamptz IS NULL OR (r.create_time, r.run_id) > (%(after_time)s::timestamptz, %(after_id)s::uuid))
ORDER BY r.create_time, r.run_id
LIMIT %(limit)s;

-- list_steps --
-- Every step of a run in the order they were inserted (the sequence of their first attempts). The
-- run row is joined so a missing run (no row at all) is told apart from a run without steps (one
-- row with a NULL step_id).
SELECT s.*
FROM {schema}.runs r
LEFT JOIN {schema}.steps s ON s.run_id = r.run_id
LEFT JOIN {schema}.step_attempts a ON a.step_id = s.step_id AND a.attempt = 1
WHERE r.run_id = %(run_id)s::uuid
ORDER BY a.seq, s.create_time, s.step_id;

-- count_runs_by_workflow --
-- How many runs each workflow has in each status (statuses without runs are left out).
SELECT workflow, status, count(*) AS runs
FROM {schema}.runs
GROUP BY workflow, status
ORDER BY workflow, status;

-- cancel_run --
-- Cancel one run: move it to to_status (cancelled) if it is in one of from_statuses, storing the
-- reason as its error (one statement: the run event is written by the trigger in the same
-- transaction). Already in to_status is `same`, whatever reason it was cancelled with: cancelling
-- twice is a no-op. Outcomes as in state.sql: missing, same, finished_run, illegal_transition,
-- changed; the row is the run as written, or as it is.
WITH current_run AS (
    SELECT r AS run, r.run_id, r.status FROM {schema}.runs r WHERE r.run_id = %(run_id)s::uuid FOR NO KEY UPDATE
), decided AS (
    SELECT c.*,
           CASE WHEN c.run_id IS NULL THEN 'missing'
                WHEN c.status = %(to_status)s::text THEN 'same'
                WHEN c.status <> ALL(%(open_run_statuses)s::text[]) THEN 'finished_run'
                WHEN c.status <> ALL(%(from_statuses)s::text[]) THEN 'illegal_transition'
                ELSE 'changed' END AS outcome
    FROM (SELECT) AS one LEFT JOIN current_run c ON true
), changed AS (
    UPDATE {schema}.runs r
    SET status = %(to_status)s::text, error = %(error)s::jsonb, update_time = now()
    FROM decided d
    WHERE r.run_id = d.run_id AND d.outcome = 'changed'
    RETURNING r AS run
)
SELECT d.outcome, d.status AS prior_status, (CASE WHEN d.outcome = 'changed' THEN ch.run ELSE d.run END).*
FROM decided d LEFT JOIN changed ch ON true;

-- cancel_runs --
-- Cancel up to max_runs runs that match the filter and are in one of from_statuses, oldest first,
-- as cancel_run does each; returns the ids of the runs cancelled. The runs are locked in the order
-- of runs_by_create_time (so two bulk cancels cannot deadlock), and a run finished while this
-- waited for its lock is left out (the status is checked again on the locked row).
WITH picked AS (
    SELECT r.run_id
    FROM {schema}.runs r
    WHERE r.status = ANY(%(from_statuses)s::text[])
      AND (%(workflow)s::text IS NULL OR r.workflow = %(workflow)s::text)
      AND (%(statuses)s::text[] IS NULL OR r.status = ANY(%(statuses)s::text[]))
      AND (%(created_after)s::timestamptz IS NULL OR r.create_time >= %(created_after)s::timestamptz)
      AND (%(created_before)s::timestamptz IS NULL OR r.create_time < %(created_before)s::timestamptz)
      AND (%(updated_after)s::timestamptz IS NULL OR r.update_time >= %(updated_after)s::timestamptz)
      AND (%(updated_before)s::timestamptz IS NULL OR r.update_time < %(updated_before)s::timestamptz)
    ORDER BY r.create_time, r.run_id
    LIMIT %(max_runs)s
    FOR NO KEY UPDATE
)
UPDATE {schema}.runs r
SET status = %(to_status)s::text, error = %(error)s::jsonb, update_time = now()
FROM picked p
WHERE r.run_id = p.run_id
RETURNING r.run_id;

-- delete_run --
-- Erase a run, its steps and their attempts (foreign keys, ON DELETE CASCADE) and its events (the
-- trigger run_deleted), in this one statement: `missing`, `running` (it is in one of
-- open_run_statuses and force is false: nothing erased), or `deleted`. The run's steps are locked
-- before the run, the order every step write takes (step, then run), so a write racing the delete
-- waits for it instead of deadlocking with it (and then finds its step gone).
WITH locked_steps AS (
    SELECT s.step_id FROM {schema}.steps s WHERE s.run_id = %(run_id)s::uuid ORDER BY s.step_id FOR UPDATE
), current_run AS (
    SELECT r.run_id, r.status, (SELECT count(*) FROM locked_steps) AS steps
    FROM {schema}.runs r WHERE r.run_id = %(run_id)s::uuid FOR UPDATE
), decided AS (
    SELECT c.*,
           CASE WHEN c.run_id IS NULL THEN 'missing'
                WHEN c.status = ANY(%(open_run_statuses)s::text[]) AND NOT %(force)s::boolean THEN 'running'
                ELSE 'deleted' END AS outcome
    FROM (SELECT) AS one LEFT JOIN current_run c ON true
), deleted AS (
    DELETE FROM {schema}.runs r USING decided d WHERE r.run_id = d.run_id AND d.outcome = 'deleted'
)
SELECT outcome, status FROM decided;

-- delete_runs --
-- Erase up to max_runs runs that match the filter, oldest first, as delete_run does each (without
-- force, runs in open_run_statuses are left out); returns the ids erased. Runs are locked in the
-- order of runs_by_create_time, then their steps by the cascade: a step write racing the delete of
-- its run can deadlock with it, and PostgreSQL then aborts one of the two (ABORTED: retry).
WITH picked AS (
    SELECT r.run_id
    FROM {schema}.runs r
    WHERE (%(force)s::boolean OR r.status <> ALL(%(open_run_statuses)s::text[]))
      AND (%(workflow)s::text IS NULL OR r.workflow = %(workflow)s::text)
      AND (%(statuses)s::text[] IS NULL OR r.status = ANY(%(statuses)s::text[]))
      AND (%(created_after)s::timestamptz IS NULL OR r.create_time >= %(created_after)s::timestamptz)
      AND (%(created_before)s::timestamptz IS NULL OR r.create_time < %(created_before)s::timestamptz)
      AND (%(updated_after)s::timestamptz IS NULL OR r.update_time >= %(updated_after)s::timestamptz)
      AND (%(updated_before)s::timestamptz IS NULL OR r.update_time < %(updated_before)s::timestamptz)
    ORDER BY r.create_time, r.run_id
    LIMIT %(max_runs)s
    FOR UPDATE
)
DELETE FROM {schema}.runs r
USING picked p
WHERE r.run_id = p.run_id AND (%(force)s::boolean OR r.status <> ALL(%(open_run_statuses)s::text[]))
RETURNING r.run_id, r.create_time;

-- Engine reads: what an engine re-drives after a crash lost its next move. Their
-- status literals repeat the predicates of the partial indexes on runs and steps for the engine lists
-- (runs_running_by_update_time, steps_pending_by_update_time), so the plans may read them.

-- list_stalled_runs --
-- Up to `limit` running runs that nothing is moving: none of their steps is in one of
-- moving_statuses (running, scheduled, suspended), and neither the run nor any of its steps
-- changed at or after updated_before. Oldest last change (of the run or any step) first. Each
-- candidate run's steps are read once, through their (run_id, step_name) index, for both the
-- last change and whether one is moving: the cost is the idle running runs, never every step.
SELECT r.run_id, GREATEST(r.update_time, run_steps.last_change) AS last_change
FROM {schema}.runs r
CROSS JOIN LATERAL (
    SELECT max(s.update_time) AS last_change, COALESCE(bool_or(s.status = ANY(%(moving_statuses)s::text[])), false) AS moving
    FROM {schema}.steps s
    WHERE s.run_id = r.run_id
) AS run_steps
WHERE r.status = 'running' AND r.update_time < %(updated_before)s::timestamptz
  AND NOT run_steps.moving
  AND (run_steps.last_change IS NULL OR run_steps.last_change < %(updated_before)s::timestamptz)
ORDER BY last_change, r.run_id
LIMIT %(limit)s;

-- list_undispatched_steps --
-- Up to `limit` pending steps of running runs that did not change at or after updated_before,
-- oldest change first. (The run's status is a row filter, as in dispatch's claim_tasks, so the
-- plan stays an ordered scan of the pending steps.)
SELECT s.run_id, s.step_id
FROM {schema}.steps s
WHERE s.status = 'pending' AND s.update_time < %(updated_before)s::timestamptz
  AND (SELECT r.status FROM {schema}.runs r WHERE r.run_id = s.run_id) = 'running'
ORDER BY s.update_time, s.step_id
LIMIT %(limit)s;
