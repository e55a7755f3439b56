"""Batch: several unary state calls in one message, each run as the separate call would be.

Each operation goes through the same inner function as its unary RPC (validation, deadline, store
call, conversion), so a batched call can differ from the separate one only in how its outcome is
carried: its response, or a BatchError with the code and message the separate call would have
ended with. Nothing is shared between operations: no transaction, no order.

The batch is refused whole, before anything runs, when it is too long or holds an empty operation.
Its size in bytes is bounded by gRPC's receive limit (app.py), which refuses a larger message with
RESOURCE_EXHAUSTED before the handler is called.

Concurrency: the operations run on at most `concurrency` workers (the pool's size). Started all at
once, a batch of 1000 on a pool of 10 would queue 990 statements for a connection, and those still
queued after --pool-timeout would be answered RESOURCE_EXHAUSTED although the server was merely busy
with the batch itself. With as many workers as connections, an operation waits for a connection
only as long as unary calls of other clients make it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Protocol

import grpc
from google.protobuf.message import Message

from workflowstate.v1 import workflow_state_pb2 as pb

from ..core import errors
from .status import status_of

# Oneof field name (the same in BatchOperation and BatchResult) -> the unary RPC's name, the
# `operation` label of the metric.
RPC_OF: dict[str, str] = {
    field.name: field.message_type.name.removesuffix("Request")
    for field in pb.BatchOperation.DESCRIPTOR.oneofs_by_name["operation"].fields
}

Inner = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Message]]


class BatchMetrics(Protocol):
    def batch_operation_finished(self, operation: str, code: grpc.StatusCode) -> None: ...


class BatchRunner:
    """Validates a BatchRequest and runs its operations through their unary inner functions."""

    def __init__(
        self,
        inner_of: Callable[[str], Inner],
        metrics: BatchMetrics,
        *,
        max_operations: int,
        concurrency: int,
        on_database_unavailable: Callable[[Exception], None],
    ) -> None:
        self._inner_of = inner_of
        self._metrics = metrics
        self._max_operations = max_operations
        self._concurrency = concurrency
        self._on_database_unavailable = on_database_unavailable

    def _kinds(self, request: pb.BatchRequest) -> list[str]:
        """Which call each operation is; raises InvalidArgument for a batch refused whole."""
        count = len(request.operations)
        if count > self._max_operations:
            raise errors.InvalidArgument(f"a batch holds at most {self._max_operations} operations, got {count}; split it")
        kinds = []
        for index, operation in enumerate(request.operations):
            kind = operation.WhichOneof("operation")
            if kind is None:
                raise errors.InvalidArgument(f"operations[{index}] has no operation set")
            kinds.append(kind)
        return kinds

    async def run(self, request: pb.BatchRequest, context: grpc.aio.ServicerContext) -> pb.BatchResponse:
        kinds = self._kinds(request)
        response = pb.BatchResponse()
        # Filled in place, in the order of the operations, whatever order they finish in.
        slots = [response.results.add() for _ in kinds]
        pending: Iterator[int] = iter(range(len(kinds)))

        async def worker() -> None:
            for index in pending:
                kind = kinds[index]
                await self._run_one(kind, getattr(request.operations[index], kind), slots[index], context)

        workers = min(self._concurrency, len(kinds))
        if workers == 1:
            await worker()
        elif workers > 1:
            await asyncio.gather(*(worker() for _ in range(workers)))
        return response

    async def _run_one(self, kind: str, request: Message, slot: pb.BatchResult, context: grpc.aio.ServicerContext) -> None:
        try:
            answer = await self._inner_of(kind)(request, context)
        except Exception as err:
            code, message = status_of(err, f"Batch.{RPC_OF[kind]}", self._on_database_unavailable)
            slot.error.code = code.value[0]
            slot.error.message = message
        else:
            code = grpc.StatusCode.OK
            getattr(slot, kind).CopyFrom(answer)
        self._metrics.batch_operation_finished(RPC_OF[kind], code)
