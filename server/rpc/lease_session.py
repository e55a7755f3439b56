"""One Lease stream: the protocol of acquire, keepalive and release, as a small state machine.

Everything that can happen to a stream (a client message, the end of the client's messages, a
grant, the lease's deadline passing, the server shutting down) becomes an input in the session's
inbox (streams.py), and one loop handles them in order. So the state (idle, waiting, holding) is
only ever changed by that loop, and only that loop writes to the stream.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta

import grpc

from workflowstate import v1 as pb

from ..core import errors
from ..leases.manager import Grant, LeaseGone, LeaseManager
from . import convert, validation
from .streams import StreamSession

MAX_KEY_LENGTH = 1024


def lost(reason: pb.LeaseLostReason.ValueType, message: str) -> pb.LeaseResponse:
    return pb.LeaseResponse(lost=pb.LeaseLost(reason=reason, message=message))


@dataclass(frozen=True)
class AcquireSettled:
    """The acquire started by the stream finished: granted, failed or cancelled."""

    task: asyncio.Task[Grant]


@dataclass(frozen=True)
class DeadlinePassed:
    """The held lease's ttl passed without a keepalive (unless generation is no longer current)."""

    grant: Grant
    generation: int


class LeaseSession(StreamSession[pb.LeaseRequest, pb.LeaseResponse]):
    """The server side of one Lease stream."""

    def __init__(self, manager: LeaseManager, context: grpc.aio.ServicerContext[pb.LeaseRequest, pb.LeaseResponse]) -> None:
        super().__init__(context, manager)
        self._manager = manager
        self._grant: Grant | None = None
        self._acquiring: asyncio.Task[Grant] | None = None
        self._lost_reason: pb.LeaseLostReason.ValueType | None = None
        self._expiry: asyncio.TimerHandle | None = None
        # Which scheduled deadline is current: a DeadlinePassed already queued when a keepalive
        # set a new one must not end the lease.
        self._expiry_generation = 0

    async def on_signal(self, signal: object) -> None:
        match signal:
            case AcquireSettled(task=task):
                await self._on_acquired(task)
            case DeadlinePassed(grant=grant, generation=generation):
                await self._on_deadline(grant, generation)

    async def close(self, *, cancelled: bool) -> None:
        self._cancel_expiry()
        if self._acquiring:
            self._acquiring.cancel()  # the acquire cleans up after itself
        if self._grant:
            # The stream ended while holding: release at once, not at the ttl. Before the
            # stream's status is sent when it ends with an error; in the background when
            # the stream was cancelled (client gone), since this task may not await then.
            if cancelled:
                self._manager.release_in_background(self._grant)
            else:
                await self._manager.release_quietly(self._grant)

    # Client messages.

    async def on_message(self, request: pb.LeaseRequest) -> None:
        kind = request.WhichOneof("kind")
        if kind == "acquire":
            self._start_acquire(request.acquire)
        elif kind == "keep_alive":
            await self._keep_alive()
        elif kind == "release":
            await self._release()
        else:
            raise errors.InvalidArgument("a LeaseRequest must set acquire, keep_alive or release", field=None)

    def _start_acquire(self, acquire: pb.LeaseAcquire) -> None:
        if self._grant or self._acquiring:
            raise errors.FailedPrecondition("this stream already holds or waits for a lease; release it first")
        key = validation.check_name("acquire.key", acquire.key, max_length=MAX_KEY_LENGTH)
        holder = validation.check_name("acquire.holder", acquire.holder, required=False)
        ttl = self._ttl(acquire)
        wait_timeout = None
        if acquire.HasField("wait_timeout"):
            wait_timeout = convert.duration_from_proto("acquire.wait_timeout", acquire.wait_timeout)
            validation.check_duration("acquire.wait_timeout", wait_timeout)
        self._lost_reason = None
        task = asyncio.get_running_loop().create_task(self._manager.acquire(key, ttl, holder, wait_timeout))
        task.add_done_callback(lambda done: self.inbox.signal(AcquireSettled(done)))
        self._acquiring = task

    def _ttl(self, acquire: pb.LeaseAcquire) -> timedelta:
        if not acquire.HasField("ttl"):
            raise errors.InvalidArgument("acquire.ttl is required", field="acquire.ttl")
        ttl = convert.duration_from_proto("acquire.ttl", acquire.ttl)
        maximum = self._manager.settings.max_ttl
        if ttl <= timedelta(0) or ttl > maximum:
            raise errors.InvalidArgument(f"acquire.ttl must be positive and at most {maximum}, got {ttl}", field="acquire.ttl", limit=maximum)
        return ttl

    async def _keep_alive(self) -> None:
        if self._grant is None:
            if self._lost_reason is not None:
                await self.write(lost(self._lost_reason, "the lease was already lost; acquire it again"))
                return
            raise errors.FailedPrecondition("no lease to keep alive on this stream; acquire one first")
        grant = self._grant
        try:
            await self._manager.keep_alive(grant)
        except LeaseGone as gone:
            reason = pb.LEASE_LOST_REASON_TAKEN_OVER if gone.taken_over else pb.LEASE_LOST_REASON_EXPIRED
            await self._lose(reason, f"lease {grant.key!r} {gone} before the keepalive arrived")
            return
        self._schedule_expiry(grant)
        await self.write(pb.LeaseResponse(kept_alive=pb.LeaseKeptAlive(expire_time=convert.timestamp(grant.expire_time))))

    async def _release(self) -> None:
        if self._acquiring:
            task, self._acquiring = self._acquiring, None
            task.cancel()
            # asyncio.wait, not await task: a cancel of this session must still reach us.
            await asyncio.wait([task])
            if not task.cancelled() and task.exception() is None:
                self._grant = task.result()  # granted just before the cancel took effect
        if self._grant:
            grant, self._grant = self._grant, None
            self._cancel_expiry()
            await self._manager.release(grant)
        await self.write(pb.LeaseResponse(released=pb.LeaseReleased()))

    # Other events.

    async def _on_acquired(self, task: asyncio.Task[Grant]) -> None:
        if task is not self._acquiring:
            return  # a release already settled it
        self._acquiring = None
        grant = task.result()  # a DeadlineExceeded or other error ends the stream with its code
        self._grant = grant
        self._schedule_expiry(grant)
        granted = pb.LeaseGranted(key=grant.key, fencing_token=grant.fencing_token, expire_time=convert.timestamp(grant.expire_time))
        await self.write(pb.LeaseResponse(granted=granted))

    async def _on_deadline(self, grant: Grant, generation: int) -> None:
        if grant is not self._grant or generation != self._expiry_generation:
            return  # released meanwhile, or a keepalive queued before this event set a new deadline
        # No keepalive within the ttl: give the key to the next waiter now, and say so.
        await self._manager.release(grant)
        await self._lose(pb.LEASE_LOST_REASON_EXPIRED, f"lease {grant.key!r} expired: no keepalive within its ttl of {grant.ttl}")

    async def on_shutdown(self) -> None:
        if self._acquiring:
            self._acquiring.cancel()
            self._acquiring = None
        if self._grant:
            grant = self._grant
            await self._manager.release(grant)
            await self._lose(pb.LEASE_LOST_REASON_SERVER_SHUTDOWN, "the server is shutting down; acquire the lease through another server")
        raise errors.ShuttingDown("the server is shutting down; reconnect to acquire leases")

    # Helpers.

    async def _lose(self, reason: pb.LeaseLostReason.ValueType, message: str) -> None:
        self._grant = None
        self._lost_reason = reason
        self._cancel_expiry()
        await self.write(lost(reason, message))

    def _schedule_expiry(self, grant: Grant) -> None:
        self._cancel_expiry()
        self._expiry_generation += 1
        loop = asyncio.get_running_loop()
        self._expiry = loop.call_at(grant.deadline, self.inbox.signal, DeadlinePassed(grant, self._expiry_generation))

    def _cancel_expiry(self) -> None:
        if self._expiry:
            self._expiry.cancel()
            self._expiry = None
