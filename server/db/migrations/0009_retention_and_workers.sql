-- 0009: retention policies, which every server applies the same (server/retention/), and the
-- worker streams connected to every server, for ListWorkers (server/dispatch/).
--
-- A policy is known by (workflow, statuses): workflow '' means every workflow, and statuses is the
-- sorted set of finished statuses it erases (the server sorts it and fills an empty one in), so
-- setting the same pair again is an upsert on this key, keeping the policy's id.
CREATE TABLE {schema}.retention_policies (
    policy_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workflow text NOT NULL,
    statuses text[] NOT NULL CHECK (cardinality(statuses) > 0 AND NOT ('running' = ANY(statuses))),
    keep interval NOT NULL CHECK (keep > interval '0'),
    create_time timestamptz NOT NULL DEFAULT now(),
    update_time timestamptz NOT NULL DEFAULT now(),
    UNIQUE (workflow, statuses)
);

-- The runs a policy erases, found by a range scan: finished runs by status and the time they
-- finished (update_time). Partial: a running run is never in it, so creating runs costs it nothing
-- and a run enters it once, when it finishes (the retention statements repeat the predicate).
CREATE INDEX runs_finished_by_update_time ON {schema}.runs (status, update_time) WHERE status <> 'running';

-- One row per subscribed StreamStepTasks stream: written at subscribe, at each heartbeat (with
-- the tasks in flight then) and deleted when the stream ends. A server that dies leaves its rows:
-- they count as gone once heartbeat_time + task_lease passed (ListWorkers filters them out, the
-- dispatch sweeper deletes them), as the tasks of those streams are declared lost then too.
CREATE TABLE {schema}.worker_streams (
    stream_id uuid PRIMARY KEY,
    worker_id text NOT NULL,
    rpc_names text[] NOT NULL,
    max_in_flight integer NOT NULL,
    tasks_in_flight integer NOT NULL,
    task_lease interval NOT NULL,
    server_id uuid NOT NULL,
    server_address text NOT NULL,
    connect_time timestamptz NOT NULL DEFAULT now(),
    heartbeat_time timestamptz NOT NULL DEFAULT now()
);
