"""Driving one bidirectional stream of the raw generated stub from the bench: expect, close."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc
import grpc.aio

CLOSE_TIMEOUT_S = 5.0


async def expect(call: Any, kind: str) -> Any:
    """The next response, which must be of this oneof kind; RuntimeError otherwise."""
    response = await call.read()
    if response is grpc.aio.EOF:
        raise RuntimeError(f"the stream ended ({await call.code()}) while waiting for {kind}")
    if response.WhichOneof("kind") != kind:
        raise RuntimeError(f"the stream answered {response.WhichOneof('kind')}, expected {kind}")
    return response


async def close(call: Any) -> None:
    """End the stream from our side and let the server finish it; cancel it if it takes long."""
    try:
        async with asyncio.timeout(CLOSE_TIMEOUT_S):
            await call.done_writing()
            while await call.read() is not grpc.aio.EOF:
                pass
    except (TimeoutError, grpc.RpcError, asyncio.InvalidStateError):
        pass
    finally:
        call.cancel()
