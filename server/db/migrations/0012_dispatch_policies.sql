-- 0012: dispatch policies: backoff, timeouts, priority, concurrency keys, rate limits,
-- and the defaults per rpc name that hold the limits and fill in what a step does not set.
-- Every policy is decided by the statements of server/dispatch/dispatch.sql that claim, fail and
-- sweep work; nothing of it lives in a server's memory.

-- A step's own dispatch options, as inserted (its rpc name's defaults filled in for those it did
-- not set; SetStepScheduled may replace them). NULL means "not set": no backoff (coefficient 1),
-- no cap, no jitter, no timeout, no key.
ALTER TABLE {schema}.steps ADD COLUMN backoff_coefficient double precision CHECK (backoff_coefficient >= 1);
ALTER TABLE {schema}.steps ADD COLUMN max_retry_delay interval CHECK (max_retry_delay >= interval '0');
ALTER TABLE {schema}.steps ADD COLUMN jitter double precision CHECK (jitter BETWEEN 0 AND 1);
ALTER TABLE {schema}.steps ADD COLUMN start_to_close interval CHECK (start_to_close > interval '0');
ALTER TABLE {schema}.steps ADD COLUMN schedule_to_start interval CHECK (schedule_to_start > interval '0');
ALTER TABLE {schema}.steps ADD COLUMN priority integer NOT NULL DEFAULT 0;
ALTER TABLE {schema}.steps ADD COLUMN concurrency_key text;
-- When the attempt a worker holds times out (its claim + start_to_close), whatever its heartbeats;
-- NULL without start_to_close or unless handed out. task_expire_time never passes it.
ALTER TABLE {schema}.steps ADD COLUMN task_timeout_time timestamptz;
-- When a SCHEDULED attempt fails unless claimed (its due time + schedule_to_start); NULL otherwise.
ALTER TABLE {schema}.steps ADD COLUMN start_timeout_time timestamptz;

-- The claim reads due steps highest priority first, then by due time (priority 0 for every step
-- that does not set one, so the order is the old one).
CREATE INDEX steps_due_by_priority ON {schema}.steps (priority DESC, not_before, step_id) WHERE status = 'scheduled';
-- The concurrency check counts the running attempts of one key.
CREATE INDEX steps_running_by_key ON {schema}.steps (concurrency_key) WHERE status = 'running' AND concurrency_key IS NOT NULL;
-- The sweeper looks for scheduled attempts nobody claimed in time.
CREATE INDEX steps_start_timeout ON {schema}.steps (start_timeout_time) WHERE start_timeout_time IS NOT NULL;

-- Defaults per rpc name (SetDispatchDefaults): the options a step of that rpc name takes at
-- insert when it does not set them, and the limits the claim enforces for it.
CREATE TABLE {schema}.dispatch_defaults (
    rpc_name text PRIMARY KEY,
    retries integer CHECK (retries >= 0),
    retry_delay interval CHECK (retry_delay >= interval '0'),
    backoff_coefficient double precision CHECK (backoff_coefficient >= 1),
    max_retry_delay interval CHECK (max_retry_delay >= interval '0'),
    jitter double precision CHECK (jitter BETWEEN 0 AND 1),
    start_to_close interval CHECK (start_to_close > interval '0'),
    schedule_to_start interval CHECK (schedule_to_start > interval '0'),
    priority integer,
    -- At most this many attempts of one concurrency key run at once, counted over every rpc name,
    -- when a step of this rpc name is claimed. NULL: no limit.
    concurrency_limit integer CHECK (concurrency_limit >= 1),
    -- A token bucket per rpc name: rate_limit claims per rate_period, at most rate_limit at once.
    rate_limit integer CHECK (rate_limit >= 1),
    rate_period interval CHECK (rate_period > interval '0'),
    update_time timestamptz NOT NULL DEFAULT now(),
    CHECK ((rate_limit IS NULL) = (rate_period IS NULL))
);

