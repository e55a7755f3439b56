"""A plain step function run in a daemon thread of its own, awaited from the workflow.

Not ``asyncio.to_thread``: the loop's default executor is joined when ``asyncio.run`` ends, so a
function stuck in it would keep a process that was told twice to stop alive. A daemon thread
never holds the interpreter's exit; the function is simply abandoned with the process.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable
from typing import Any


async def in_daemon_thread(function: Callable[..., Any], *args: Any) -> Any:
    """``function(*args)`` in a new daemon thread, with the caller's context variables (``ctx.attempt``)."""
    loop = asyncio.get_running_loop()
    outcome: asyncio.Future[Any] = loop.create_future()
    context = contextvars.copy_context()

    def settle(result: Any, error: BaseException | None) -> None:
        if outcome.done():
            return  # the awaiting task was cancelled meanwhile
        if error is not None:
            outcome.set_exception(error)
        else:
            outcome.set_result(result)

    def call() -> None:
        try:
            result, error = context.run(function, *args), None
        except BaseException as raised:  # handed to the awaiting task, raised there
            result, error = None, raised
        try:
            loop.call_soon_threadsafe(settle, result, error)
        except RuntimeError:
            pass  # the loop is closed: the engine stopped without waiting for this function

    threading.Thread(target=call, name=f"step {getattr(function, '__name__', 'function')}", daemon=True).start()
    return await outcome
