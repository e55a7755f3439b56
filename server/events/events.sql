-- Run events: read them in their stable (transaction, id) order from a position, and prune them.
-- {schema} is the quoted schema identifier; %(name)s are bound parameters.

-- run_event_position --
-- Where an event sorts in the order events are read, to resume after it.
SELECT run_id, step_id, status, xact_id::text AS xact_id FROM {schema}.run_events WHERE event_id = %(event_id)s::bigint;

-- run_events_of_run --
-- The next events of runs, each after its own position (xact_id, event_id) and up to its own limit,
-- in that order, of transactions older than every transaction still running: only then can no event
-- sort before them any more (see the table run_events and its trigger function record_run_event).
-- Set-based (one or many: db/coalescer.py), so that the readers of many runs reading at one moment
-- share one read: one row per input with its ordinal, its events as one array per column, in
-- their order (empty when it has none: '{{}}', its braces doubled as {schema} is formatted in).
SELECT i.ordinal,
       COALESCE(array_agg(e.event_id ORDER BY e.xact_id, e.event_id) FILTER (WHERE e.event_id IS NOT NULL), '{{}}') AS event_id,
       COALESCE(array_agg(e.xact_id::text ORDER BY e.xact_id, e.event_id) FILTER (WHERE e.event_id IS NOT NULL), '{{}}') AS xact_id,
       COALESCE(array_agg(e.run_id ORDER BY e.xact_id, e.event_id) FILTER (WHERE e.event_id IS NOT NULL), '{{}}') AS run_id,
       COALESCE(array_agg(e.workflow ORDER BY e.xact_id, e.event_id) FILTER (WHERE e.event_id IS NOT NULL), '{{}}') AS workflow,
       COALESCE(array_agg(e.step_id ORDER BY e.xact_id, e.event_id) FILTER (WHERE e.event_id IS NOT NULL), '{{}}') AS step_id,
       COALESCE(array_agg(e.step_name ORDER BY e.xact_id, e.event_id) FILTER (WHERE e.event_id IS NOT NULL), '{{}}') AS step_name,
       COALESCE(array_agg(e.attempt ORDER BY e.xact_id, e.event_id) FILTER (WHERE e.event_id IS NOT NULL), '{{}}') AS attempt,
       COALESCE(array_agg(e.status ORDER BY e.xact_id, e.event_id) FILTER (WHERE e.event_id IS NOT NULL), '{{}}') AS status,
       COALESCE(array_agg(e.event_time ORDER BY e.xact_id, e.event_id) FILTER (WHERE e.event_id IS NOT NULL), '{{}}') AS event_time
FROM unnest(%(run_id)s::uuid[], %(after_xact_id)s::text[], %(after_event_id)s::bigint[], %(limit)s::integer[])
     WITH ORDINALITY AS i(run_id, after_xact, after_event_id, row_limit, ordinal)
LEFT JOIN LATERAL (
    SELECT e.event_id, e.xact_id, e.run_id, r.workflow, e.step_id, e.step_name, e.attempt, e.status, e.event_time
    FROM {schema}.run_events e JOIN {schema}.runs r ON r.run_id = e.run_id
    WHERE e.run_id = i.run_id
      AND (e.xact_id, e.event_id) > (i.after_xact::xid8, i.after_event_id)
      AND e.xact_id < pg_snapshot_xmin(pg_current_snapshot())
    ORDER BY e.xact_id, e.event_id
    LIMIT i.row_limit
) AS e ON true
GROUP BY i.ordinal;

-- run_events_all --
-- The same over every run, or every run of one workflow.
SELECT e.event_id, e.xact_id::text AS xact_id, e.run_id, r.workflow, e.step_id, e.step_name, e.attempt,
       e.status, e.event_time
FROM {schema}.run_events e JOIN {schema}.runs r ON r.run_id = e.run_id
WHERE (%(workflow)s::text IS NULL OR r.workflow = %(workflow)s::text)
  AND (e.xact_id, e.event_id) > (%(after_xact_id)s::xid8, %(after_event_id)s::bigint)
  AND e.xact_id < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY e.xact_id, e.event_id
LIMIT %(limit)s;

-- prune_run_events --
-- Delete up to 10,000 events older than the retention; returns how many went.
WITH gone AS (
    DELETE FROM {schema}.run_events
    WHERE event_id IN (
        SELECT event_id FROM {schema}.run_events
        WHERE event_time < now() - %(retention)s::interval
        ORDER BY event_time
        LIMIT 10000
    )
    RETURNING 1
)
SELECT count(*) AS pruned FROM gone;

-- run_events_newest --
-- The position of the newest readable event: where a server's event pump starts.
SELECT xact_id::text AS xact_id, event_id FROM {schema}.run_events
WHERE xact_id < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY xact_id DESC, event_id DESC
LIMIT 1;

-- run_events_touched --
-- The runs of the readable events after a position, in order, and where each event sorts: what
-- a server's event pump tells its readers. Every row (one row with NULL event columns when there
-- is no event) also carries the statement's snapshot: readable_below (events of transactions
-- older than it are readable) and next_xid (every transaction committed before this statement is
-- older than it), with which the pump knows when the changes made through its server are readable.
WITH snapshot AS (SELECT pg_current_snapshot() AS s)
SELECT pg_snapshot_xmin(snapshot.s)::text AS readable_below, pg_snapshot_xmax(snapshot.s)::text AS next_xid,
       e.run_id, e.xact_id::text AS xact_id, e.event_id
FROM snapshot LEFT JOIN LATERAL (
    SELECT run_id, xact_id, event_id FROM {schema}.run_events
    WHERE (xact_id, event_id) > (%(after_xact_id)s::xid8, %(after_event_id)s::bigint)
      AND xact_id < pg_snapshot_xmin(snapshot.s)
    ORDER BY xact_id, event_id
    LIMIT %(limit)s
) e ON true
ORDER BY e.xact_id, e.event_id;

-- follow_runs --
-- Have the run-event trigger NOTIFY the events of these runs to the
-- LISTEN connection with this backend pid; returns how many were not followed already.
WITH added AS (
    INSERT INTO {schema}.run_event_listeners (run_id, listener_pid)
    SELECT run_id, %(listener_pid)s::integer FROM unnest(%(run_ids)s::uuid[]) AS run_id
    ON CONFLICT DO NOTHING
    RETURNING 1
)
SELECT count(*) AS added FROM added;

-- unfollow_runs --
-- Stop notifying these runs' events to that connection; returns how many were followed.
WITH gone AS (
    DELETE FROM {schema}.run_event_listeners
    WHERE listener_pid = %(listener_pid)s::integer AND run_id = ANY(%(run_ids)s::uuid[])
    RETURNING 1
)
SELECT count(*) AS removed FROM gone;

-- forget_gone_listeners --
-- Delete the followed runs of LISTEN connections that are gone (their server stopped, crashed or
-- reconnected); returns how many went.
WITH gone AS (
    DELETE FROM {schema}.run_event_listeners
    WHERE listener_pid NOT IN (SELECT pid FROM pg_stat_activity WHERE pid IS NOT NULL)
    RETURNING 1
)
SELECT count(*) AS removed FROM gone;
