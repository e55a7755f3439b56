-- The versions of each workflow's graph (table workflow_versions), named by
-- their graph hash. {schema} is the quoted schema identifier; %(name)s are bound parameters. The
-- statuses a status change may start from come from state/transitions.py (VERSION_MOVES) as
-- from_statuses; its outcome column is the one of state/outcomes.py.

-- upsert_workflow_version --
-- Record a version in status `status`, or return the one of the same workflow and graph hash as
-- it is (a hash names one graph: its graph, source and status are not changed). DO UPDATE, unlike
-- DO NOTHING, returns the existing row even when it was committed after this statement's
-- snapshot; it writes no value. created says which.
INSERT INTO {schema}.workflow_versions (workflow, graph_hash, graph, source, status)
VALUES (%(workflow)s::text, %(graph_hash)s::text, %(graph)s::jsonb, %(source)s::text, %(status)s::text)
ON CONFLICT (workflow, graph_hash) DO UPDATE SET workflow = EXCLUDED.workflow
RETURNING xmax = 0 AS created, *;

-- get_workflow_version --
-- One version by workflow and graph hash.
SELECT * FROM {schema}.workflow_versions WHERE workflow = %(workflow)s::text AND graph_hash = %(graph_hash)s::text;

-- update_workflow_version_status --
-- Move a version to to_status if its status is one of from_statuses: missing, same (already
-- there), illegal_transition or changed; the row as written, or as it is.
WITH current_version AS (
    SELECT v AS version, v.workflow, v.status
    FROM {schema}.workflow_versions v
    WHERE v.workflow = %(workflow)s::text AND v.graph_hash = %(graph_hash)s::text
    FOR NO KEY UPDATE
), decided AS (
    SELECT c.*,
           CASE WHEN c.workflow IS NULL THEN 'missing'
                WHEN c.status = %(to_status)s::text THEN 'same'
                WHEN c.status <> ALL(%(from_statuses)s::text[]) THEN 'illegal_transition'
                ELSE 'changed' END AS outcome
    FROM (SELECT) AS one LEFT JOIN current_version c ON true
), changed AS (
    UPDATE {schema}.workflow_versions v
    SET status = %(to_status)s::text, update_time = now()
    FROM decided d
    WHERE v.workflow = d.workflow AND v.graph_hash = %(graph_hash)s::text AND d.outcome = 'changed'
    RETURNING v AS version
)
SELECT d.outcome, d.status AS prior_status, (CASE WHEN d.outcome = 'changed' THEN ch.version ELSE d.version END).*
FROM decided d LEFT JOIN changed ch ON true;
