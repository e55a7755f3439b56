"""The inputs of the set-based lease statements of leases.sql: one dataclass per statement.

Each says which row it writes (`key`: the lease key, so two operations on one key never share a
statement), how many bytes it carries (`size`: a group's bound), and how a group of them becomes
the statement's array parameters (`params`, one array per column in the inputs' order: the
ordinal of each result row; and `count`, how many: see leases.sql for why). What is the same for every input of a store (its server id, its
waiters' ttl, its NOTIFY channel) is bound to `params` by the store.
"""

from __future__ import annotations

import uuid
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from ..state.set_inputs import BASE_BYTES


@dataclass(frozen=True)
class AcquireInput:
    """lease_acquire: one try of one waiter (owner_id) to take the lease on lease_key."""

    lease_key: str
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

    @staticmethod
    def params(inputs: Sequence[AcquireInput], *, server_id: uuid.UUID, waiter_ttl: timedelta) -> dict[str, Any]:
        return {
            "count": len(inputs),
            "key": [item.lease_key for item in inputs],
            "owner_id": [item.owner_id for item in inputs],
            "holder": [item.holder for item in inputs],
            "ttl": [item.ttl for item in inputs],
            "ticket": [item.ticket for item in inputs],
            "enqueue": [item.enqueue for item in inputs],
            "server_id": server_id,
            "waiter_ttl": waiter_ttl,
        }


@dataclass(frozen=True)
class KeepAliveInput:
    """lease_keep_alive: extend the lease its owner holds under fencing_token by ttl."""

    lease_key: str
    owner_id: uuid.UUID
    fencing_token: int
    ttl: timedelta

    @property
    def key(self) -> Hashable:
        return self.lease_key

    @property
    def size(self) -> int:
        return BASE_BYTES + len(self.lease_key)

    @staticmethod
    def params(inputs: Sequence[KeepAliveInput]) -> dict[str, Any]:
        return {
            "count": len(inputs),
            "key": [item.lease_key for item in inputs],
            "owner_id": [item.owner_id for item in inputs],
            "fencing_token": [item.fencing_token for item in inputs],
            "ttl": [item.ttl for item in inputs],
        }


@dataclass(frozen=True)
class ReleaseInput:
    """lease_release: free the lease its owner holds under fencing_token."""

    lease_key: str
    owner_id: uuid.UUID
    fencing_token: int

    @property
    def key(self) -> Hashable:
        return self.lease_key

    @property
    def size(self) -> int:
        return BASE_BYTES + len(self.lease_key)

    @staticmethod
    def params(inputs: Sequence[ReleaseInput], *, channel: str) -> dict[str, Any]:
        return {
            "count": len(inputs),
            "key": [item.lease_key for item in inputs],
            "owner_id": [item.owner_id for item in inputs],
            "fencing_token": [item.fencing_token for item in inputs],
            "channel": channel,
        }


@dataclass(frozen=True, eq=False)
class GetInput:
    """lease_get: the live lease on lease_key. A read locks nothing, so reads of one key may share a
    group: each is its own key (compared by identity)."""

    lease_key: str

    @property
    def key(self) -> Hashable:
        return self

    @property
    def size(self) -> int:
        return BASE_BYTES + len(self.lease_key)

    @staticmethod
    def params(inputs: Sequence[GetInput]) -> dict[str, Any]:
        return {"count": len(inputs), "key": [item.lease_key for item in inputs]}


__all__ = ["AcquireInput", "GetInput", "KeepAliveInput", "ReleaseInput"]
