"""Batch: several unary state calls in one message, each run as the separate call would be.

Each operation goes through the same handler as its unary RPC (handlers.py: validation, deadline, store
call, conversion), so a batched call can differ from the separate one only in how its outcome is
carried: its response, or a BatchError with the code, message, reason and metadata the separate call would have
ended with. Nothing is shared between operations: no transaction, no order.

The batch is refused whole, before anything runs, when it is too long or holds an empty operation.
Its size in bytes is bounded by gRPC's receive limit (app.py), which refuses a larger message with
RESOURCE_EXHAUSTED before the handler is called.

Its reply is bounded too (reply_bounds.py): results are added until the next would pass the reply
bound, and the operations past it are answered RESOURCE_EXHAUSTED without being run. A write is
run only when the bound has room left for the most its reply may be (one item), counting the writes
in flight, so a write that ran always has its result in the reply; a read runs while the bound is
not reached and its result is kept if it fits (else answered RESOURCE_EXHAUSTED: nothing written).
Each operation keeps room for an error result of its own until it is answered.

Concurrency: the operations run on at most `concurrency` workers (the pool's size). Started all at
once, a batch of 1000 on a pool of 10 would queue 990 statements for a connection, and those still
queued after --pool-timeout would be answered RESOURCE_EXHAUSTED although the server was merely busy
with the batch itself. With as many workers as connections, an operation waits for a connection
only as long as unary calls of other clients make it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Mapping
from typing import Protocol

import grpc
from google.protobuf.message import Message

from workflowstate import v1 as pb

from ..core import errors
from .handlers import Handler, handles, within_deadline
from .reply_bounds import ReplyBound, item_bytes
from .rpc_facts import FACTS
from .status import status_of

# Oneof field name (the same in BatchOperation and BatchResult) -> the unary RPC's name, the
# `operation` label of the metric.
RPC_OF: dict[str, str] = {
    # Every field of the oneof is a request message, so its message_type is set.
    field.name: field.message_type.name.removesuffix("Request")  # type: ignore[union-attr]
    for field in pb.BatchOperation.DESCRIPTOR.oneofs_by_name["operation"].fields
}


def check_batchable(rpc_of: dict[str, str]) -> None:
    """Refuse a contract whose BatchOperation oneof is not exactly the RPCs marked batchable (their
    `rpc_facts` option): either a batchable RPC could not be batched, or a batched one would skip
    what its option decides."""
    marked = {name for name, facts in FACTS.items() if facts.batchable}
    carried = set(rpc_of.values())
    if carried != marked:
        raise RuntimeError(
            "BatchOperation's oneof must hold exactly the RPCs marked batchable in the proto: "
            f"batchable but not in the oneof {sorted(marked - carried)}, in the oneof but not batchable {sorted(carried - marked)}"
        )


check_batchable(RPC_OF)

# The operations that write nothing (their RPC is declared NO_SIDE_EFFECTS): their result may be
# left out of a reply that has no room for it.
READS = frozenset(kind for kind, rpc in RPC_OF.items() if FACTS[rpc].reads_only)
# The room an operation keeps in the reply for its error result until it is answered (an error's
# message is a sentence or two; a refusal at the bound is under 300 bytes).
ERROR_RESULT_BYTES = 512

class BatchMetrics(Protocol):
    def batch_operation_finished(self, operation: str, code: grpc.StatusCode) -> None: ...


class BatchRunner:
    """Validates a BatchRequest and runs its operations through their RPCs' handlers."""

    def __init__(
        self,
        handlers: Mapping[str, Handler],
        metrics: BatchMetrics,
        *,
        reply_bound: ReplyBound,
        max_operations: int,
        concurrency: int,
        on_database_unavailable: Callable[[Exception], None],
    ) -> None:
        # The servicer's table, by RPC name: an operation runs its RPC's handler.
        self._handlers = handlers
        self._metrics = metrics
        self._reply_bound = reply_bound
        self._max_operations = max_operations
        self._concurrency = concurrency
        self._on_database_unavailable = on_database_unavailable

    def _kinds(self, request: pb.BatchRequest) -> list[str]:
        """Which call each operation is; raises InvalidArgument for a batch refused whole."""
        count = len(request.operations)
        if count > self._max_operations:
            raise errors.InvalidArgument(f"a batch holds at most {self._max_operations} operations, got {count}; split it", field="operations", limit=self._max_operations)
        kinds: list[str] = []
        for index, operation in enumerate(request.operations):
            kind = operation.WhichOneof("operation")
            if kind is None:
                raise errors.InvalidArgument(f"operations[{index}] has no operation set", field=f"operations[{index}]")
            kinds.append(kind)
        return kinds

    @handles("Batch")
    async def run(
        self, request: pb.BatchRequest, context: grpc.aio.ServicerContext[pb.BatchRequest, pb.BatchResponse]
    ) -> pb.BatchResponse:
        kinds = self._kinds(request)
        response = pb.BatchResponse()
        # Filled in place, in the order of the operations, whatever order they finish in.
        slots = [response.results.add() for _ in kinds]
        pending: Iterator[int] = iter(range(len(kinds)))
        room = ReplyRoom(self._reply_bound.max_bytes - len(kinds) * ERROR_RESULT_BYTES)
        # Operations are let in one at a time, in their order: a later one never overtakes one
        # waiting for room, so the operations past the bound are the last ones.
        turn = asyncio.Lock()

        async def worker() -> None:
            while True:
                async with turn:
                    index = next(pending, None)
                    if index is None:
                        return
                    kind = kinds[index]
                    reserved = 0 if kind in READS else self._reply_bound.item_bytes
                    admitted = await room.admit(reserved)
                if not admitted:
                    self._refuse(kind, slots[index], ran=False)
                    continue
                await self._run_one(kind, getattr(request.operations[index], kind), slots[index], context)
                if not await room.settle(reserved, item_bytes(slots[index]), keep=kind not in READS):
                    self._refuse(kind, slots[index], ran=True)

        workers = min(self._concurrency, len(kinds))
        if workers == 1:
            await worker()
        elif workers > 1:
            await asyncio.gather(*(worker() for _ in range(workers)))
        return response

    def _refuse(self, kind: str, slot: pb.BatchResult, *, ran: bool) -> None:
        """Answer an operation RESOURCE_EXHAUSTED: its result has no room in the reply. One that ran
        (a read) was counted in the metrics already."""
        slot.Clear()
        slot.error.code = grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
        slot.error.message = self._reply_bound.batch_refusal(RPC_OF[kind], ran=ran)
        slot.error.reason = errors.ReplyTooLarge.REASON
        if not ran:
            self._metrics.batch_operation_finished(RPC_OF[kind], grpc.StatusCode.RESOURCE_EXHAUSTED)

    async def _run_one(
        self, kind: str, request: Message, slot: pb.BatchResult, context: grpc.aio.ServicerContext[pb.BatchRequest, pb.BatchResponse]
    ) -> None:
        try:
            # Within the deadline, as the call alone is (servicer.py).
            answer = await within_deadline(self._handlers[RPC_OF[kind]], request, context)
        except Exception as err:
            # The same status the separate call would have ended with, reason and metadata included.
            status = status_of(err, f"Batch.{RPC_OF[kind]}", self._on_database_unavailable)
            code = status.code
            slot.error.code = code.value[0]
            slot.error.message = status.message
            slot.error.reason = status.reason
            slot.error.metadata.update(status.metadata)
        else:
            code = grpc.StatusCode.OK
            getattr(slot, kind).CopyFrom(answer)
        self._metrics.batch_operation_finished(RPC_OF[kind], code)


