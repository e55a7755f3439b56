"""The SQL side of leases: every lease statement, and the connection that listens for releases.

A lease is a row of the leases table (see sql/migrations/0002_leases.sql); each change is one
statement of sql/queries.sql, decided by the database, so servers sharing the database never
grant one key twice. Releases NOTIFY a channel of the schema, which every server LISTENs to.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
import psycopg
from psycopg import sql

from .store import Row, Store

log = logging.getLogger("workflowstate.server.leases")


def notify_channel(schema: str) -> str:
    """The LISTEN/NOTIFY channel of a schema's leases (a short, safe identifier for any schema)."""
    return "workflowstate_leases_" + hashlib.sha256(schema.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Attempt:
    """What one try to take a lease found."""

    granted: bool
    # The granted token, or the key's latest token (None for a key never leased).
    fencing_token: int | None
    # The granted expiry, or the current holder's (None when unknown or free).
    expire_time: datetime | None
    # The waiter's place in the queue, when this try queued it.
    ticket: int | None


class LeaseStore:
    """Lease statements over the store's pool."""

    def __init__(self, store: Store, *, server_id: uuid.UUID, waiter_ttl: timedelta) -> None:
        self._store = store
        self.server_id = server_id
        self.channel = notify_channel(store.schema)
        self._waiter_ttl = waiter_ttl

    async def try_acquire(
        self, key: str, owner_id: uuid.UUID, holder: str, ttl: timedelta, *, ticket: int | None, enqueue: bool
    ) -> Attempt:
        row = await self._store.fetch_one(
            "lease_acquire",
            {
                "key": key,
                "owner_id": owner_id,
                "holder": holder,
                "ttl": ttl,
                "ticket": ticket,
                "enqueue": enqueue,
                "server_id": self.server_id,
                "waiter_ttl": self._waiter_ttl,
            },
        )
        assert row is not None  # the statement always returns one row
        return Attempt(row["granted"], row["fencing_token"], row["expire_time"], row["ticket"])

    async def keep_alive(self, key: str, owner_id: uuid.UUID, token: int, ttl: timedelta) -> tuple[datetime | None, int | None]:
        """Extend the lease; return (new expiry or None when it is gone, the key's current token)."""
        row = await self._store.fetch_one(
            "lease_keep_alive", {"key": key, "owner_id": owner_id, "fencing_token": token, "ttl": ttl}
        )
        return (row["expire_time"], row["current_token"]) if row else (None, None)

    async def release(self, key: str, owner_id: uuid.UUID, token: int) -> bool:
        """Free the lease and wake its waiters; False when this owner no longer held it."""
        row = await self._store.fetch_one(
            "lease_release", {"key": key, "owner_id": owner_id, "fencing_token": token, "channel": self.channel}
        )
        return row is not None

    async def abandon(self, key: str, owner_id: uuid.UUID) -> None:
        """Undo whatever an interrupted acquire did: leave the queue, free a lease it may have got."""
        await self._store.fetch_one("lease_abandon", {"key": key, "owner_id": owner_id, "channel": self.channel})

    async def get(self, key: str) -> Row | None:
        return await self._store.fetch_one("lease_get", {"key": key})

    async def refresh_waiters(self) -> None:
        await self._store.fetch_one("lease_waiters_refresh", {"server_id": self.server_id, "waiter_ttl": self._waiter_ttl})

    async def listen(self, on_release: Callable[[str], None], on_reconnect: Callable[[], None]) -> None:
        """Call on_release(key) for every release on any server, forever; reconnect when the
        connection drops (on_reconnect then, since releases may have been missed)."""
        backoff = 0.1
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(self._store.database_url, autocommit=True) as conn:
                    await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
                    on_reconnect()
                    backoff = 0.1
                    # Closed explicitly: the generator holds the connection's lock until it
                    # ends, and closing the connection while it is suspended would wait forever.
                    notices = conn.notifies()
                    try:
                        async for notice in notices:
                            on_release(notice.payload)
                    finally:
                        await notices.aclose()
            except (psycopg.OperationalError, OSError) as err:
                log.warning("lease listener lost its connection; waiters poll until it is back", extra={"reason": str(err)})
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)


__all__ = ["Attempt", "LeaseStore", "notify_channel"]
