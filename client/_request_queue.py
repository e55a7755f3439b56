"""The request side of a client stream: a queue the driver fills and gRPC drains, ``None`` half-closes.

The ``merged`` variants hand gRPC, each time it asks, every message queued by then, through
``merge`` (which may put several into one): the messages that piled up while gRPC was sending the
previous one, or that were queued in the same turn of the event loop, go out together. A message
queued alone is sent at once, as with the plain variants.
"""

from __future__ import annotations

import asyncio
import queue
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TypeVar

M = TypeVar("M")

Merge = Callable[[list[M]], list[M]]


def until_none(requests: queue.Queue[M | None]) -> Iterator[M]:
    """The messages of ``requests`` until ``None``, for a blocking stream (gRPC pulls them in its own thread)."""
    while (request := requests.get()) is not None:
        yield request


async def until_none_async(requests: asyncio.Queue[M | None]) -> AsyncIterator[M]:
    """The messages of ``requests`` until ``None``, for a ``grpc.aio`` stream."""
    while (request := await requests.get()) is not None:
        yield request


def until_none_merged(requests: queue.Queue[M | None], merge: Merge[M]) -> Iterator[M]:
    """As :func:`until_none`, each batch of messages queued by the time gRPC asks merged."""
    while (first := requests.get()) is not None:
        pending, ended = _drain(first, requests.get_nowait, queue.Empty)
        yield from merge(pending)
        if ended:
            return


async def until_none_merged_async(requests: asyncio.Queue[M | None], merge: Merge[M]) -> AsyncIterator[M]:
    """As :func:`until_none_async`, each batch of messages queued by the time gRPC asks merged."""
    while (first := await requests.get()) is not None:
        pending, ended = _drain(first, requests.get_nowait, asyncio.QueueEmpty)
        for request in merge(pending):
            yield request
        if ended:
            return


def _drain(first: M, get_nowait: Callable[[], M | None], empty: type[Exception]) -> tuple[list[M], bool]:
    """``first`` and every message queued after it now; True when ``None`` (the end) was among them."""
    pending = [first]
    while True:
        try:
            request = get_nowait()
        except empty:
            return pending, False
        if request is None:
            return pending, True
        pending.append(request)
