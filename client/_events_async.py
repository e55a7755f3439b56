"""Following run events with the asyncio client: the driver of an ``EventFeed`` over ``grpc.aio`` streams.

The blocking twin, ``_events_sync``, is generated from this module by
``scripts/async_to_sync.py``: change this one and run the script.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import grpc

from ._events import EventFeed, log, next_stream_delay
from ._reconnect import Backoff, OutageLog, ReconnectPolicy
from ._types import RunEvent

if TYPE_CHECKING:
    from workflowstate.v1.workflow_state_pb2_grpc import WorkflowStateServiceAsyncStub


async def follow_async(stub: WorkflowStateServiceAsyncStub, feed: EventFeed, policy: ReconnectPolicy) -> AsyncIterator[RunEvent]:
    """The events of ``feed``, over as many streams as it takes."""
    backoff = Backoff(policy)
    outage = OutageLog(log, feed.method)
    while not feed.finished:
        started = time.monotonic()
        call = getattr(stub, feed.method)(feed.request())
        try:
            async for response in call:
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
            await asyncio.sleep(delay)
