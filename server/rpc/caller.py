"""What the caller may do that only a statement can decide: whether it may take a worker's task.

Whether a step is a worker's task (a worker's stream holds it, or a connected worker serves its
rpc name and it is due) is known only in the statement that writes the step, so the auth
interceptor (auth.py) cannot refuse it up front. Around the calls that may write one, it marks a
caller whose role may not take worker tasks (worker_tasks_refused); the servicer passes the mark
to the store, whose statement refuses such a step. Without --auth-tokens nothing marks a call and
every caller may: no interceptor, no cost.

A context variable, not an argument: it is set in the task that serves the call and inherited by
the tasks a Batch runs its operations in.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

_TAKES_WORKER_TASKS: ContextVar[bool] = ContextVar("takes_worker_tasks", default=True)


def takes_worker_tasks() -> bool:
    """Whether the call being served may take a worker's task (claim it, set its status)."""
    return _TAKES_WORKER_TASKS.get()


@contextlib.contextmanager
def worker_tasks_refused() -> Iterator[None]:
    """Within this block, the call being served may not take a worker's task."""
    token = _TAKES_WORKER_TASKS.set(False)
    try:
        yield
    finally:
        _TAKES_WORKER_TASKS.reset(token)


__all__ = ["takes_worker_tasks", "worker_tasks_refused"]
