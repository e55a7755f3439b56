"""The SQL side of leases: every lease statement.

A lease is a row of the leases table (see db/schema.sql); each change is one
statement of leases.sql, decided by the database, so servers sharing the database never
grant one key twice. Acquires, keepalives, releases and reads are set-based: concurrent ones
share one statement and one commit (db/coalescer.py), each answered with its own row. Releases NOTIFY a channel of the schema, which every server LISTENs to
(db/notifications.py).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..db.database import Database
from ..db.notifications import lease_channel
from .rows import AcquireRow, HeldLeaseRow, KeepAliveRow, LeaseRow, NotifiedRow, RefreshedRow, ReleaseRow
from .set_inputs import AbandonInput, AcquireInput, GetInput, HeldInput, KeepAliveInput, RefreshWaitersInput, ReleaseInput


@dataclass(frozen=True)
class AcquireTry:
    """What one try to take a lease found."""

    granted: bool
    # The granted token, or the key's latest token (None for a key never leased).
    fencing_token: int | None
    # The granted expiry, or the current holder's (None when unknown or free).
    expire_time: datetime | None
    # The waiter's place in the queue, when this try queued it.
    ticket: int | None


class LeaseStore:
    """Lease statements of leases.sql."""

    def __init__(self, database: Database, *, server_id: uuid.UUID, waiter_ttl: timedelta) -> None:
        sql = database.statements(__package__, "leases.sql")
        self.server_id = server_id
        self.channel = lease_channel(database.schema)
        self._waiter_ttl = waiter_ttl
        # The set-based statements: the operations of many streams and calls share one statement
        # and one commit (db/coalescer.py), each keyed by its lease key.
        self._acquire = sql.grouped("lease_acquire", AcquireInput, AcquireRow, server_id=server_id, waiter_ttl=waiter_ttl)
        self._keep_alive = sql.grouped("lease_keep_alive", KeepAliveInput, KeepAliveRow)
        self._release = sql.grouped("lease_release", ReleaseInput, ReleaseRow, channel=self.channel)
        self._get = sql.grouped("lease_get", GetInput, LeaseRow)
        self._abandon = sql.query("lease_abandon", AbandonInput, NotifiedRow)
        self._held = sql.query("leases_held", HeldInput, HeldLeaseRow)
        self._refresh_waiters = sql.query("lease_waiters_refresh", RefreshWaitersInput, RefreshedRow)

    async def try_acquire(
        self, key: str, owner_id: uuid.UUID, holder: str, ttl: timedelta, *, ticket: int | None, enqueue: bool
    ) -> AcquireTry:
        row = await self._acquire.run(AcquireInput(key, owner_id, holder, ttl, ticket, enqueue))
        assert row is not None  # run alone when its lease is locked elsewhere: every input gets its row
        return AcquireTry(row["granted"], row["fencing_token"], row["expire_time"], row["ticket"])

    async def keep_alive(self, key: str, owner_id: uuid.UUID, token: int, ttl: timedelta) -> tuple[datetime | None, int | None]:
        """Extend the lease; return (new expiry or None when it is gone, the key's current token)."""
        row = await self._keep_alive.run(KeepAliveInput(key, owner_id, token, ttl))
        assert row is not None  # as above
        return row["expire_time"], row["current_token"]

    async def release(self, key: str, owner_id: uuid.UUID, token: int) -> bool:
        """Free the lease and wake its waiters; False when this owner no longer held it."""
        row = await self._release.run(ReleaseInput(key, owner_id, token))
        assert row is not None  # as above
        return row["released"]

    async def abandon(self, key: str, owner_id: uuid.UUID) -> None:
        """Undo whatever an interrupted acquire did: leave the queue, free a lease it may have got."""
        await self._abandon.one(AbandonInput(key, owner_id, self.channel))

    async def get(self, key: str) -> HeldLeaseRow | None:
        """The live lease on key; None when nobody holds it."""
        return _held(await self._get.run(GetInput(key)))

    async def held(self, prefix: str | None, after_key: str | None, limit: int) -> list[HeldLeaseRow]:
        """Up to `limit` leases held now, by key, of keys starting with prefix, past after_key."""
        return await self._held.all(HeldInput(prefix, after_key, limit))

    async def refresh_waiters(self, tickets: list[int]) -> None:
        """Keep these waiters' places in the queue for another waiter_ttl (only these: a row of a
        waiter that is gone must expire even while this server has other waiters)."""
        await self._refresh_waiters.one(RefreshWaitersInput(tickets, self._waiter_ttl))


def _held(row: LeaseRow | None) -> HeldLeaseRow | None:
    """lease_get's row as the lease held on its key; None when nobody holds it (its columns NULL)."""
    if row is None or row["key"] is None or row["fencing_token"] is None or row["acquire_time"] is None or row["expire_time"] is None:
        return None
    return HeldLeaseRow(
        key=row["key"], holder=row["holder"], fencing_token=row["fencing_token"], acquire_time=row["acquire_time"], expire_time=row["expire_time"]
    )


__all__ = ["AcquireTry", "LeaseStore"]
