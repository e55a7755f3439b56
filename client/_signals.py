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
import os
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
    """What a stop signal does: the first asks for a graceful stop, the next abandons what still runs, a third exits.

    The third is for a process the second could not end: a handler that blocks the event loop (so
    the stop never runs there), or a thread that holds the interpreter's exit. It ends the process
    at once, with the shell's code for death by that signal. The returned function is called from
    one thread only (the relay of :func:`signals_to_thread`), never inside a Python signal handler.
    """
    stage = 0

    def on_signal(signum: signal.Signals) -> None:
        nonlocal stage
        # A stop asked for in code (stop()) counts as the first step.
        stage = max(stage, 1 if stopping() else 0) + 1
        if stage == 1:
            log.warning(
                "%s: %s received: finishing the running tasks, then stopping (send it again to stop at once)",
                owner,
                signum.name,
            )
            ask_to_stop()
        elif stage == 2:
            log.warning("%s: %s received again: stopping at once (send it again to exit without waiting)", owner, signum.name)
            abandon()
        else:
            log.warning("%s: %s received a third time: exiting now, without waiting for anything", owner, signum.name)
            logging.shutdown()  # flushes the log handlers; os._exit skips that
            os._exit(128 + signum)

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
def signals_to_loop(
    owner: str, stopping: Callable[[], bool], ask_to_stop: Callable[[], None], abandon: Callable[[], None]
) -> Iterator[None]:
    """While the block runs, stop signals do what :func:`two_step_stop` says, its actions run in the running loop.

    Not ``loop.add_signal_handler``: its callback runs only when the loop gets to it, so a handler
    that blocks the loop would make every signal go unheard. The relay thread of
    :func:`signals_to_thread` counts and logs the signals itself and hands the actions to the loop.
    """
    loop = asyncio.get_running_loop()

    def in_loop(action: Callable[[], None]) -> Callable[[], None]:
        def schedule() -> None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nothing is left to stop
                loop.call_soon_threadsafe(action)

        return schedule

    on_signal = two_step_stop(owner, stopping, in_loop(ask_to_stop), in_loop(abandon))
    with signals_to_thread(on_signal, f"signals {owner}"):
        yield
