"""One Lease stream: the protocol of acquire, keepalive and release, as a small state machine.

Everything that can happen to a stream (a client message, the end of the client's messages, a
grant, the lease's deadline passing, the server shutting down) becomes an event in one queue, and
one loop handles them in order. So the state (idle, waiting, holding) is only ever changed by
that loop, and only that loop writes to the stream.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import grpc

from workflowstate.v1 import workflow_state_pb2 as pb

from ..core import errors
from . import convert, validation
from ..leases.manager import Grant, LeaseGone, LeaseManager
from .streams import stream_inputs

MAX_KEY_LENGTH = 1024


def lost(reason: int, message: str) -> pb.LeaseResponse:
    return pb.LeaseResponse(lost=pb.LeaseLost(reason=reason, message=message))


class LeaseSession:
    """The server side of one Lease stream."""

    def __init__(self, manager: LeaseManager, context: grpc.aio.ServicerContext) -> None:
        self._manager = manager
        self._context = context
        self._events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._grant: Grant | None = None
        self._acquiring: asyncio.Task[Grant] | None = None
        self._lost_reason: int | None = None
        self._expiry: asyncio.TimerHandle | None = None
        # Which scheduled deadline is current: a deadline event already queued when a keepalive
        # set a new one must not end the lease.
        self._expiry_generation = 0

    async def run(self) -> None:
        cancelled = False
        with stream_inputs(self._context, self._events, self._manager):
            try:
                while True:
                    kind, value = await self._events.get()
                    if kind == "request":
                        await self._on_request(value)
                    elif kind == "end":
                        return
                    elif kind == "acquired":
                        await self._on_acquired(value)
                    elif kind == "deadline":
                        await self._on_deadline(value)
                    elif kind == "shutdown":
                        await self._on_shutdown()
            except asyncio.CancelledError:
                cancelled = True
                raise
            finally:
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

    async def _on_request(self, request: pb.LeaseRequest) -> None:
        kind = request.WhichOneof("kind")
        if kind == "acquire":
            self._start_acquire(request.acquire)
        elif kind == "keep_alive":
            await self._keep_alive()
        elif kind == "release":
            await self._release()
        else:
            raise errors.InvalidArgument("a LeaseRequest must set acquire, keep_alive or release")

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
        task.add_done_callback(lambda done: self._events.put_nowait(("acquired", done)))
        self._acquiring = task

    def _ttl(self, acquire: pb.LeaseAcquire) -> timedelta:
        if not acquire.HasField("ttl"):
            raise errors.InvalidArgument("acquire.ttl is required")
        ttl = convert.duration_from_proto("acquire.ttl", acquire.ttl)
        maximum = self._manager.settings.max_ttl
        if ttl <= timedelta(0) or ttl > maximum:
            raise errors.InvalidArgument(f"acquire.ttl must be positive and at most {maximum}, got {ttl}")
        return ttl

    async def _keep_alive(self) -> None:
        if self._grant is None:
            if self._lost_reason is not None:
                await self._write(lost(self._lost_reason, "the lease was already lost; acquire it again"))
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
        await self._write(pb.LeaseResponse(kept_alive=pb.LeaseKeptAlive(expire_time=convert.timestamp(grant.expire_time))))

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
        await self._write(pb.LeaseResponse(released=pb.LeaseReleased()))

    # Other events.

    async def _on_acquired(self, task: asyncio.Task[Grant]) -> None:
        if task is not self._acquiring:
            return  # a release already settled it
        self._acquiring = None
        grant = task.result()  # a DeadlineExceeded or other error ends the stream with its code
        self._grant = grant
        self._schedule_expiry(grant)
        granted = pb.LeaseGranted(key=grant.key, fencing_token=grant.fencing_token, expire_time=convert.timestamp(grant.expire_time))
        await self._write(pb.LeaseResponse(granted=granted))

    async def _on_deadline(self, timer: tuple[Grant, int]) -> None:
        grant, generation = timer
        if grant is not self._grant or generation != self._expiry_generation:
            return  # released meanwhile, or a keepalive queued before this event set a new deadline
        # No keepalive within the ttl: give the key to the next waiter now, and say so.
        await self._manager.release(grant)
        await self._lose(pb.LEASE_LOST_REASON_EXPIRED, f"lease {grant.key!r} expired: no keepalive within its ttl of {grant.ttl}")

    async def _on_shutdown(self) -> None:
        if self._acquiring:
            self._acquiring.cancel()
            self._acquiring = None
        if self._grant:
            grant = self._grant
            await self._manager.release(grant)
            await self._lose(pb.LEASE_LOST_REASON_SERVER_SHUTDOWN, "the server is shutting down; acquire the lease through another server")
        raise errors.ShuttingDown("the server is shutting down; reconnect to acquire leases")

    # Helpers.

    async def _lose(self, reason: int, message: str) -> None:
        self._grant = None
        self._lost_reason = reason
        self._cancel_expiry()
        await self._write(lost(reason, message))

    def _schedule_expiry(self, grant: Grant) -> None:
        self._cancel_expiry()
        self._expiry_generation += 1
        loop = asyncio.get_running_loop()
        self._expiry = loop.call_at(grant.deadline, self._events.put_nowait, ("deadline", (grant, self._expiry_generation)))

    def _cancel_expiry(self) -> None:
        if self._expiry:
            self._expiry.cancel()
            self._expiry = None

    async def _write(self, response: pb.LeaseResponse) -> None:
        await self._context.write(response)
