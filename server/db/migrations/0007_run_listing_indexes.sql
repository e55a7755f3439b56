-- 0007: the indexes ListRuns pages through (and CancelRuns / DeleteRuns pick runs by).
--
-- Pages are keyset positions on (create_time, run_id), in either direction: one btree read forwards
-- or backwards serves both orders. A workflow filter (the common one: "the runs of checkout") gets
-- its own index led by workflow, so its pages are a range scan, not a filter over every run. Status
-- and update_time filters are applied to the rows these scans read: few statuses, and no order on
-- update_time is offered, so an index on them would cost every run write without saving a page much.
CREATE INDEX runs_by_create_time ON {schema}.runs (create_time, run_id);
CREATE INDEX runs_of_workflow_by_create_time ON {schema}.runs (workflow, create_time, run_id);
