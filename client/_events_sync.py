# Generated from client/_events_async.py by scripts/async_to_sync.py: do not edit.
# Change client/_events_async.py and run `python scripts/async_to_sync.py`.
"""Following run events with the blocking client: the driver of an ``EventFeed`` over ``grpc`` streams."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import grpc

from ._events import EventFeed, log, next_stream_delay
from ._reconnect import Backoff, OutageLog, ReconnectPolicy
from ._types import RunEvent

if TYPE_CHECKING:
    from workflowstate.v1.workflow_state_pb2_grpc import WorkflowStateServiceStub


def follow_sync(stub: WorkflowStateServiceStub, feed: EventFeed, policy: ReconnectPolicy) -> Iterator[RunEvent]:
    """The events of ``feed``, over as many streams as it takes."""
    backoff = Backoff(policy)
    outage = OutageLog(log, feed.method)
    while not feed.finished:
        started = time.monotonic()
        call = getattr(stub, feed.method)(feed.request())
        try:
            for response in call:
                event = feed.received(response)
                backoff.progress()
                outage.connected()
                yield event
                if feed.finished:
                    return
            delay = next_stream_delay(feed, backoff, outage, time.monotonic() - started)
        except grpc.RpcError as err:
            delay = next_stream_delay(feed, backoff, outage, time.monotonic() - started, err)
        finally:
            # The caller may stop iterating at any event: end the stream then.
            call.cancel()
        if not feed.finished:
            time.sleep(delay)
