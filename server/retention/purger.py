"""The background loop of every server that erases the runs the retention policies match.

Every server runs it, each tick reading the policies from the database (so a policy set through
any server applies everywhere at the next tick). The work per tick is bounded: batches of at most
BATCH runs, each its own short transaction that waits for no lock (retention.sql), a short pause
between them so the runs' writers get the database too, and at most MAX_BATCHES_PER_TICK batches
per tick; what is left is erased on the next ticks. Two servers' batches skip each other's runs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from ..core import errors
from ..core.supervisor import Supervisor
from .store import Policy, RetentionStore

log = logging.getLogger("workflowstate.server.retention")

# Runs per statement: each is erased with its steps, attempts and events, so a batch is a few
# thousand rows at most, a transaction of milliseconds.
BATCH = 500
MAX_BATCHES_PER_TICK = 20
PAUSE_BETWEEN_BATCHES = 0.05


class RetentionPurger:
    """Applies the retention policies every `interval` seconds while the server runs."""

    def __init__(
        self,
        store: RetentionStore,
        *,
        interval: float,
        on_erased: Callable[[int], None] = lambda count: None,
        supervisor: Supervisor | None = None,
        batch: int = BATCH,
    ) -> None:
        self.store = store
        self.interval = interval
        self._on_erased = on_erased
        self._supervisor = supervisor or Supervisor()
        self._batch = batch
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = self._supervisor.start("retention", self._run_forever)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.wait([self._task])

    async def tick(self) -> int:
        """Apply every policy once, within this tick's budget; return how many runs were erased."""
        policies = [Policy.of(row) for row in await self.store.list_policies()]
        erased, batches = 0, 0
        for policy in policies:
            while batches < MAX_BATCHES_PER_TICK:
                run_ids = await self.store.erase_expired(policy, self._batch)
                batches += 1
                if run_ids:
                    erased += len(run_ids)
                    self._on_erased(len(run_ids))
                if len(run_ids) < self._batch:
                    break  # this policy is done for now (or what is left is held by others)
                await asyncio.sleep(PAUSE_BETWEEN_BATCHES)
        if erased:
            log.info("erased runs past their retention", extra={"runs": erased, "policies": len(policies)})
        return erased

    async def _run_forever(self) -> None:
        while True:
            try:
                await self.tick()
            except errors.WorkflowStateError as err:
                # The database is away, or a batch gave way to a writer (ABORTED): next tick.
                log.warning("could not apply the retention policies", extra={"reason": str(err)})
            await asyncio.sleep(self.interval)
