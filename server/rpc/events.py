"""Run events: WatchRun (one run's events until it finishes) and StreamRunEvents (every run's, or
one workflow's, for as long as the caller listens), both resumable after an event already seen."""

from __future__ import annotations

import contextlib
from typing import Any

import grpc

from workflowstate import v1 as pb

from ..db.database import with_deadline
from ..events.watchers import EventWatchers
from ..state.store import StateStore
from ..state.transitions import TERMINAL_RUN_STATUSES, RunStatus
from . import convert, validation
from .handlers import handles


class EventRpcs:
    """The event streams, over this server's watchers.

    A stream outlives its call's deadline check: only its opening reads are bound by the deadline
    here (the wrapper bounds unary calls only), never the feeds it then follows, which are shared
    with other readers."""

    def __init__(self, store: StateStore, watchers: EventWatchers) -> None:
        self._store = store
        self._watchers = watchers

    @handles("WatchRun")
    async def watch_run(
        self, request: pb.WatchRunRequest, context: grpc.aio.ServicerContext[pb.WatchRunRequest, pb.WatchRunResponse]
    ) -> None:
        run_id = validation.parse_uuid("run_id", request.run_id)
        after_event_id = validation.check_event_id("after_event_id", request.after_event_id)
        await with_deadline(self._store.get_run(run_id), context.time_remaining())
        start, seen = await with_deadline(self._watchers.events.position_of(after_event_id, run_id=run_id), context.time_remaining())
        if seen is not None and _finishes_run(seen):
            return  # nothing can follow the event that finished the run
        async with contextlib.aclosing(self._watchers.watch_run(run_id, start)) as events:
            async for row in events:
                await context.write(pb.WatchRunResponse(event=convert.event_to_proto(row)))
                if _finishes_run(row):
                    return

    @handles("StreamRunEvents")
    async def stream_run_events(
        self,
        request: pb.StreamRunEventsRequest,
        context: grpc.aio.ServicerContext[pb.StreamRunEventsRequest, pb.StreamRunEventsResponse],
    ) -> None:
        workflow = validation.check_name("workflow", request.workflow, required=False) or None
        after_event_id = validation.check_event_id("after_event_id", request.after_event_id)
        start, _ = await with_deadline(self._watchers.events.position_of(after_event_id), context.time_remaining())
        events = self._watchers.events
        with self._watchers.watching(None) as wake:
            async for row in self._watchers.follow(lambda after, limit: events.of_all(workflow, after, limit), start, wake):
                await context.write(pb.StreamRunEventsResponse(event=convert.event_to_proto(row)))


def _finishes_run(event: Any) -> bool:
    """Whether an event row is the run's move to a finished status (no event can follow it)."""
    return event["step_id"] is None and RunStatus(event["status"]) in TERMINAL_RUN_STATUSES


__all__ = ["EventRpcs"]
