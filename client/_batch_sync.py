"""How the blocking client sends its calls: one by one, or batched across threads.

Threads have no event-loop turn to share, so batching follows the calls in flight: a call goes out
at once, as itself and blocking, while fewer than ``LANES_PER_CONNECTION`` sends per connection
are in flight; otherwise it is queued, and when a send finishes, whatever is queued by then goes
out together (a group of one as the plain unary call, a larger one as one Batch). So a lone call is
never held back, and threads that call while the connection is busy share batches. The price is
that a queued call waits for some send in flight to finish: with every lane held by a call the
server is slow to answer (one waiting on a lock), others wait too, within their deadlines.
``batching=False`` sends every call at once. The shared rules (grouping, results, retries) are in
``_batch_protocol``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message

from workflowstate import v1 as pb
from workflowstate.v1.workflow_state_pb2_grpc import WorkflowStateServiceStub

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
)
from ._calls import Call
from ._channel import RetryPolicy
from ._errors import BatchedCallError

R = TypeVar("R")

_Queued = tuple[Pending[Any], "Future[Outcome]"]


LANES_PER_CONNECTION = 2
"""Sends in flight per connection before calls queue up for a batch."""


class SyncSender:
    """Sends the blocking client's calls over the stubs ``next_stub`` hands out in turn; thread-safe."""

    def __init__(
        self,
        next_stub: Callable[[], WorkflowStateServiceStub],
        batching: Batching | None,
        retry: RetryPolicy | None,
        *,
        connections: int = 1,
    ) -> None:
        self._next_stub = next_stub
        self._batching = batching
        self._retry = retry
        self._lanes = LANES_PER_CONNECTION * connections
        self._lock = threading.Lock()
        self._queue: list[_Queued] = []
        self._in_flight = 0

    def send(self, call: Call[R], timeout: float | None) -> R:
        """Send ``call`` with ``timeout`` seconds (``None``: no deadline) and return its result."""
        if self._batching is None or call.method not in FIELD_OF_METHOD:
            # Unbatched, or a call Batch does not carry (the operators' lists, cancels, deletes).
            return self._send_alone(call, timeout)
        item = pending(call, timeout)
        while True:
            outcome = self._submit(item)
            if outcome.error is None:
                return call.read_reply(outcome.reply)
            delay = retry_delay(item, outcome, self._retry)
            if delay is None:
                return call.fail(outcome.error)
            time.sleep(delay)
            item.attempt += 1

    def _send_alone(self, call: Call[R], timeout: float | None) -> R:
        rpc = getattr(self._next_stub(), call.method)
        try:
            reply = rpc(call.request, timeout=timeout)
        except grpc.RpcError as err:
            return call.fail(err)
        return call.read_reply(reply)

    def _submit(self, item: Pending[Any]) -> Outcome:
        with self._lock:
            free_lane = self._in_flight < self._lanes
            if free_lane:
                self._in_flight += 1
            else:
                future: Future[Outcome] = Future()
                self._queue.append((item, future))
        if not free_lane:
            return future.result()
        try:
            return self._send_blocking(item)
        finally:
            self._lane_freed()

    def _send_blocking(self, item: Pending[Any]) -> Outcome:
        assert self._batching is not None
        (group,) = plan([item], self._batching)
        stub = self._next_stub()
        timeout = group.timeout(time.monotonic())
        try:
            if group.as_batch:
                (outcome,) = outcomes_of_reply(group, stub.Batch(batch_request(group), timeout=timeout))
                return outcome
            return Outcome(reply=getattr(stub, item.call.method)(item.call.request, timeout=timeout))
        except grpc.RpcError as err:
            return Outcome(error=err, retried_by_grpc=not group.as_batch)

    def _lane_freed(self) -> None:
        """A send finished: send what is queued on the lanes free now."""
        assert self._batching is not None
        with self._lock:
            self._in_flight -= 1
            if not self._queue:
                return
            queued, self._queue = self._queue, []
            groups = plan((item for item, _ in queued), self._batching)
            # Groups beyond the free lanes wait for the next lane, in the queue.
            starting, waiting = groups[: self._lanes - self._in_flight], groups[self._lanes - self._in_flight :]
            future_of = {id(item): future for item, future in queued}
            self._queue = [(item, future_of[id(item)]) for group in waiting for item in group.items]
            self._in_flight += len(starting)
        for group in starting:
            futures = [future_of[id(item)] for item in group.items]
            try:
                self._start(group, futures)
            except Exception as exc:  # a closed channel's ValueError: each caller's to raise
                for future in futures:
                    future.set_exception(exc)
                self._lane_freed()

    def _start(self, group: Group, futures: list[Future[Outcome]]) -> None:
        """Send ``group`` without waiting; its reply completes ``futures`` and frees the lane, on gRPC's thread."""
        stub = self._next_stub()
        timeout = group.timeout(time.monotonic())
        if group.as_batch:
            sent = stub.Batch.future(batch_request(group), timeout=timeout)

            def settle_batch(done: grpc.Future[pb.BatchResponse]) -> None:
                error = _error_of(done)
                outcomes = outcomes_of_reply(group, done.result()) if error is None else outcomes_of_failed_batch(group, error)
                self._lane_freed()
                for future, outcome in zip(futures, outcomes, strict=True):
                    future.set_result(outcome)

            sent.add_done_callback(settle_batch)
        else:
            (item,) = group.items
            (future,) = futures
            sent = getattr(stub, item.call.method).future(item.call.request, timeout=timeout)

            def settle_unary(done: grpc.Future[Message]) -> None:
                error = _error_of(done)
                self._lane_freed()
                future.set_result(Outcome(reply=done.result()) if error is None else Outcome(error=error, retried_by_grpc=True))

            sent.add_done_callback(settle_unary)


def _error_of(done: grpc.Future[R]) -> grpc.RpcError | None:
    """The error a finished gRPC future ended with, ``None`` for a reply."""
    if done.cancelled():
        # Only closing the client cancels a call started here.
        return BatchedCallError(grpc.StatusCode.CANCELLED, "the call was cancelled: the client was closed")
    error = done.exception()
    if error is None or isinstance(error, grpc.RpcError):
        return error
    return BatchedCallError(grpc.StatusCode.UNKNOWN, str(error))
