"""What the server's long-lived streams (Lease, StreamStepTasks) share: an event queue fed by the
client's messages and by the server's shutdown.

Each stream handler runs one loop over one queue of (kind, value) events; `stream_inputs` puts the
client's messages ("request", then "end") and the shutdown ("shutdown") in that queue.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import grpc

from ..core.shutdown import ShutdownNotifier


async def _read_requests(context: grpc.aio.ServicerContext, events: asyncio.Queue[tuple[str, Any]]) -> None:
    """Queue each client message as ("request", message), then ("end", None) when the client is done."""
    while True:
        message = await context.read()
        if message is grpc.aio.EOF:
            events.put_nowait(("end", None))
            return
        events.put_nowait(("request", message))


async def _forward(event: asyncio.Event, events: asyncio.Queue[tuple[str, Any]], kind: str) -> None:
    """Queue (kind, None) once event is set."""
    await event.wait()
    events.put_nowait((kind, None))


@contextlib.contextmanager
def stream_inputs(
    context: grpc.aio.ServicerContext, events: asyncio.Queue[tuple[str, Any]], notifier: ShutdownNotifier
) -> Iterator[None]:
    """While the block runs, queue the client's messages and the server's shutdown in events."""
    loop = asyncio.get_running_loop()
    shutdown = notifier.on_shutdown()
    reader = loop.create_task(_read_requests(context, events))
    shutdown_watch = loop.create_task(_forward(shutdown, events, "shutdown"))
    try:
        yield
    finally:
        reader.cancel()
        shutdown_watch.cancel()
        notifier.forget_shutdown_hook(shutdown)
