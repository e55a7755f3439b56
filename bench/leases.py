"""Lease cycles: each worker keeps one Lease stream open and acquires + releases on it in a loop.

The client's ``lease()`` opens a stream per lease; a worker that locks again and again would keep
its stream, so this drives the raw generated stub: one ``grpc.aio`` stream call per worker,
written and read directly. A cycle is acquire -> granted -> release -> released; on a shared key it
includes the wait for the other workers ahead in the queue.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from dataclasses import dataclass
from datetime import timedelta

import grpc
import grpc.aio
from google.protobuf.duration_pb2 import Duration

from workflowstate import v1 as pb
from workflowstate.v1 import workflow_state_pb2_grpc as pb_grpc

from . import streams
from .loop import closed_loop
from .stats import Tally

TTL = timedelta(seconds=10)


@dataclass(frozen=True)
class Shape:
    """How many workers lock how many keys; workers are spread over the keys round robin."""

    workers: int
    keys: int

    @property
    def label(self) -> str:
        return f"{self.workers}w/{self.keys}k"


class LeaseWorker:
    """One Lease stream, reused for every cycle of one worker on one key."""

    def __init__(self, stub: pb_grpc.WorkflowStateServiceAsyncStub, key: str, holder: str) -> None:
        ttl = Duration()
        ttl.FromTimedelta(TTL)
        self._acquire = pb.LeaseRequest(acquire=pb.LeaseAcquire(key=key, ttl=ttl, holder=holder))
        self._release = pb.LeaseRequest(release=pb.LeaseRelease())
        self._call = stub.Lease()

    async def cycle(self) -> None:
        await self._call.write(self._acquire)
        await streams.expect(self._call, "granted")
        await self._call.write(self._release)
        await streams.expect(self._call, "released")

    async def close(self) -> None:
        await streams.close(self._call)


async def measure(target: str, shape: Shape, *, warmup: float, seconds: float) -> Tally:
    """Run ``shape.workers`` lease workers over ``shape.keys`` fresh keys; a unit is one cycle."""
    prefix = f"bench:{uuid.uuid4().hex[:8]}"
    async with grpc.aio.insecure_channel(target) as channel:
        stub = pb_grpc.WorkflowStateServiceStub(channel)
        workers = [
            LeaseWorker(stub, f"{prefix}:{index % shape.keys}", f"bench:{os.getpid()}:{index}")
            for index in range(shape.workers)
        ]
        try:
            return await closed_loop([worker.cycle for worker in workers], warmup=warmup, seconds=seconds)
        finally:
            await asyncio.gather(*(worker.close() for worker in workers))
