"""The event loop the server runs on: uvloop where it is installed, else asyncio's own.

The server's time per call is mostly its event loop and gRPC's callbacks on it; uvloop takes
10-20% off the server's CPU per unary call (measured: GetRun ~0.75 -> ~0.62 ms, a six-call
lifecycle ~7.1 -> ~6.4 ms of server CPU). It is a server extra on the platforms it supports;
without it (Windows, or a trimmed install) the server runs the same on asyncio's loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop factory when uvloop is installed; None for asyncio's default loop."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T]) -> T:
    """asyncio.run(main), on uvloop's loop when it is installed."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)
