"""Following run events (``watch_run``, ``stream_run_events``) across reconnects: the logic without I/O.

``EventFeed`` is where a reader is: the request that resumes after the last
event received, what a response means, whether the feed is over;
``next_stream_delay`` decides what the end of a stream means. The drivers
(``_events_async``, and ``_events_sync`` generated from it) only open streams,
read them, and wait between tries; when the server goes away (UNAVAILABLE)
they open a new stream that resumes after the last event received, so the
caller sees every event once, in order.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import grpc
import grpc.aio
from google.protobuf.message import Message

from workflowstate import v1 as pb

from ._convert import run_event_from_proto
from ._errors import error_from_rpc
from ._reconnect import RECONNECT_CODES, Backoff, OutageLog
from ._types import RunEvent

log = logging.getLogger("workflowstate.client.events")


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


def next_stream_delay(
    feed: EventFeed, backoff: Backoff, outage: OutageLog, lasted: float, err: grpc.RpcError | None = None
) -> float:
    """After a stream of ``feed`` ended (with ``err``, or OK): the seconds to wait before the next one.

    Raises the client's error when the end is not worth a new stream.
    """
    if err is None:
        feed.stream_ended()
        if feed.finished:
            outage.connected()
            return 0.0
        code, details = grpc.StatusCode.OK, "the server ended the stream"
        delay = backoff.failed(lasted) or 0.0
    elif (
        isinstance(err, (grpc.Call, grpc.aio.AioRpcError))
        and err.code() in RECONNECT_CODES
        and (retry_in := backoff.failed(lasted)) is not None
    ):
        code, details, delay = err.code(), err.details() or "", retry_in
    else:
        raise error_from_rpc(err) from err
    outage.failed(code, details, delay)
    return delay
