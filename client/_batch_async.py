"""How the asyncio client sends its calls: one by one, or batched by event-loop turn.

Batched, a call joins a queue and waits; the first call of a turn schedules a flush at the end of
the turn (or after the batching window), which sends everything queued by then: a group of one as
the plain unary call, a larger group as one Batch. So a lone call goes out at once, and the calls
of coroutines that resume together (the replies of one batch wake them in the same turn) go
together again. The shared rules (grouping, results, retries) are in ``_batch_protocol``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
import grpc.aio

from ._batch_protocol import (
    FIELD_OF_METHOD,
    Batching,
    Group,
    Outcome,
    Pending,
    batch_request,
    outcomes_of_failed_batch,
    outcomes_of_reply,
    pending,
    plan,
    retry_delay,
    spread,
)
from ._calls import Call
from ._channel import RetryPolicy

if TYPE_CHECKING:
    from workflowstate.v1.workflow_state_pb2_grpc import WorkflowStateServiceAsyncStub

R = TypeVar("R")

_Queued = tuple[Pending[Any], "asyncio.Future[Outcome]"]

SEND_ALONE = Outcome()
"""What a call's future is given when its group is itself alone: send it as the plain call."""


class AsyncSender:
    """Sends the async client's calls over the stubs ``next_stub`` hands out in turn."""

    def __init__(
        self,
        next_stub: Callable[[], WorkflowStateServiceAsyncStub],
        batching: Batching | None,
        retry: RetryPolicy | None,
        *,
        connections: int = 1,
    ) -> None:
        self._connections = connections
        self._next_stub = next_stub
        self._batching = batching
        self._retry = retry
        self._queue: list[_Queued] = []
        self._flush_scheduled = False
        # Strong references to the batches in flight (the loop keeps only weak ones).
        self._sending: set[asyncio.Task[None]] = set()

    async def send(self, call: Call[R], timeout: float | None) -> R:
        """Send ``call`` with ``timeout`` seconds (``None``: no deadline) and return its result."""
        if self._batching is None or call.method not in FIELD_OF_METHOD:
            # Unbatched, or a call Batch does not carry (the operators' lists, cancels, deletes).
            return await self._send_alone(call, timeout)
        item = pending(call, timeout)
        while True:
            outcome = await self._submit(item)
            if outcome is SEND_ALONE:
                # Nobody joined it: the caller sends it as the plain call, in its own task, so
                # cancelling the caller cancels the call on the wire, as unbatched.
                return await self._send_alone(call, item.remaining(time.monotonic()))
            if outcome.error is None:
                return call.read_reply(outcome.reply)
            delay = retry_delay(item, outcome, self._retry)
            if delay is None:
                return call.fail(outcome.error)
            await asyncio.sleep(delay)
            item.attempt += 1

    async def _send_alone(self, call: Call[R], timeout: float | None) -> R:
        rpc = getattr(self._next_stub(), call.method)
        try:
            reply = await rpc(call.request, timeout=None if timeout is None else max(timeout, 0.0))
        except grpc.RpcError as err:
            return call.fail(err)
        return call.read_reply(reply)

    async def _submit(self, item: Pending[Any]) -> Outcome:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Outcome] = loop.create_future()
        self._queue.append((item, future))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            assert self._batching is not None
            window = self._batching.window.total_seconds()
            if window > 0:
                loop.call_later(window, self._flush)
            else:
                loop.call_soon(self._flush)
        # Cancelled while in a Batch, the operation runs on: its neighbours need their results.
        return await future

    def _flush(self) -> None:
        self._flush_scheduled = False
        queued, self._queue = self._queue, []
        future_of = {id(item): future for item, future in queued if not future.done()}
        assert self._batching is not None
        items = [item for item, _ in queued if id(item) in future_of]
        for group in plan(items, spread(self._batching, len(items), self._connections)):
            futures = [future_of[id(item)] for item in group.items]
            if group.as_batch:
                self._start(self._send_batch(group, futures))
            else:
                futures[0].set_result(SEND_ALONE)

    def _start(self, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coroutine)
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)
        return task

    async def _send_batch(self, group: Group, futures: list[asyncio.Future[Outcome]]) -> None:
        try:
            response = await self._next_stub().Batch(batch_request(group), timeout=group.timeout(time.monotonic()))
        except grpc.RpcError as err:
            outcomes = outcomes_of_failed_batch(group, err)
        except Exception as exc:  # a closed channel's UsageError: each caller's to raise
            _settle(futures, exc)
            return
        else:
            outcomes = outcomes_of_reply(group, response)
        _settle(futures, outcomes)


def _settle(futures: list[asyncio.Future[Outcome]], outcomes: list[Outcome] | Exception) -> None:
    """Give each waiting caller its outcome, or the exception that stopped the send."""
    for index, future in enumerate(futures):
        if future.done():  # its caller was cancelled
            continue
        if isinstance(outcomes, Exception):
            future.set_exception(outcomes)
        else:
            future.set_result(outcomes[index])
