"""A Lease stream over the raw generated stub, driven one message at a time by a test."""

from __future__ import annotations

from datetime import timedelta

from support.bidi_stream import BidiStream, duration

from workflowstate import v1 as pb
from workflowstate.v1 import workflow_state_pb2_grpc as pb_grpc


class LeaseStream(BidiStream):
    """A Lease stream: acquire, keep alive, release (see BidiStream for reading the answers)."""

    def __init__(self, stub: pb_grpc.WorkflowStateServiceStub) -> None:
        super().__init__(stub.Lease)

    def acquire(self, key: str, ttl: timedelta, wait_timeout: timedelta | None = None, holder: str = "test") -> None:
        acquire = pb.LeaseAcquire(key=key, ttl=duration(ttl), holder=holder)
        if wait_timeout is not None:
            acquire.wait_timeout.CopyFrom(duration(wait_timeout))
        self.send(pb.LeaseRequest(acquire=acquire))

    def keep_alive(self) -> None:
        self.send(pb.LeaseRequest(keep_alive=pb.LeaseKeepAlive()))

    def release(self) -> None:
        self.send(pb.LeaseRequest(release=pb.LeaseRelease()))
