"""Driving one bidirectional stream of the raw generated stub from the bench: expect, close."""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar, cast

import grpc
import grpc.aio
from google.protobuf.message import Message

CLOSE_TIMEOUT_S = 5.0

Response = TypeVar("Response", bound=Message)


async def expect(call: grpc.aio.StreamStreamCall[Any, Response], kind: str) -> Response:
    """The next response, which must be of this oneof kind; RuntimeError otherwise."""
    read = await call.read()
    if read is grpc.aio.EOF:
        raise RuntimeError(f"the stream ended ({await call.code()}) while waiting for {kind}")
    # grpc's stubs type read() as `object | Response` (its EOF sentinel has no type of its own): past the
    # check above it is a response.
    response = cast(Response, read)
    if response.WhichOneof("kind") != kind:
        raise RuntimeError(f"the stream answered {response.WhichOneof('kind')}, expected {kind}")
    return response


async def close(call: grpc.aio.StreamStreamCall[Any, Any]) -> None:
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
