-- Retention policies and the erasing of the runs they match.
-- {schema} is the quoted schema identifier; %(name)s are bound parameters.
--
-- A policy is known by (workflow, statuses): workflow '' is every workflow; statuses is the sorted
-- set of finished statuses (the store sorts it), so the same pair set again is the same policy.

-- set_policy --
-- Create the policy, or give the existing one of the same (workflow, statuses) this keep; returns it.
INSERT INTO {schema}.retention_policies (workflow, statuses, keep)
VALUES (%(workflow)s::text, %(statuses)s::text[], %(keep)s::interval)
ON CONFLICT (workflow, statuses) DO UPDATE SET keep = EXCLUDED.keep, update_time = now()
RETURNING *;

-- list_policies --
-- Every policy, by id.
SELECT * FROM {schema}.retention_policies ORDER BY policy_id;

-- delete_policy --
-- Remove one policy; no row when there is none of that id.
DELETE FROM {schema}.retention_policies WHERE policy_id = %(policy_id)s::bigint RETURNING policy_id;

-- erase_expired_runs --
-- Erase up to `batch` runs in one of `statuses` last changed longer than `keep` ago (any
-- workflow), as DeleteRun does each: steps and attempts by the foreign keys' cascade, events by the
-- trigger run_deleted (delete_run_events). Returns the ids erased.
--
-- It waits for no lock, so servers running it at once never fight and no write waits long behind
-- it: runs locked by someone else (another server's batch) are skipped, and so is a run whose
-- steps it cannot all lock at once (a late worker report holds one, and would next wait for the
-- run: erasing it then would deadlock); both are erased on a later tick. `status NOT IN
-- ('running', 'suspended')` repeats the predicate of the partial index runs_finished_by_update_time,
-- so the plan may read that index.
WITH picked AS (
    SELECT r.run_id
    FROM {schema}.runs r
    WHERE r.status NOT IN ('running', 'suspended') AND r.status = ANY(%(statuses)s::text[]) AND r.update_time < now() - %(keep)s::interval
    LIMIT %(batch)s
    FOR UPDATE SKIP LOCKED
), step_counts AS (
    SELECT s.run_id, count(*) AS steps FROM {schema}.steps s WHERE s.run_id IN (SELECT run_id FROM picked) GROUP BY s.run_id
), locked_steps AS (
    SELECT s.run_id FROM {schema}.steps s WHERE s.run_id IN (SELECT run_id FROM picked) FOR UPDATE SKIP LOCKED
), erasable AS (
    SELECT p.run_id FROM picked p LEFT JOIN step_counts c ON c.run_id = p.run_id
    WHERE COALESCE(c.steps, 0) = (SELECT count(*) FROM locked_steps l WHERE l.run_id = p.run_id)
)
DELETE FROM {schema}.runs r USING erasable e WHERE r.run_id = e.run_id
RETURNING r.run_id;

-- erase_expired_runs_of_workflow --
-- As erase_expired_runs, for the runs of one workflow only (its own statement, so that a prepared
-- plan never has to serve both shapes; see the top of state/catalog.sql).
WITH picked AS (
    SELECT r.run_id
    FROM {schema}.runs r
    WHERE r.status NOT IN ('running', 'suspended') AND r.status = ANY(%(statuses)s::text[]) AND r.update_time < now() - %(keep)s::interval
      AND r.workflow = %(workflow)s::text
    LIMIT %(batch)s
    FOR UPDATE SKIP LOCKED
), step_counts AS (
    SELECT s.run_id, count(*) AS steps FROM {schema}.steps s WHERE s.run_id IN (SELECT run_id FROM picked) GROUP BY s.run_id
), locked_steps AS (
    SELECT s.run_id FROM {schema}.steps s WHERE s.run_id IN (SELECT run_id FROM picked) FOR UPDATE SKIP LOCKED
), erasable AS (
    SELECT p.run_id FROM picked p LEFT JOIN step_counts c ON c.run_id = p.run_id
    WHERE COALESCE(c.steps, 0) = (SELECT count(*) FROM locked_steps l WHERE l.run_id = p.run_id)
)
DELETE FROM {schema}.runs r USING erasable e WHERE r.run_id = e.run_id
RETURNING r.run_id;
