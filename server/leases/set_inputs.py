"""The inputs of the lease statements of leases.sql: one dataclass per statement.

Each set-based one says which row it writes (`key`: the lease key, so two operations on one key
never share a statement) and how many bytes it carries (`size`: a group's bound); its fields are
the statement's array parameters, one array per field in the inputs' order (the ordinal of each
result row: db/params.py). What is the same for every input of a store (its server id, its
waiters' ttl, its NOTIFY channel) the store binds when it takes the statement.
"""

from __future__ import annotations

import uuid
from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import timedelta

from ..db.params import named
from ..state.set_inputs import BASE_BYTES


@dataclass(frozen=True)
class AcquireInput:
    """lease_acquire: one try of one waiter (owner_id) to take the lease on lease_key."""

    lease_key: str = field(metadata=named("key"))
    owner_id: uuid.UUID
    holder: str
    ttl: timedelta
    # The waiter's place in the queue (None: not queued yet, it comes before no one).
    ticket: int | None
    # Whether a try that is not granted queues the waiter (only when it has no ticket yet).
    enqueue: bool

    @property
    def key(self) -> Hashable:
        return self.lease_key

    @property
    def size(self) -> int:
        return BASE_BYTES + len(self.lease_key) + len(self.holder)



@dataclass(frozen=True)
class KeepAliveInput:
    """lease_keep_alive: extend the lease its owner holds under fencing_token by ttl."""

    lease_key: str = field(metadata=named("key"))
    owner_id: uuid.UUID
    fencing_token: int
    ttl: timedelta

    @property
    def key(self) -> Hashable:
        return self.lease_key

    @property
    def size(self) -> int:
        return BASE_BYTES + len(self.lease_key)



@dataclass(frozen=True)
class ReleaseInput:
    """lease_release: free the lease its owner holds under fencing_token."""

    lease_key: str = field(metadata=named("key"))
    owner_id: uuid.UUID
    fencing_token: int

    @property
    def key(self) -> Hashable:
        return self.lease_key

    @property
    def size(self) -> int:
        return BASE_BYTES + len(self.lease_key)



@dataclass(frozen=True, eq=False)
class GetInput:
    """lease_get: the live lease on lease_key. A read locks nothing, so reads of one key may share a
    group: each is its own key (compared by identity)."""

    lease_key: str = field(metadata=named("key"))

    @property
    def key(self) -> Hashable:
        return self

    @property
    def size(self) -> int:
        return BASE_BYTES + len(self.lease_key)



@dataclass(frozen=True)
class AbandonInput:
    """lease_abandon: undo whatever an interrupted acquire of owner_id on lease_key did (NOTIFY on channel)."""

    lease_key: str = field(metadata=named("key"))
    owner_id: uuid.UUID
    channel: str


@dataclass(frozen=True)
class RefreshWaitersInput:
    """lease_waiters_refresh: these waiters kept in the queue for another waiter_ttl."""

    tickets: list[int]
    waiter_ttl: timedelta


@dataclass(frozen=True)
class HeldInput:
    """leases_held: up to limit leases held now, by key, of keys starting with prefix (None: any), past after_key."""

    prefix: str | None
    after_key: str | None
    limit: int


__all__ = ["AbandonInput", "AcquireInput", "GetInput", "HeldInput", "KeepAliveInput", "RefreshWaitersInput", "ReleaseInput"]
