-- 0001: runs, steps and the attempt history.
-- {schema} is replaced by the quoted schema identifier (psycopg.sql.Identifier), never by raw text.
-- Function bodies never hold it: they are created with SET search_path FROM CURRENT (migrate.py
-- puts the schema first on the path) and name the schema's tables without it.
-- Statuses are stored as lower-case text (readable by operators); the CHECKs keep them to the contract's values.

CREATE TABLE {schema}.runs (
    run_id      uuid PRIMARY KEY,
    workflow    text NOT NULL,
    status      text NOT NULL CHECK (status IN ('running', 'completed', 'failed', 'cancelled')),
    input       jsonb NOT NULL,
    output      jsonb,
    error       jsonb,
    -- Idempotency key of CreateRun; NULL when the caller gave none.
    request_id  text,
    create_time timestamptz NOT NULL DEFAULT now(),
    update_time timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX runs_request_id_key ON {schema}.runs (request_id) WHERE request_id IS NOT NULL;

CREATE TABLE {schema}.steps (
    step_id        uuid PRIMARY KEY,
    run_id         uuid NOT NULL REFERENCES {schema}.runs (run_id) ON DELETE CASCADE,
    step_name      text NOT NULL,
    rpc_name       text NOT NULL,
    data           jsonb NOT NULL,
    status         text NOT NULL CHECK (status IN ('pending', 'scheduled', 'running', 'succeeded', 'failed')),
    result         jsonb,
    error          jsonb,
    -- Number of the current attempt; the matching history row is (step_id, attempt_count).
    attempt_count  integer NOT NULL DEFAULT 1 CHECK (attempt_count >= 1),
    retries        integer CHECK (retries >= 0),
    retry_delay    interval,
    create_time    timestamptz NOT NULL DEFAULT now(),
    update_time    timestamptz NOT NULL DEFAULT now(),
    scheduled_time timestamptz,
    running_time   timestamptz,
    succeeded_time timestamptz,
    failed_time    timestamptz,
    UNIQUE (run_id, step_name)
);

-- One row per attempt of a step. run_id and step_name are copied from the step (they never
-- change) so a run's history is read from this table alone, in (create_time, seq) order.
CREATE TABLE {schema}.step_attempts (
    step_id     uuid NOT NULL REFERENCES {schema}.steps (step_id) ON DELETE CASCADE,
    attempt     integer NOT NULL,
    run_id      uuid NOT NULL,
    step_name   text NOT NULL,
    status      text NOT NULL CHECK (status IN ('pending', 'scheduled', 'running', 'succeeded', 'failed')),
    result      jsonb,
    error       jsonb,
    create_time timestamptz NOT NULL DEFAULT now(),
    update_time timestamptz NOT NULL DEFAULT now(),
    -- Breaks ties between attempts written in the same transaction instant, in write order.
    seq         bigint GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (step_id, attempt)
);
CREATE INDEX step_attempts_run_order ON {schema}.step_attempts (run_id, create_time, seq);