-- The token buckets of the rate limits, one per rpc name with a rate_limit: tokens left as of
-- refill_time. Kept by the trigger below (a bucket starts full; lowering the limit drops the
-- tokens above it) and updated by the claim (dispatch.sql), which locks the row.
CREATE TABLE {schema}.rate_buckets (
    rpc_name text PRIMARY KEY REFERENCES {schema}.dispatch_defaults (rpc_name) ON DELETE CASCADE,
    tokens double precision NOT NULL,
    refill_time timestamptz NOT NULL,
    -- How many tokens the last claim took (so the claim's UPDATE can return it).
    granted integer NOT NULL DEFAULT 0
);

CREATE FUNCTION {schema}.keep_rate_bucket() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
    IF NEW.rate_limit IS NULL THEN
        DELETE FROM rate_buckets WHERE rpc_name = NEW.rpc_name;
    ELSE
        INSERT INTO rate_buckets (rpc_name, tokens, refill_time) VALUES (NEW.rpc_name, NEW.rate_limit, clock_timestamp())
        ON CONFLICT (rpc_name) DO UPDATE SET tokens = least(rate_buckets.tokens, NEW.rate_limit);
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER rate_limit_set AFTER INSERT OR UPDATE OF rate_limit ON {schema}.dispatch_defaults
    FOR EACH ROW EXECUTE FUNCTION {schema}.keep_rate_bucket();

-- The delay before the automatic retry that follows failed attempt n (documented in the README):
--   delay_n = min(retry_delay * backoff_coefficient ^ (n - 1), max_retry_delay) * (1 - jitter * random())
-- A missing retry_delay is 0, coefficient 1, max_retry_delay no cap, jitter 0. The power is taken in
-- seconds and capped at 100 years, so a big coefficient cannot overflow an interval.
CREATE FUNCTION {schema}.retry_backoff(retry_delay interval, coefficient double precision, max_retry_delay interval,
                                       jitter double precision, attempt integer) RETURNS interval
LANGUAGE sql VOLATILE AS $$
    SELECT make_interval(secs => least(
               extract(epoch FROM COALESCE(retry_delay, interval '0'))::double precision
                   * exp(least((attempt - 1) * ln(COALESCE(coefficient, 1)), 50)),
               COALESCE(extract(epoch FROM max_retry_delay)::double precision, 'Infinity'),
               3155760000) * (1 - COALESCE(jitter, 0) * random()))
$$;

-- The advisory lock id of a concurrency key: its hash, with the schema's name, so the keys of two
-- schemas do not meet (a collision only makes two keys take turns). The claim takes the locks of
-- its keys in the order of these ids, so two claims never wait for each other's. current_schema()
-- is the function's own schema (its search_path), quoted as the hash has always had it.
CREATE FUNCTION {schema}.concurrency_lock_id(key text) RETURNS bigint
LANGUAGE sql IMMUTABLE SET search_path FROM CURRENT AS $$
    SELECT hashtextextended('workflowstate concurrency "' || current_schema() || '" ' || key, 0)
$$;

-- The running attempts of a concurrency key, counted after taking the key's lock: a
-- transaction-scoped advisory lock, held until the claim that took it commits. VOLATILE plpgsql
-- takes a fresh snapshot for its query, so the count sees every claim that committed before the
-- lock was granted; two claims of one key, on any servers, therefore decide one after the other.
-- Attempts of finished runs do not count (they take no more reports).
CREATE FUNCTION {schema}.concurrency_running(key text, held_status text, open_run_statuses text[]) RETURNS bigint
LANGUAGE plpgsql VOLATILE SET search_path FROM CURRENT AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(concurrency_lock_id(key));
    RETURN (SELECT count(*) FROM steps s JOIN runs r ON r.run_id = s.run_id
            WHERE s.concurrency_key = key AND s.status = held_status AND r.status = ANY(open_run_statuses));
END
$$;

-- Wake the dispatchers when an attempt of a concurrency key stops running: a step of that key
-- may now be claimed. Only keyed steps notify (a NOTIFY serialises commits).
CREATE TRIGGER step_key_freed AFTER UPDATE OF status ON {schema}.steps
    FOR EACH ROW WHEN (OLD.status = 'running' AND NEW.status <> 'running' AND OLD.concurrency_key IS NOT NULL)
    EXECUTE FUNCTION {schema}.announce_scheduled_step();
