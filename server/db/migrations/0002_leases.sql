-- 0002: leases with fencing tokens, the queue of their waiters, and fenced writes.

-- One row per key ever leased. The row stays when the lease is free (owner_id NULL), so the
-- fencing token of a key only ever grows, across servers and restarts.
CREATE TABLE {schema}.leases (
    key           text PRIMARY KEY,
    -- The last token granted on this key.
    fencing_token bigint NOT NULL,
    -- The lease stream that holds the key; NULL when free.
    owner_id      uuid,
    holder        text,
    acquire_time  timestamptz,
    -- A lease past its expire_time is free, whatever owner_id says.
    expire_time   timestamptz
);

-- Streams waiting for a held key, served in ticket order across all servers. A server keeps
-- its waiters' expire_time in the future while they wait; rows of a server that died expire
-- and stop holding their place.
CREATE TABLE {schema}.lease_waiters (
    ticket      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key         text NOT NULL,
    owner_id    uuid NOT NULL,
    server_id   uuid NOT NULL,
    expire_time timestamptz NOT NULL
);
CREATE INDEX lease_waiters_by_key ON {schema}.lease_waiters (key, ticket);
CREATE INDEX lease_waiters_by_server ON {schema}.lease_waiters (server_id);

-- The highest fencing token that wrote each guarded row (NULL: never written under a lease).
ALTER TABLE {schema}.runs ADD COLUMN fencing_token bigint;
ALTER TABLE {schema}.steps ADD COLUMN fencing_token bigint;
