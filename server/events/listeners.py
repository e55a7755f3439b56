"""Which runs' events this server wants NOTIFYed: kept in the table of followed runs, in the background.

The run-event trigger sends a NOTIFY only for runs some server follows (see events.sql,
follow_runs), so a server writes there the runs its readers follow, under the backend pid of its
LISTEN connection. Readers never wait for it: one background task brings the table in line with
what is wanted, and after it adds runs it calls on_followed with them, so their readers read once
more: an event that committed before the row did sent no NOTIFY. When the LISTEN connection is new
(a start or a reconnect), the task first deletes the rows of connections that are gone (its own
old ones among them) and writes every followed run again under the new pid. While there is no
LISTEN connection, or the table cannot be written, readers are woken by the event pump as before.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable

from ..core import errors
from .store import EventStore

log = logging.getLogger("workflowstate.server.events")


class FollowedRuns:
    """The runs whose events this server wants notified, and their rows in the table."""

    def __init__(
        self,
        events: EventStore,
        listener_pid: Callable[[], int | None],
        on_followed: Callable[[set[uuid.UUID]], None],
        *,
        retry_interval: float,
    ) -> None:
        self._events = events
        self._listener_pid = listener_pid
        self._on_followed = on_followed
        self._retry_interval = retry_interval
        self._wanted: set[uuid.UUID] = set()
        self._changed = asyncio.Event()

    def want(self, run_id: uuid.UUID) -> None:
        self._wanted.add(run_id)
        self._changed.set()

    def drop(self, run_id: uuid.UUID) -> None:
        self._wanted.discard(run_id)
        self._changed.set()

    def listener_changed(self) -> None:
        """The LISTEN connection (re)connected: write the rows again under its pid."""
        self._changed.set()

    async def keep_in_line(self) -> None:
        """Bring the table in line with the wanted runs whenever either changes, for ever."""
        written_pid: int | None = None
        written: set[uuid.UUID] = set()
        while True:
            await self._changed.wait()
            self._changed.clear()
            pid = self._listener_pid()
            if pid is None:
                continue  # no LISTEN connection: its reconnect calls listener_changed
            try:
                if pid != written_pid:
                    await self._events.forget_gone_listeners()
                    written_pid, written = pid, set()
                wanted = set(self._wanted)
                added, removed = wanted - written, written - wanted
                if added:
                    await self._events.follow_runs(pid, added)
                    written |= added
                if removed:
                    await self._events.unfollow_runs(pid, removed)
                    written -= removed
            except errors.WorkflowStateError as err:
                log.warning(
                    "cannot write the runs this server follows; their readers wait for the pump", extra={"reason": str(err)}
                )
                self._changed.set()
                await asyncio.sleep(self._retry_interval)
                continue
            if added:
                self._on_followed(added)


__all__ = ["FollowedRuns"]
