-- 0010: engine state: what a workflow engine such as Pikku keeps beside runs and steps.
--
-- Runs: how the engine runs them (inline, deterministic, the planned steps), the version of the
-- graph they follow (graph_hash, see workflow_versions), the engine's own JSON (metadata), and the
-- run's state variables (state, a JSON object written one key at a time by UpdateRunState). New
-- columns have constant defaults, so adding them rewrites no table.
ALTER TABLE {schema}.runs
    ADD COLUMN inline boolean NOT NULL DEFAULT false,
    ADD COLUMN graph_hash text,
    ADD COLUMN metadata jsonb,
    ADD COLUMN deterministic boolean NOT NULL DEFAULT false,
    ADD COLUMN planned_steps jsonb,
    ADD COLUMN state jsonb;

-- Steps: the step a step follows (a graph's edge, as inserted), and what its current attempt
-- started (a child run) or chose (a branch); CreateRetryAttempt clears both. No foreign key on
-- child_run_id: erasing a child run must not touch its parent's steps (SetStepChildRun checks the
-- child exists when it is set).
ALTER TABLE {schema}.steps
    ADD COLUMN from_step_name text,
    ADD COLUMN child_run_id uuid,
    ADD COLUMN branch_key text;

-- Attempts keep their own times, so the history says when each attempt was scheduled, ran,
-- succeeded or failed (the step's columns are its current attempt's only).
ALTER TABLE {schema}.step_attempts
    ADD COLUMN scheduled_time timestamptz,
    ADD COLUMN running_time timestamptz,
    ADD COLUMN succeeded_time timestamptz,
    ADD COLUMN failed_time timestamptz;

-- SUSPENDED, for runs, steps and attempts (state/transitions.py says where it may come from and go).
ALTER TABLE {schema}.runs DROP CONSTRAINT runs_status_check,
    ADD CONSTRAINT runs_status_check CHECK (status IN ('running', 'suspended', 'completed', 'failed', 'cancelled'));
ALTER TABLE {schema}.steps DROP CONSTRAINT steps_status_check,
    ADD CONSTRAINT steps_status_check CHECK (status IN ('pending', 'scheduled', 'running', 'suspended', 'succeeded', 'failed'));
ALTER TABLE {schema}.step_attempts DROP CONSTRAINT step_attempts_status_check,
    ADD CONSTRAINT step_attempts_status_check CHECK (status IN ('pending', 'scheduled', 'running', 'suspended', 'succeeded', 'failed'));

-- A suspended run is not finished: retention never erases one (the policies hold finished
-- statuses only), its partial index leaves it out as it leaves out running runs, and a run's move
-- from suspended to a finished status tells the workers holding its attempts, as from running.
ALTER TABLE {schema}.retention_policies DROP CONSTRAINT retention_policies_statuses_check,
    ADD CONSTRAINT retention_policies_statuses_check
        CHECK (cardinality(statuses) > 0 AND NOT (statuses && ARRAY['running', 'suspended']));
DROP INDEX {schema}.runs_finished_by_update_time;
CREATE INDEX runs_finished_by_update_time ON {schema}.runs (status, update_time) WHERE status NOT IN ('running', 'suspended');
DROP TRIGGER run_finished ON {schema}.runs;
CREATE TRIGGER run_finished AFTER UPDATE OF status ON {schema}.runs
    FOR EACH ROW WHEN (OLD.status IN ('running', 'suspended') AND NEW.status NOT IN ('running', 'suspended'))
    EXECUTE FUNCTION {schema}.announce_finished_run();

-- ListStalledRuns reads running runs by the time they last changed; ListUndispatchedSteps reads
-- pending steps by the time they last changed. Partial, so each holds only the few rows in those
-- statuses and costs a run or step write nothing once it moves on.
CREATE INDEX runs_running_by_update_time ON {schema}.runs (update_time, run_id) WHERE status = 'running';
CREATE INDEX steps_pending_by_update_time ON {schema}.steps (update_time, step_id) WHERE status = 'pending';

-- The versions of each workflow's graph, named by their hash (UpsertWorkflowVersion). A hash names
-- one graph: a version is written once and only its status changes afterwards.
CREATE TABLE {schema}.workflow_versions (
    workflow text NOT NULL,
    graph_hash text NOT NULL,
    graph jsonb NOT NULL,
    source text NOT NULL DEFAULT '',
    status text NOT NULL CHECK (status IN ('draft', 'active', 'declined')),
    create_time timestamptz NOT NULL DEFAULT now(),
    update_time timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workflow, graph_hash)
);
