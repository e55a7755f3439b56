-- 0011: schedules (server/schedules/): runs created by every server at a cron expression's or an
-- interval's times, each occurrence exactly once.
--
-- A schedule has either a cron expression (5 fields, read in its timezone) or an interval, never
-- both. next_fire_time is the next occurrence not yet handled; the statement that handles it
-- (schedules.sql fire_occurrence) moves it on from the value it read, so of two servers handling
-- the same occurrence one does. A paused schedule has none (paused <=> next_fire_time IS NULL):
-- resuming computes the first occurrence after the resume, so the paused time is never replayed.
CREATE TABLE {schema}.schedules (
    schedule_id text PRIMARY KEY,
    workflow text NOT NULL,
    cron text,
    "interval" interval CHECK ("interval" >= interval '1 second'),
    timezone text NOT NULL,
    input jsonb NOT NULL,
    overlap text NOT NULL CHECK (overlap IN ('skip', 'allow')),
    catch_up text NOT NULL CHECK (catch_up IN ('skip', 'latest')),
    paused boolean NOT NULL DEFAULT false,
    next_fire_time timestamptz,
    -- Occurrences that made no run because the schedule's latest run had not finished (overlap
    -- 'skip'); occurrences passed over as missed (catch_up) are not counted.
    overlap_skips bigint NOT NULL DEFAULT 0,
    create_time timestamptz NOT NULL DEFAULT now(),
    update_time timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT schedules_cron_or_interval CHECK ((cron IS NULL) <> ("interval" IS NULL)),
    CONSTRAINT schedules_paused_without_next CHECK (paused = (next_fire_time IS NULL))
);

-- The loop of every server reads the due schedules, soonest first.
CREATE INDEX schedules_due ON {schema}.schedules (next_fire_time) WHERE next_fire_time IS NOT NULL;

-- A run a schedule made names it and the occurrence it is for. The unique index is the database's
-- own refusal of a second run for one occurrence, whatever the servers do; it also finds a
-- schedule's latest run (overlap, ListSchedules). Runs keep these when their schedule is deleted.
ALTER TABLE {schema}.runs ADD COLUMN schedule_id text, ADD COLUMN schedule_time timestamptz,
    ADD CONSTRAINT runs_schedule_time_check CHECK ((schedule_id IS NULL) = (schedule_time IS NULL));
CREATE UNIQUE INDEX runs_schedule_occurrence ON {schema}.runs (schedule_id, schedule_time) WHERE schedule_id IS NOT NULL;
