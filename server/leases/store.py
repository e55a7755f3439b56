"""The SQL side of leases: every lease statement.

A lease is a row of the leases table (see db/schema.sql); each change is one
statement of leases.sql, decided by the database, so servers sharing the database never
grant one key twice. Acquires, keepalives, releases and reads are set-based: concurrent ones
share one statement and one commit (db/coalescer.py), each answered with its own row. Releases NOTIFY a channel of the schema, which every server LISTENs to
(db/notifications.py).
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import cast

from ..db.database import Database
from ..db.notifications import lease_channel
from .rows import AcquireRow, HeldLeaseRow, KeepAliveRow, LeaseRow, ReleaseRow
from .set_inputs import AcquireInput, GetInput, KeepAliveInput, ReleaseInput


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
        self._sql = database.statements(__package__, "leases.sql")
        self.server_id = server_id
        self.channel = lease_channel(database.schema)
        self._waiter_ttl = waiter_ttl
        # The set-based statements: the operations of many streams and calls share one statement
        # and one commit (db/coalescer.py), each keyed by its lease key.
        self._acquire = self._sql.grouped(
            "lease_acquire",
            params=functools.partial(AcquireInput.params, server_id=server_id, waiter_ttl=waiter_ttl),
            key=lambda item: item.key,
            size=lambda item: item.size,
        )
        self._keep_alive = self._sql.grouped(
            "lease_keep_alive", params=KeepAliveInput.params, key=lambda item: item.key, size=lambda item: item.size
        )
        self._release = self._sql.grouped(
            "lease_release",
            params=functools.partial(ReleaseInput.params, channel=self.channel),
            key=lambda item: item.key,
            size=lambda item: item.size,
        )
        self._get = self._sql.grouped("lease_get", params=GetInput.params, key=lambda item: item.key, size=lambda item: item.size)

    async def try_acquire(
        self, key: str, owner_id: uuid.UUID, holder: str, ttl: timedelta, *, ticket: int | None, enqueue: bool
    ) -> AcquireTry:
        row = cast(AcquireRow, await self._acquire.run(AcquireInput(key, owner_id, holder, ttl, ticket, enqueue)))
        return AcquireTry(row["granted"], row["fencing_token"], row["expire_time"], row["ticket"])

    async def keep_alive(self, key: str, owner_id: uuid.UUID, token: int, ttl: timedelta) -> tuple[datetime | None, int | None]:
        """Extend the lease; return (new expiry or None when it is gone, the key's current token)."""
        row = cast(KeepAliveRow, await self._keep_alive.run(KeepAliveInput(key, owner_id, token, ttl)))
        return row["expire_time"], row["current_token"]

    async def release(self, key: str, owner_id: uuid.UUID, token: int) -> bool:
        """Free the lease and wake its waiters; False when this owner no longer held it."""
        row = cast(ReleaseRow, await self._release.run(ReleaseInput(key, owner_id, token)))
        return row["released"]

    async def abandon(self, key: str, owner_id: uuid.UUID) -> None:
        """Undo whatever an interrupted acquire did: leave the queue, free a lease it may have got."""
        await self._sql.fetch_one("lease_abandon", {"key": key, "owner_id": owner_id, "channel": self.channel})

    async def get(self, key: str) -> LeaseRow | None:
        """The live lease on key; None when nobody holds it."""
        row = cast(LeaseRow, await self._get.run(GetInput(key)))
        return row if row["key"] is not None else None

    async def held(self, prefix: str | None, after_key: str | None, limit: int) -> list[HeldLeaseRow]:
        """Up to `limit` leases held now, by key, of keys starting with prefix, past after_key."""
        rows = await self._sql.fetch_all("leases_held", {"prefix": prefix, "after_key": after_key, "limit": limit})
        return cast(list[HeldLeaseRow], rows)

    async def refresh_waiters(self, tickets: list[int]) -> None:
        """Keep these waiters' places in the queue for another waiter_ttl (only these: a row of a
        waiter that is gone must expire even while this server has other waiters)."""
        await self._sql.fetch_one("lease_waiters_refresh", {"tickets": tickets, "waiter_ttl": self._waiter_ttl})


__all__ = ["AcquireTry", "LeaseStore"]
