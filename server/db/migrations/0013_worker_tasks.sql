-- Which steps are worker tasks, and which worker streams are still there and whose: decided
-- in the statements that write steps (state.sql: set_step_status, claim_step) and adopt tasks
-- (dispatch.sql: adopt_tasks), so the decision and the write are one statement.

-- The token a stream's worker authenticated with, as a fingerprint (the first 16 hex digits of
-- its SHA-256; NULL on a server without --auth-tokens): a worker takes back a task of a stream
-- still connected only under the same worker_id and token, so a worker_id alone, which any
-- worker may claim, does not suffice.
ALTER TABLE {schema}.worker_streams ADD COLUMN credential text;

-- Whether the stream's worker is still connected to some server: its row (worker_streams) was
-- heartbeaten within its task lease. A stream that ended has no row; one whose server died keeps
-- its row until the task lease passes (the same rule as ListWorkers).
CREATE FUNCTION {schema}.worker_stream_live(stream uuid) RETURNS boolean
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
    SELECT EXISTS (SELECT FROM worker_streams w WHERE w.stream_id = stream AND w.heartbeat_time + w.task_lease >= now())
$$;

-- Whether a step is a worker task: a worker's stream holds its attempt (task_stream_id), or it
-- waits in one of due_statuses (those a claim hands to workers: scheduled) with an rpc name that a
-- connected worker stream serves, so dispatch would hand it to that worker. A step without an rpc
-- name, or whose rpc name no worker serves, is the engine's to run (ClaimStep, SetStepRunning).
CREATE FUNCTION {schema}.worker_task(status text, rpc text, task_stream uuid, due_statuses text[]) RETURNS boolean
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
    SELECT task_stream IS NOT NULL
        OR (status = ANY(due_statuses) AND rpc <> ''
            AND EXISTS (SELECT FROM worker_streams w WHERE rpc = ANY(w.rpc_names) AND w.heartbeat_time + w.task_lease >= now()))
$$;
