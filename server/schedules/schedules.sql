-- Schedules: their CRUD, and the statement that handles one occurrence.
-- {schema} is the quoted schema identifier; %(name)s are bound parameters.
--
-- A schedule's latest run is its run with the greatest schedule_time (index runs_schedule_occurrence).
-- Runs keep their schedule_id when the schedule is deleted, so a schedule created again under the
-- same id continues that history: its latest run counts for overlap, and an occurrence that already
-- has a run under that id does not get a second one.

-- database_now --
-- The database's clock: every server computes occurrences from it, not from its own.
SELECT now() AS now;

-- create_schedule --
-- Insert a schedule; when its id exists already, return that one (DO UPDATE, unlike DO NOTHING,
-- returns the existing row even when it was committed after this statement's snapshot) with
-- outcome 'same' when the request describes it (a repeated create), else 'exists'.
-- No row when the schema holds `max_schedules` schedules already and none has this id (a repeated
-- create still answers at the bound); schedule_room decides it, one create at a time (its comment
-- says how), so creates racing on several servers never pass the bound.
INSERT INTO {schema}.schedules AS s (schedule_id, workflow, cron, "interval", timezone, input, overlap, catch_up, next_fire_time)
SELECT %(schedule_id)s::text, %(workflow)s::text, %(cron)s::text, %(interval)s::interval, %(timezone)s::text,
       %(input)s::jsonb, %(overlap)s::text, %(catch_up)s::text, %(next_fire_time)s::timestamptz
WHERE {schema}.schedule_room(%(max_schedules)s::bigint, %(schedule_id)s::text)
ON CONFLICT (schedule_id) DO UPDATE SET schedule_id = EXCLUDED.schedule_id
RETURNING CASE WHEN s.xmax = 0 THEN 'changed'
               WHEN s.workflow = %(workflow)s::text AND s.cron IS NOT DISTINCT FROM %(cron)s::text
                    AND s."interval" IS NOT DISTINCT FROM %(interval)s::interval AND s.timezone = %(timezone)s::text
                    AND s.input = %(input)s::jsonb AND s.overlap = %(overlap)s::text AND s.catch_up = %(catch_up)s::text
               THEN 'same'
               ELSE 'exists' END AS outcome,
          s.*;

-- list_schedules --
-- A page of schedules by id, after `after_id` ('' from the start), each with its latest run.
SELECT s.*, last.run_id AS last_run_id, last.schedule_time AS last_schedule_time, last.status AS last_run_status
FROM {schema}.schedules s
LEFT JOIN LATERAL (
    SELECT r.run_id, r.schedule_time, r.status FROM {schema}.runs r
    WHERE r.schedule_id = s.schedule_id ORDER BY r.schedule_time DESC LIMIT 1
) last ON true
WHERE s.schedule_id > %(after_id)s::text
ORDER BY s.schedule_id
LIMIT %(limit)s;

-- get_schedule --
-- One schedule with its latest run.
SELECT s.*, last.run_id AS last_run_id, last.schedule_time AS last_schedule_time, last.status AS last_run_status
FROM {schema}.schedules s
LEFT JOIN LATERAL (
    SELECT r.run_id, r.schedule_time, r.status FROM {schema}.runs r
    WHERE r.schedule_id = s.schedule_id ORDER BY r.schedule_time DESC LIMIT 1
) last ON true
WHERE s.schedule_id = %(schedule_id)s::text;

-- pause_schedule --
-- Stop a schedule firing: it has no next occurrence until resumed. Pausing a paused one changes
-- nothing. No row for an unknown id.
UPDATE {schema}.schedules
SET paused = true, next_fire_time = NULL, update_time = CASE WHEN paused THEN update_time ELSE now() END
WHERE schedule_id = %(schedule_id)s::text
RETURNING schedule_id;

-- resume_schedule --
-- Let a paused schedule fire again from next_fire_time, its first occurrence after the resume
-- (the occurrences of the paused time are not replayed). Resuming one that is not paused changes
-- nothing. No row for an unknown id.
UPDATE {schema}.schedules
SET paused = false,
    next_fire_time = CASE WHEN paused THEN %(next_fire_time)s::timestamptz ELSE next_fire_time END,
    update_time = CASE WHEN paused THEN now() ELSE update_time END
WHERE schedule_id = %(schedule_id)s::text
RETURNING schedule_id;

-- delete_schedule --
-- Remove a schedule; its runs stay. No row for an unknown id.
DELETE FROM {schema}.schedules WHERE schedule_id = %(schedule_id)s::text RETURNING schedule_id;

-- due_schedules --
-- Up to `batch` schedules whose next occurrence has come, soonest first, with the database's now.
-- Only a read: fire_occurrence decides who handles each.
SELECT s.schedule_id, s.cron, s."interval", s.timezone, s.catch_up, s.next_fire_time, now() AS now
FROM {schema}.schedules s
WHERE s.next_fire_time <= now()
ORDER BY s.next_fire_time
LIMIT %(batch)s;

-- next_due_time --
-- When the soonest schedule is next due (NULL when none is), for the loop to sleep until then.
SELECT min(next_fire_time) AS next_fire_time, now() AS now FROM {schema}.schedules;

-- fire_occurrence --
-- Handle the occurrence a server read as the schedule's next (`expected`), in one statement: move
-- the schedule on to `next_fire_time` and, when `fire_time` is set, create the run of occurrence
-- `fire_time` (in the runs' start status, with the schedule's workflow and input; the runs
-- table's trigger writes its run-created event, as for CreateRun). Only the statement that finds
-- the schedule still at `expected` (and not paused) does anything, and it waits for no lock (a
-- schedule another server is handling is skipped), so of servers handling one occurrence at
-- once exactly one acts; the unique index on (schedule_id, schedule_time) would refuse a second
-- run anyway. With overlap 'skip' no run is made while the schedule's latest run is in a status
-- that is not finished (`finished`), and overlap_skips counts the occurrence.
-- Returns nothing when another server handled the occurrence (or it was paused or deleted), else
-- one row: run_id (NULL when no run was made), overlapped, and duplicate: the occurrence should
-- have made a run but one existed already (never, unless the claim above is broken or the runs of
-- an earlier schedule of the same id have times to come; the server logs it).
WITH target AS (
    SELECT s.schedule_id, s.workflow, s.input, s.overlap
    FROM {schema}.schedules s
    WHERE s.schedule_id = %(schedule_id)s::text AND s.next_fire_time = %(expected)s::timestamptz
    FOR NO KEY UPDATE SKIP LOCKED
), latest AS (
    SELECT r.status FROM {schema}.runs r
    WHERE r.schedule_id = %(schedule_id)s::text
    ORDER BY r.schedule_time DESC
    LIMIT 1
), decided AS (
    SELECT t.*,
           %(fire_time)s::timestamptz IS NOT NULL AND t.overlap = 'skip'
               AND EXISTS (SELECT FROM latest l WHERE NOT (l.status = ANY(%(finished)s::text[]))) AS overlapped
    FROM target t
), moved AS (
    UPDATE {schema}.schedules s
    SET next_fire_time = %(next_fire_time)s::timestamptz,
        overlap_skips = s.overlap_skips + CASE WHEN d.overlapped THEN 1 ELSE 0 END,
        update_time = now()
    FROM decided d
    WHERE s.schedule_id = d.schedule_id
    RETURNING d.workflow, d.input, d.overlapped
), created AS (
    INSERT INTO {schema}.runs (run_id, workflow, status, input, schedule_id, schedule_time)
    SELECT gen_random_uuid(), m.workflow, %(status)s::text, m.input, %(schedule_id)s::text, %(fire_time)s::timestamptz
    FROM moved m
    WHERE %(fire_time)s::timestamptz IS NOT NULL AND NOT m.overlapped
    ON CONFLICT (schedule_id, schedule_time) WHERE schedule_id IS NOT NULL DO NOTHING
    RETURNING run_id
)
SELECT c.run_id, m.overlapped,
       %(fire_time)s::timestamptz IS NOT NULL AND NOT m.overlapped AND c.run_id IS NULL AS duplicate
FROM moved m LEFT JOIN created c ON true;
