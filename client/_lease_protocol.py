"""The client's side of the Lease stream, without I/O, shared by the sync and the async lease.

``LeaseProtocol`` decides everything: which message to send next, what a
response means, when a keepalive is due, when the lease counts as lost. The
two drivers (``_lease_sync`` with threads, ``_lease_async`` with tasks) only
move messages and time: they send what it builds, hand it every response, wake
it when it asks to be woken, and publish what it decided on their own kind of
event. It is not thread-safe; the sync driver calls it under a lock.
"""

from __future__ import annotations

import collections
import enum
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import grpc

from workflowstate import v1 as pb

from ._convert import duration_to_proto, expire_time_from_proto, lease_lost_reason_from_proto
from ._errors import WorkflowStateError
from ._types import LeaseLostReason

KEEPALIVES_PER_TTL = 3
"""Keepalives sent per ttl: at a third of it, one can be slow or lost and the next is in time."""

RELEASE_TIMEOUT = timedelta(seconds=5)
"""The longest leaving a lease waits for the server; after it the stream is cancelled."""


def run_lock_key(run_id: str) -> str:
    """The conventional lease key of a run, which unkeyed fenced writes of the run check."""
    return f"run:{run_id}"


def step_lock_key(run_id: str, step_name: str) -> str:
    """The conventional lease key of one step of a run."""
    return f"step:{run_id}:{step_name}"


@dataclass(frozen=True)
class LeaseTerms:
    """What a holder asks for: the arguments of ``client.lease``."""

    key: str
    """The key to lock."""

    ttl: timedelta
    """How long the lease lives without a keepalive."""

    wait_timeout: timedelta | None
    """How long to wait for a held key; zero tries once, ``None`` waits for as long as it takes."""

    holder: str
    """Free text naming the holder, shown by GetLease."""

    def acquire_request(self) -> pb.LeaseRequest:
        """The first message of the stream."""
        acquire = pb.LeaseAcquire(key=self.key, ttl=duration_to_proto(self.ttl), holder=self.holder)
        # Unset and zero differ: unset waits forever, zero tries once.
        if self.wait_timeout is not None:
            acquire.wait_timeout.CopyFrom(duration_to_proto(self.wait_timeout))
        return pb.LeaseRequest(acquire=acquire)


class _Phase(enum.Enum):
    WAITING = enum.auto()
    """The acquire is sent; no grant yet."""

    HELD = enum.auto()
    """Granted, and not yet released (it may have been lost by the client's own deadline)."""

    RELEASING = enum.auto()
    """The release is sent; the answer has not arrived."""

    ENDED = enum.auto()
    """The server has nothing more to say about this lease: released, lost, or the stream ended."""


_KEEP_ALIVE = pb.LeaseRequest(keep_alive=pb.LeaseKeepAlive())
_RELEASE = pb.LeaseRequest(release=pb.LeaseRelease())


