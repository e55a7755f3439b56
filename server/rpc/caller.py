"""What a statement must know of the caller: whether it may take a worker's task, and, for a
worker's stream, which token it authenticated with.

Whether a step is a worker's task (a worker's stream holds it, or a connected worker serves its
rpc name and it is due) is known only in the statement that writes the step, so the auth
interceptor (auth.py) cannot refuse it up front. Around the calls that may write one, it marks a
caller whose role may not take worker tasks (worker_tasks_refused); the servicer passes the mark
to the store, whose statement refuses such a step. Without --auth-tokens nothing marks a call and
every caller may: no interceptor, no cost.

A worker's stream is marked with its token's fingerprint (credential): a worker takes back a task
of a stream still connected only under the same worker_id and token (dispatch.sql, adopt_tasks).

Context variables, not arguments: it is set in the task that serves the call and inherited by
the tasks a Batch runs its operations in.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

_TAKES_WORKER_TASKS: ContextVar[bool] = ContextVar("takes_worker_tasks", default=True)
_CREDENTIAL: ContextVar[str | None] = ContextVar("credential", default=None)


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


def credential() -> str | None:
    """The fingerprint of the token the call being served came with; None without auth."""
    return _CREDENTIAL.get()


@contextlib.contextmanager
def authenticated(fingerprint: str) -> Iterator[None]:
    """Within this block, the call being served came with the token of this fingerprint."""
    token = _CREDENTIAL.set(fingerprint)
    try:
        yield
    finally:
        _CREDENTIAL.reset(token)


__all__ = ["authenticated", "credential", "takes_worker_tasks", "worker_tasks_refused"]
