"""A lease held by the asyncio client: the Lease stream driven by two tasks.

The stream is a ``grpc.aio`` call written and read directly; one task reads
the responses, one sends keepalives when the protocol asks. The caller's task
only acquires and releases. Every decision is ``LeaseProtocol``'s.
"""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING

import grpc
import grpc.aio

from workflowstate import v1 as pb

from ._errors import error_from_rpc
from ._lease_protocol import RELEASE_TIMEOUT, LeaseProtocol, LeaseTerms
from ._lease_view import LeaseView, publish

if TYPE_CHECKING:
    # The async stub class exists only in the type stubs: at run time the
    # one stub class serves both kinds of channel.
    from workflowstate.v1.workflow_state_pb2_grpc import WorkflowStateServiceAsyncStub

    from ._async import AsyncWorkflowStateClient

# What writing to a call that is over raises: its status, or "already finished".
_STREAM_OVER = (grpc.RpcError, asyncio.InvalidStateError)


async def _is_set_within(event: asyncio.Event, timeout: float | None) -> bool:
    """Wait until ``event`` is set, at most ``timeout`` seconds; True if it was set."""
    # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
    # cancellation that arrives just as the event is set.
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        return event.is_set()
    return True


class AsyncLease(LeaseView["AsyncWorkflowStateClient"]):
    """A lease held by ``async with client.lease(key) as lease:``, kept alive in the block.

    ``lost`` is set when the lease is lost while the block runs: the server
    said so (expired, taken over, shutting down), the stream broke, or the
    client heard of no new expiry in time. The block is not interrupted;
    check ``lost`` (or await :meth:`wait_lost`) before work that needs the
    lease, and make writes through :attr:`client`, which the server refuses
    once another holder got the key.
    """

    def __init__(self, protocol: LeaseProtocol, client: AsyncWorkflowStateClient) -> None:
        super().__init__(protocol, client)
        self.lost = asyncio.Event()
        """Set once the lease is lost; never cleared."""

    async def wait_lost(self, timeout: float | None = None) -> bool:
        """Wait until the lease is lost or ``timeout`` seconds pass; True if it was lost."""
        return await _is_set_within(self.lost, timeout)


class _LeaseStream:
    """One Lease stream holding one lease, from acquire to release."""

    def __init__(
        self,
        stub: WorkflowStateServiceAsyncStub,
        terms: LeaseTerms,
        client: AsyncWorkflowStateClient,
    ) -> None:
        self._stub = stub
        self._client = client
        self._protocol = LeaseProtocol(terms)
        self._finished = asyncio.Event()
        self._stopping = asyncio.Event()
        # Set by acquire(), before the tasks that use them start.
        self._call: grpc.aio.StreamStreamCall[pb.LeaseRequest, pb.LeaseResponse]
        self._lease: AsyncLease
        self._reader: asyncio.Task[None]
        self._keeper: asyncio.Task[None]

    async def acquire(self) -> AsyncLease:
        """Send the acquire and wait until granted; raise the client's error when refused."""
        call = self._stub.Lease()
        try:
            try:
                await call.write(self._protocol.acquire())
                first = await call.read()
            except grpc.RpcError as err:
                raise error_from_rpc(err) from err
            # Not a response means grpc.aio.EOF: the stream ended without one.
            self._protocol.granted(first if isinstance(first, pb.LeaseResponse) else None)
        except BaseException:
            # Refused, cancelled or a surprise: end the stream, which also
            # stops the server's waiting.
            call.cancel()
            raise
        self._call = call
        self._lease = AsyncLease(self._protocol, self._client)
        key = self._protocol.terms.key
        self._reader = asyncio.create_task(self._read(), name=f"lease-reader {key}")
        self._keeper = asyncio.create_task(self._keep_alive(), name=f"lease-keepalive {key}")
        return self._lease

    async def release(self) -> None:
        """Release the lease and end the stream, in at most RELEASE_TIMEOUT.

        Raises only the caller's own cancellation, after cancelling the stream.
        """
        try:
            async with asyncio.timeout(RELEASE_TIMEOUT.total_seconds()):
                self._stopping.set()
                await asyncio.wait([self._keeper])
                request = self._protocol.release()
                if request is not None:
                    await self._call.write(request)
                await self._finished.wait()
                # Half-close: the server then ends the stream, which the reader sees.
                await self._call.done_writing()
                await asyncio.wait([self._reader])
        except (TimeoutError, *_STREAM_OVER):
            pass  # the stream is over or too slow: cancelling it below releases
        finally:
            # A no-op when the stream already ended.
            self._call.cancel()
            self._keeper.cancel()
            self._reader.cancel()

    async def _read(self) -> None:
        try:
            # Until grpc.aio.EOF, the only read that is not a response.
            while isinstance(response := await self._call.read(), pb.LeaseResponse):
                self._protocol.receive(response)
                self._publish()
        except grpc.RpcError:
            pass  # the stream failed: that is its end
        finally:
            # Also on CancelledError: grpc.aio raises it for a cancelled call.
            self._protocol.stream_ended()
            self._publish()

    async def _keep_alive(self) -> None:
        while (delay := self._protocol.seconds_to_next_tick()) is not None:
            if await _is_set_within(self._stopping, delay):
                return
            request = self._protocol.tick()
            if request is not None:
                try:
                    await self._call.write(request)
                except _STREAM_OVER:
                    return  # the reader sees the end of the stream and reports it
            self._publish()

    def _publish(self) -> None:
        publish(self._protocol, self._lease.lost, self._finished)

    async def __aenter__(self) -> AsyncLease:
        return await self.acquire()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.release()


def hold_lease(
    stub: WorkflowStateServiceAsyncStub, terms: LeaseTerms, client: AsyncWorkflowStateClient
) -> AbstractAsyncContextManager[AsyncLease]:
    """Acquire the lease on entering the block, keep it alive while the block runs, release it when the block ends."""
    return _LeaseStream(stub, terms, client)
