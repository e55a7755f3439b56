"""Following run events (``watch_run``, ``stream_run_events``) across reconnects, sync and async.

``EventFeed`` is the shared logic, without I/O: the request that resumes after
the last event received, what a response means, whether the feed is over. The
two drivers below only open streams, read them, and wait between tries; when
the server goes away (UNAVAILABLE) they open a new stream that resumes after
the last event received, so the caller sees every event once, in order.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any

import grpc
import grpc.aio
from google.protobuf.message import Message

from workflowstate.v1 import workflow_state_pb2 as pb

from ._convert import run_event_from_proto
from ._errors import error_from_rpc
from ._reconnect import RECONNECT_CODES, Backoff, ReconnectPolicy
from ._types import RunEvent

if TYPE_CHECKING:
    from workflowstate.v1.workflow_state_pb2_grpc import (
        WorkflowStateServiceAsyncStub,
        WorkflowStateServiceStub,
    )


class EventFeed:
    """Where a reader of run events is: which RPC, and the last event it received."""

    def __init__(
        self,
        method: str,
        make_request: Callable[[int], Message],
        after_event_id: int,
        *,
        ends_with_run: bool,
    ) -> None:
        self.method = method
        """The streaming RPC, as named on the stub."""

        self.after_event_id = after_event_id
        """The id of the last event received (or the caller's start); the next stream resumes after it."""

        self.finished = False
        """True once no event can follow: the watched run finished."""

        self._make_request = make_request
        self._ends_with_run = ends_with_run

    @classmethod
    def of_run(cls, run_id: str, after_event_id: int) -> EventFeed:
        """WatchRun: the events of one run, until the event that finishes it."""
        return cls(
            "WatchRun",
            lambda after: pb.WatchRunRequest(run_id=run_id, after_event_id=after),
            after_event_id,
            ends_with_run=True,
        )

    @classmethod
    def of_all(cls, workflow: str | None, after_event_id: int) -> EventFeed:
        """StreamRunEvents: the events of every run (of ``workflow`` when given), for ever."""
        return cls(
            "StreamRunEvents",
            lambda after: pb.StreamRunEventsRequest(workflow=workflow or "", after_event_id=after),
            after_event_id,
            ends_with_run=False,
        )

    def request(self) -> Message:
        """The request of the next stream: resume after the last event received."""
        return self._make_request(self.after_event_id)

    def received(self, response: Any) -> RunEvent:
        """Read one response; the event it carries is now the last one received."""
        event = run_event_from_proto(response.event)
        # The last received, not the highest: the order is stable but not by id.
        self.after_event_id = event.event_id
        if self._ends_with_run and event.finishes_run:
            self.finished = True
        return event

    def stream_ended(self) -> None:
        """The server ended a stream with OK.

        WatchRun does that after the run's last event, also when resumed after
        it; StreamRunEvents never does on purpose, so its reader opens a new
        stream (after a backoff, like any other end).
        """
        if self._ends_with_run:
            self.finished = True


def _give_up_or_wait(
    err: grpc.RpcError, backoff: Backoff, lasted: float
) -> float:
    """The seconds to wait before the next stream; raises the client's error to stop."""
    code = err.code() if isinstance(err, (grpc.Call, grpc.aio.AioRpcError)) else None
    delay = backoff.failed(lasted) if code in RECONNECT_CODES else None
    if delay is None:
        raise error_from_rpc(err) from err
    return delay


def follow_sync(
    stub: WorkflowStateServiceStub, feed: EventFeed, policy: ReconnectPolicy
) -> Iterator[RunEvent]:
    """The events of ``feed``, over as many blocking streams as it takes."""
    backoff = Backoff(policy)
    while not feed.finished:
        started = time.monotonic()
        call = getattr(stub, feed.method)(feed.request())
        try:
            for response in call:
                event = feed.received(response)
                backoff.progress()
                yield event
                if feed.finished:
                    return
            feed.stream_ended()
            delay = 0.0 if feed.finished else backoff.failed(time.monotonic() - started) or 0.0
        except grpc.RpcError as err:
            delay = _give_up_or_wait(err, backoff, time.monotonic() - started)
        finally:
            # The caller may stop iterating at any event: end the stream then.
            call.cancel()
        if not feed.finished:
            time.sleep(delay)


async def follow_async(
    stub: WorkflowStateServiceAsyncStub, feed: EventFeed, policy: ReconnectPolicy
) -> AsyncIterator[RunEvent]:
    """The events of ``feed``, over as many ``grpc.aio`` streams as it takes."""
    backoff = Backoff(policy)
    while not feed.finished:
        started = time.monotonic()
        call = getattr(stub, feed.method)(feed.request())
        try:
            async for response in call:
                event = feed.received(response)
                backoff.progress()
                yield event
                if feed.finished:
                    return
            feed.stream_ended()
            delay = 0.0 if feed.finished else backoff.failed(time.monotonic() - started) or 0.0
        except grpc.RpcError as err:
            delay = _give_up_or_wait(err, backoff, time.monotonic() - started)
        finally:
            call.cancel()
        if not feed.finished:
            await asyncio.sleep(delay)
