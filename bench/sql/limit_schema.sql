-- The tables of the SQL limit: the server's runs, steps and step attempts, with the same keys,
-- uniqueness and cascades, and only the columns one step lifecycle writes or reads.
-- Unqualified names: the caller sets search_path to the bench's own schema first.

CREATE TABLE runs (
    run_id      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    workflow    text NOT NULL,
    status      text NOT NULL,
    input       jsonb NOT NULL,
    output      jsonb,
    error       jsonb,
    create_time timestamptz NOT NULL DEFAULT now(),
    update_time timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE steps (
    step_id       uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    run_id        uuid NOT NULL REFERENCES runs (run_id) ON DELETE CASCADE,
    step_name     text NOT NULL,
    rpc_name      text NOT NULL,
    data          jsonb NOT NULL,
    status        text NOT NULL,
    result        jsonb,
    error         jsonb,
    attempt_count integer NOT NULL DEFAULT 1,
    retries       integer,
    create_time   timestamptz NOT NULL DEFAULT now(),
    update_time   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (run_id, step_name)
);

CREATE TABLE step_attempts (
    step_id     uuid NOT NULL REFERENCES steps (step_id) ON DELETE CASCADE,
    attempt     integer NOT NULL,
    status      text NOT NULL,
    result      jsonb,
    error       jsonb,
    create_time timestamptz NOT NULL DEFAULT now(),
    update_time timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (step_id, attempt)
);

-- Remote mode: when a scheduled step falls due, and the index dispatch looks it up by.
ALTER TABLE steps ADD COLUMN not_before timestamptz;
CREATE INDEX steps_due ON steps (not_before, step_id) WHERE status = 'scheduled';