class ReplyRoom:
    """What is left of a batch's reply bound: results answered take their bytes; writes in flight
    hold the most their reply may need until they are answered."""

    def __init__(self, left: int) -> None:
        self._left = left
        self._held = 0  # by writes in flight
        self._reached = False
        # The first operation always runs (a batch of one is the separate call): its reply is one
        # item, within the bound, whatever room the error results of the others keep.
        self._first = True
        self._changed = asyncio.Condition()

    async def admit(self, reserve: int) -> bool:
        """Whether an operation that needs `reserve` bytes held may run; waits while operations in
        flight hold the room it needs. Once one is refused, every later one is."""
        async with self._changed:
            while not self._reached and reserve > self._left and not self._first:
                if self._held == 0:
                    self._reached = True  # nothing in flight will free room
                else:
                    await self._changed.wait()
            if self._reached:
                return False
            self._first = False
            self._left -= reserve
            self._held += reserve
            return True

    async def settle(self, reserved: int, size: int, *, keep: bool) -> bool:
        """Count an answered operation's result of `size` bytes in place of what it held. False when
        it has no room, unless `keep` (a write's result is always kept): then it keeps the room of
        an error result instead, for its refusal."""
        async with self._changed:
            self._left += reserved + ERROR_RESULT_BYTES
            self._held -= reserved
            fits = size <= self._left
            self._left -= size if fits or keep else ERROR_RESULT_BYTES
            self._reached = self._reached or not fits
            self._changed.notify_all()
            return fits or keep
