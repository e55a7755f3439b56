"""The request side of a client stream: a queue the driver fills and gRPC drains, ``None`` half-closes."""

from __future__ import annotations

import asyncio
import queue
from collections.abc import AsyncIterator, Iterator
from typing import TypeVar

M = TypeVar("M")


def until_none(requests: queue.Queue[M | None]) -> Iterator[M]:
    """The messages of ``requests`` until ``None``, for a blocking stream (gRPC pulls them in its own thread)."""
    while (request := requests.get()) is not None:
        yield request


async def until_none_async(requests: asyncio.Queue[M | None]) -> AsyncIterator[M]:
    """The messages of ``requests`` until ``None``, for a ``grpc.aio`` stream."""
    while (request := await requests.get()) is not None:
        yield request
