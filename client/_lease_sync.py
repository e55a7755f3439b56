"""A lease held by the blocking client: the Lease stream driven by two daemon threads.

The request side of the stream is a generator fed from a queue; one thread
reads the responses, one sends keepalives when the protocol asks. The caller's
thread only acquires and releases. Every decision is ``LeaseProtocol``'s.
"""

from __future__ import annotations

import queue
import threading
import time
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

import grpc

from workflowstate import v1 as pb
from workflowstate.v1.workflow_state_pb2_grpc import WorkflowStateServiceStub

from ._errors import error_from_rpc
from ._lease_protocol import RELEASE_TIMEOUT, LeaseProtocol, LeaseTerms
from ._lease_view import LeaseView, publish
from ._request_queue import until_none

if TYPE_CHECKING:
    from ._sync import WorkflowStateClient


class Lease(LeaseView["WorkflowStateClient"]):
    """A lease held by ``with client.lease(key) as lease:``, kept alive in the block.

    ``lost`` is set when the lease is lost while the block runs: the server
    said so (expired, taken over, shutting down), the stream broke, or the
    client heard of no new expiry in time. The block is not interrupted;
    check ``lost`` (or wait on it) before work that needs the lease, and make
    writes through :attr:`client`, which the server refuses once another
    holder got the key.
    """

    def __init__(self, protocol: LeaseProtocol, client: WorkflowStateClient) -> None:
        super().__init__(protocol, client)
        self.lost = threading.Event()
        """Set once the lease is lost; never cleared."""

    def wait_lost(self, timeout: float | None = None) -> bool:
        """Block until the lease is lost or ``timeout`` seconds pass; True if it was lost."""
        return self.lost.wait(timeout)


class _LeaseStream:
    """One Lease stream holding one lease, from acquire to release."""

    def __init__(
        self, stub: WorkflowStateServiceStub, terms: LeaseTerms, client: WorkflowStateClient
    ) -> None:
        self._stub = stub
        self._client = client
        self._protocol = LeaseProtocol(terms)
        self._lock = threading.Lock()  # the protocol is not thread-safe
        self._requests: queue.Queue[pb.LeaseRequest | None] = queue.Queue()
        self._finished = threading.Event()
        self._stopping = threading.Event()
        # Set by acquire(), before the threads that use them start; so is
        # _responses, the call: an iterator of responses that can be cancelled.
        self._lease: Lease
        self._reader: threading.Thread
        self._keeper: threading.Thread

    def acquire(self) -> Lease:
        """Send the acquire and block until granted; raise the client's error when refused."""
        self._requests.put(self._protocol.acquire())
        responses = self._stub.Lease(until_none(self._requests))
        try:
            try:
                first: pb.LeaseResponse | None = next(responses)
            except StopIteration:
                first = None
            except grpc.RpcError as err:
                raise error_from_rpc(err) from err
            self._protocol.granted(first)
        except BaseException:
            # Refused, interrupted (KeyboardInterrupt) or a surprise: end the
            # stream, which also stops the server's waiting.
            self._requests.put(None)
            responses.cancel()
            raise
        self._responses = responses
        self._lease = Lease(self._protocol, self._client)
        self._reader = threading.Thread(
            target=self._read, name=f"lease-reader {self._protocol.terms.key}", daemon=True
        )
        self._keeper = threading.Thread(
            target=self._keep_alive, name=f"lease-keepalive {self._protocol.terms.key}", daemon=True
        )
        self._reader.start()
        self._keeper.start()
        return self._lease

    def release(self) -> None:
        """Release the lease and end the stream, in at most RELEASE_TIMEOUT; never raises."""
        give_up = time.monotonic() + RELEASE_TIMEOUT.total_seconds()
        self._stopping.set()
        self._keeper.join()  # it only ever waits on _stopping
        with self._lock:
            request = self._protocol.release()
            if request is not None:
                self._requests.put(request)
        self._finished.wait(max(0.0, give_up - time.monotonic()))
        # Half-close: the server then ends the stream, which the reader sees.
        self._requests.put(None)
        self._reader.join(max(0.0, give_up - time.monotonic()))
        # Past the timeout, or a server that does not end the stream: cancel.
        # A no-op when the stream already ended.
        self._responses.cancel()

    def _read(self) -> None:
        try:
            for response in self._responses:
                with self._lock:
                    self._protocol.receive(response)
                self._publish()
        except grpc.RpcError:
            pass  # the stream failed or was cancelled: both are its end
        finally:
            with self._lock:
                self._protocol.stream_ended()
            self._publish()

    def _keep_alive(self) -> None:
        while True:
            with self._lock:
                delay = self._protocol.seconds_to_next_tick()
            if delay is None or self._stopping.wait(delay):
                return
            with self._lock:
                # Queued under the lock, so keepalives reach the stream in the
                # order the protocol recorded their send times.
                request = self._protocol.tick()
                if request is not None:
                    self._requests.put(request)
            self._publish()

    def _publish(self) -> None:
        publish(self._protocol, self._lease.lost, self._finished)

    def __enter__(self) -> Lease:
        return self.acquire()

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def hold_lease(stub: WorkflowStateServiceStub, terms: LeaseTerms, client: WorkflowStateClient) -> AbstractContextManager[Lease]:
    """Acquire the lease on entering the block, keep it alive while the block runs, release it when the block ends."""
    return _LeaseStream(stub, terms, client)