class LeaseProtocol:
    """The state of one lease on one Lease stream, from the acquire to the end of the stream.

    The client's own deadline is conservative: an expiry the server reports
    counts from when the client *sent* the keepalive it answers (the server
    cannot have extended the lease earlier), plus the ttl, on the monotonic
    clock; the wall-clock ``expire_time`` is only reported, never compared,
    so clock skew cannot stretch it. The grant alone is the exception: it
    answers an acquire that may have waited, so it counts from its arrival,
    which can be late by one network trip until the first keepalive is answered.
    """

    def __init__(self, terms: LeaseTerms, clock: Callable[[], float] = time.monotonic) -> None:
        self.terms = terms
        self._clock = clock
        self._phase = _Phase.WAITING
        self._interval = terms.ttl.total_seconds() / KEEPALIVES_PER_TTL
        # Responses come in request order, so the oldest unanswered
        # keepalive is the one a kept_alive answers.
        self._keepalives_sent: collections.deque[float] = collections.deque()
        self._deadline = 0.0
        self._next_keepalive = 0.0

        self.fencing_token = 0
        """The token of the grant; 0 until granted (the server never grants 0)."""

        self.expire_time: datetime | None = None
        """The last expiry the server reported; ``None`` until granted."""

        self.lost_reason: LeaseLostReason | None = None
        """Why the lease was lost, the first reason only; ``None`` while it is not."""

    @property
    def finished(self) -> bool:
        """True once the server will say nothing more about this lease."""
        return self._phase is _Phase.ENDED

    # --- what to send ----------------------------------------------------------

    def acquire(self) -> pb.LeaseRequest:
        """The acquire message; send it first."""
        return self.terms.acquire_request()

    def tick(self) -> pb.LeaseRequest | None:
        """Called when :meth:`seconds_to_next_tick` has passed: the keepalive to send, if due.

        When the client's deadline has passed instead, the lease is lost and
        no keepalive is sent any more.
        """
        if self._phase is not _Phase.HELD or self.lost_reason is not None:
            return None
        now = self._clock()
        if now >= self._deadline:
            self._lose(LeaseLostReason.DEADLINE_PASSED)
            return None
        if now < self._next_keepalive:
            return None
        self._keepalives_sent.append(now)
        self._next_keepalive = now + self._interval
        return _KEEP_ALIVE

    def seconds_to_next_tick(self) -> float | None:
        """How long the driver may sleep before calling :meth:`tick`; ``None``: never again."""
        if self._phase is not _Phase.HELD or self.lost_reason is not None:
            return None
        return max(0.0, min(self._next_keepalive, self._deadline) - self._clock())

    def release(self) -> pb.LeaseRequest | None:
        """The release message to send when leaving, or ``None`` when there is nothing to release.

        After a ``lost`` from the server, or once the stream ended, the server
        holds nothing for this stream; the driver just ends the stream.
        """
        if self._phase is not _Phase.HELD:
            return None
        self._phase = _Phase.RELEASING
        return _RELEASE

    # --- what was received -----------------------------------------------------

    def granted(self, response: pb.LeaseResponse | None) -> None:
        """Read the first response, which must be the grant; ``None`` if the stream ended first.

        Raises WorkflowStateError otherwise: errors of the acquire itself
        (DEADLINE_EXCEEDED, INVALID_ARGUMENT...) end the stream with a status,
        which the driver maps before calling this.
        """
        if response is None or response.WhichOneof("kind") != "granted":
            got = "the end of the stream" if response is None else response.WhichOneof("kind")
            raise WorkflowStateError(
                f"the server answered a lease acquire with {got}, not a grant",
                grpc.StatusCode.UNKNOWN,
            )
        grant = response.granted
        now = self._clock()
        self._phase = _Phase.HELD
        self.fencing_token = grant.fencing_token
        self.expire_time = expire_time_from_proto(grant)
        self._deadline = now + self.terms.ttl.total_seconds()
        self._next_keepalive = now + self._interval

    def receive(self, response: pb.LeaseResponse) -> None:
        """Read one response after the grant."""
        kind = response.WhichOneof("kind")
        if self._phase is _Phase.ENDED:
            return
        if kind == "kept_alive" and self._keepalives_sent:
            sent = self._keepalives_sent.popleft()
            if self._phase is _Phase.HELD and self.lost_reason is None:
                self.expire_time = expire_time_from_proto(response.kept_alive)
                self._deadline = max(self._deadline, sent + self.terms.ttl.total_seconds())
        elif kind == "lost":
            self._phase = _Phase.ENDED
            self._lose(lease_lost_reason_from_proto(response.lost.reason))
        elif kind == "released" and self._phase is _Phase.RELEASING:
            self._phase = _Phase.ENDED
        else:
            # A grant while holding, a release nobody asked for, an answer to
            # no keepalive, a kind newer than this client: the stream can no
            # longer be trusted to describe the lease. Ending it releases it.
            self.stream_ended()

    def stream_ended(self) -> None:
        """The stream ended, failed or was cancelled: a lease still held is lost."""
        if self._phase is _Phase.HELD:
            self._lose(LeaseLostReason.STREAM_BROKEN)
        self._phase = _Phase.ENDED

    def _lose(self, reason: LeaseLostReason) -> None:
        if self.lost_reason is None:
            self.lost_reason = reason
