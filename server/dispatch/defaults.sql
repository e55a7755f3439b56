-- Dispatch defaults per rpc name (table dispatch_defaults): the options a step of
-- that rpc name takes at insert when it does not set them (read by state.sql's insert_step) and
-- the limits every claim enforces (read by dispatch.sql's claim_tasks). {schema} is the quoted
-- schema identifier; %(name)s are bound parameters.

-- set_defaults --
-- Create or replace one rpc name's defaults (every column: a field not given becomes NULL). The
-- trigger rate_limit_set creates, caps or drops the rate limit's bucket.
INSERT INTO {schema}.dispatch_defaults
    (rpc_name, retries, retry_delay, backoff_coefficient, max_retry_delay, jitter, start_to_close, schedule_to_start,
     priority, concurrency_limit, rate_limit, rate_period)
VALUES (%(rpc_name)s::text, %(opt_retries)s::integer, %(opt_retry_delay)s::interval, %(opt_backoff_coefficient)s::double precision,
        %(opt_max_retry_delay)s::interval, %(opt_jitter)s::double precision, %(opt_start_to_close)s::interval,
        %(opt_schedule_to_start)s::interval, %(opt_priority)s::integer, %(concurrency_limit)s::integer,
        %(rate_limit)s::integer, %(rate_period)s::interval)
ON CONFLICT (rpc_name) DO UPDATE SET
    retries = EXCLUDED.retries, retry_delay = EXCLUDED.retry_delay, backoff_coefficient = EXCLUDED.backoff_coefficient,
    max_retry_delay = EXCLUDED.max_retry_delay, jitter = EXCLUDED.jitter, start_to_close = EXCLUDED.start_to_close,
    schedule_to_start = EXCLUDED.schedule_to_start, priority = EXCLUDED.priority,
    concurrency_limit = EXCLUDED.concurrency_limit, rate_limit = EXCLUDED.rate_limit, rate_period = EXCLUDED.rate_period,
    update_time = now()
RETURNING *;

-- list_defaults --
-- Every rpc name's defaults, by rpc name.
SELECT * FROM {schema}.dispatch_defaults ORDER BY rpc_name;

-- delete_defaults --
-- Remove one rpc name's defaults (its rate limit's bucket goes with them: ON DELETE CASCADE).
DELETE FROM {schema}.dispatch_defaults WHERE rpc_name = %(rpc_name)s::text RETURNING rpc_name;
