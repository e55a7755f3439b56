"""A Lease stream over the raw generated stub, driven one message at a time by a test."""

from __future__ import annotations

import queue
import threading
from datetime import timedelta
from typing import Any

import grpc
from google.protobuf.duration_pb2 import Duration

from workflowstate.v1 import workflow_state_pb2 as pb
from workflowstate.v1 import workflow_state_pb2_grpc as pb_grpc

_END = object()


def duration(span: timedelta) -> Duration:
    message = Duration()
    message.FromTimedelta(span)
    return message


class LeaseStream:
    """Send LeaseRequests, read LeaseResponses (or the status the stream ended with)."""

    def __init__(self, stub: pb_grpc.WorkflowStateServiceStub) -> None:
        self._outgoing: queue.Queue[Any] = queue.Queue()
        self._incoming: queue.Queue[Any] = queue.Queue()
        self._call = stub.Lease(iter(self._outgoing.get, _END))
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            for response in self._call:
                self._incoming.put(response)
            self._incoming.put(grpc.StatusCode.OK)
        except grpc.RpcError as err:
            self._incoming.put(err)

    def send(self, request: pb.LeaseRequest) -> None:
        self._outgoing.put(request)

    def acquire(self, key: str, ttl: timedelta, wait_timeout: timedelta | None = None, holder: str = "test") -> None:
        acquire = pb.LeaseAcquire(key=key, ttl=duration(ttl), holder=holder)
        if wait_timeout is not None:
            acquire.wait_timeout.CopyFrom(duration(wait_timeout))
        self.send(pb.LeaseRequest(acquire=acquire))

    def keep_alive(self) -> None:
        self.send(pb.LeaseRequest(keep_alive=pb.LeaseKeepAlive()))

    def release(self) -> None:
        self.send(pb.LeaseRequest(release=pb.LeaseRelease()))

    def next(self, timeout: float = 30.0) -> Any:
        """The next response, or the grpc.RpcError / StatusCode.OK the stream ended with."""
        return self._incoming.get(timeout=timeout)

    def expect(self, kind: str, timeout: float = 30.0) -> Any:
        response = self.next(timeout)
        assert isinstance(response, pb.LeaseResponse), f"expected {kind}, the stream ended: {response!r}"
        assert response.WhichOneof("kind") == kind, f"expected {kind}, got {response}"
        return getattr(response, kind)

    def expect_end(self, code: grpc.StatusCode, timeout: float = 30.0) -> str:
        ended = self.next(timeout)
        assert isinstance(ended, grpc.RpcError), f"expected the stream to end with {code}, got {ended!r}"
        assert ended.code() == code, (ended.code(), ended.details())
        return ended.details() or ""

    def close(self) -> None:
        """End the client's side; the server releases what the stream holds."""
        self._outgoing.put(_END)

    def cancel(self) -> None:
        self._call.cancel()
