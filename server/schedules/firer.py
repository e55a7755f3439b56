"""The background loop of every server that creates the runs of due schedules.

Every server runs it against the schedules in the database, so a schedule created through any
server fires whichever servers are up. Each pass reads up to BATCH due schedules (a read) and
handles each one's due occurrence with one statement that acts only if the schedule is still at
the occurrence it read and no other server holds it (schedules.sql fire_occurrence): of servers
racing for one occurrence exactly one makes its run. Between passes the loop sleeps until the
soonest schedule is due, at most `poll_interval` (a schedule created or resumed through another
server is seen within it), and is woken at once by changes made through this server.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Collection

from ..core import errors
from ..core.supervisor import Supervisor
from .store import ScheduleStore
from .timing import decide

log = logging.getLogger("workflowstate.server.schedules")

# Schedules handled per pass: each is one short statement; more wait for the next pass, at once.
BATCH = 100
# The shortest sleep between passes (seconds).
MIN_SLEEP = 0.01


class ScheduleFirer:
    """Creates the runs of due schedules while the server runs."""

    def __init__(
        self,
        store: ScheduleStore,
        *,
        poll_interval: float,
        on_runs_created: Callable[[Collection[uuid.UUID]], None] = lambda run_ids: None,
        supervisor: Supervisor | None = None,
        batch: int = BATCH,
    ) -> None:
        self.store = store
        self.poll_interval = poll_interval
        self._on_runs_created = on_runs_created
        self._supervisor = supervisor or Supervisor()
        self._batch = batch
        self._wake = asyncio.Event()
        # Schedules whose next occurrence could not be computed: skipped, and the loop then sleeps
        # its poll interval (they stay due, so sleeping "until the soonest" would be a busy loop).
        self._broken: set[str] = set()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = self._supervisor.start("schedules", self._run_forever)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.wait([self._task])

    def wake(self) -> None:
        """Look again now: a schedule was created or resumed through this server."""
        self._wake.set()

    async def tick(self) -> int:
        """Handle the schedules due now; return how many runs this server made."""
        created = 0
        previous, self._broken = self._broken, set()
        while True:
            due = await self.store.due(self._batch)
            handled = 0
            for schedule in due:
                try:
                    decision = decide(schedule.timing, schedule.next_fire_time, schedule.now, schedule.catch_up)
                except Exception:
                    # A stored schedule whose times cannot be computed any more (its timezone left
                    # the system's tz database): say so once, and let it not hold up the others.
                    if schedule.schedule_id not in previous | self._broken:
                        log.exception("cannot compute the next occurrence of a schedule", extra={"schedule_id": schedule.schedule_id})
                    self._broken.add(schedule.schedule_id)
                    continue
                fired = await self.store.fire(schedule, decision)
                if fired is None:
                    continue  # another server handled it, or holds it now
                handled += 1
                if fired.duplicate:
                    log.warning(
                        "an occurrence of a schedule had a run already: none made",
                        extra={"schedule_id": schedule.schedule_id, "schedule_time": str(decision.fire_time)},
                    )
                if fired.run_id is not None:
                    created += 1
                    # Committed (autocommit): this server's event readers hear at once.
                    self._on_runs_created((fired.run_id,))
            # A full batch may have more behind it; one whose schedules others held would only
            # be read again as it is, so that waits for the next pass.
            if len(due) < self._batch or handled == 0:
                return created

    async def _run_forever(self) -> None:
        while True:
            self._wake.clear()  # before the pass: a wake-up during it makes another pass
            try:
                await self.tick()
                wait = await self.store.seconds_to_next_due()
            except errors.WorkflowStateError as err:
                # The database is away: try again at the next poll.
                log.warning("could not fire the due schedules", extra={"reason": str(err)})
                wait = None
            # Never a busy loop: a schedule due now that another server holds is handled by it.
            sleep = self.poll_interval if wait is None or self._broken else min(max(wait, MIN_SLEEP), self.poll_interval)
            try:
                await asyncio.wait_for(self._wake.wait(), sleep)
            except TimeoutError:
                pass
