"""SIGINT and SIGTERM as a worker's stop, for the duration of its ``run()``.

Without this a Ctrl-C lands in whatever gRPC is doing and ends the process
with a KeyboardInterrupt traceback, dropping the running handlers' results.
Handlers are installed only in the main thread (the only one Python delivers
signals to) and the previous ones come back when ``run()`` returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

log = logging.getLogger("workflowstate.client.worker")


def two_step_stop(
    owner: str, stopping: Callable[[], bool], ask_to_stop: Callable[[], None], abandon: Callable[[], None]
) -> Callable[[signal.Signals], None]:
    """What a stop signal does: the first asks for a graceful stop, the next abandons what still runs."""

    def on_signal(signum: signal.Signals) -> None:
        if not stopping():
            log.warning(
                "%s: %s received: finishing the running tasks, then stopping (send it again to stop at once)",
                owner,
                signum.name,
            )
            ask_to_stop()
        else:
            log.warning("%s: %s received again: stopping at once", owner, signum.name)
            abandon()

    return on_signal


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def signals_to_thread(on_signal: Callable[[signal.Signals], None], name: str) -> Iterator[None]:
    """While the block runs, call ``on_signal`` in a thread of its own for each stop signal.

    A Python signal handler runs in the main thread between two bytecodes,
    possibly while that thread holds the worker's lock: taking the lock there
    would deadlock. So the handler only puts the signal on a SimpleQueue
    (safe to call from a handler) and a relay thread does the work.
    """
    if not _in_main_thread():
        yield
        return
    received: queue.SimpleQueue[signal.Signals | None] = queue.SimpleQueue()

    def relay() -> None:
        while (signum := received.get()) is not None:
            on_signal(signum)

    def handle(signum: int, frame: Any) -> None:
        received.put(signal.Signals(signum))

    relay_thread = threading.Thread(target=relay, name=name, daemon=True)
    relay_thread.start()
    previous: dict[signal.Signals, Any] = {}
    try:
        for signum in STOP_SIGNALS:
            previous[signum] = signal.signal(signum, handle)
        yield
    finally:
        for signum, handler in previous.items():
            if handler is not None:  # None: a handler not installed from Python, which cannot be put back
                signal.signal(signum, handler)
        received.put(None)
        relay_thread.join()


@contextlib.contextmanager
def signals_to_loop(on_signal: Callable[[signal.Signals], None]) -> Iterator[None]:
    """While the block runs, call ``on_signal`` in the running event loop for each stop signal.

    Uses ``loop.add_signal_handler``; where the loop cannot (not the main
    thread, or a platform without it) nothing is installed.
    """
    loop = asyncio.get_running_loop()
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS} if _in_main_thread() else {}
    installed: list[signal.Signals] = []
    try:
        for signum in previous:
            try:
                loop.add_signal_handler(signum, on_signal, signum)
            except (NotImplementedError, RuntimeError, ValueError):
                continue
            installed.append(signum)
        yield
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
            # remove_signal_handler leaves the default; put back what was there (asyncio.run's own, say).
            if previous[signum] is not None:
                signal.signal(signum, previous[signum])
