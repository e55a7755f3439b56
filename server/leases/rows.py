"""The rows the lease statements of leases.sql return (the set-based ones: one per input, with its ordinal)."""

# No `from __future__ import annotations`: TypedDict keys are read from evaluated annotations (state/rows.py says why).
from datetime import datetime
from typing import TypedDict


class AcquireRow(TypedDict):
    """lease_acquire: whether the try was granted, and what the waiter needs next."""

    ordinal: int
    granted: bool
    # The granted token, or the key's latest (None for a key never leased).
    fencing_token: int | None
    # The granted expiry, or the current holder's (None when free).
    expire_time: datetime | None
    # The waiter's place in the queue, when this try queued it.
    ticket: int | None


class KeepAliveRow(TypedDict):
    """lease_keep_alive: the new expiry, or None when the owner no longer holds the lease."""

    ordinal: int
    expire_time: datetime | None
    # The key's latest token (None for a key never leased): another than the owner's says it was taken over.
    current_token: int | None


class ReleaseRow(TypedDict):
    """lease_release: whether the owner still held the lease it freed."""

    ordinal: int
    released: bool
    # The NOTIFY sent to its waiters when it had some (pg_notify returns void: nothing to read).
    woken: None


class LeaseRow(TypedDict):
    """lease_get: the live lease on the key; every column but ordinal None when nobody holds it."""

    ordinal: int
    key: str | None
    holder: str | None
    fencing_token: int | None
    acquire_time: datetime | None
    expire_time: datetime | None


class NotifiedRow(TypedDict):
    """lease_abandon: a lease the abandoned acquire had got, freed, and the NOTIFY to its waiters
    (pg_notify returns void: nothing to read)."""

    pg_notify: None


class RefreshedRow(TypedDict):
    """lease_waiters_refresh: how many waiters kept their place."""

    refreshed: int


class HeldLeaseRow(TypedDict):
    """leases_held: a lease held now (an owner, not expired), with the columns its listing shows."""

    key: str
    holder: str | None
    fencing_token: int
    acquire_time: datetime
    expire_time: datetime


__all__ = ["AcquireRow", "HeldLeaseRow", "KeepAliveRow", "LeaseRow", "NotifiedRow", "RefreshedRow", "ReleaseRow"]
