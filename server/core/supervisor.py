"""Background loops that do not die silently: run a named loop, restart it when it fails.

The server's loops (LISTEN connection, lost-task sweeper, event pump and pruner, lease waiter
refresh, retries of failed clean-ups, health monitor) catch the errors they expect, such as a
database outage, themselves. Any other exception would end the task without a word, and the work
it does (for example retrying the attempts of lost workers) would stop for good. A supervised loop is logged with its name and
stack instead, and started again after a delay that doubles with each failure up to a cap, and
falls back to the first delay once the loop has run healthily for a while. A cancel stops it.

Callbacks, not imports, tell the caller's metrics about restarts: core imports nothing of the server.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("workflowstate.server.supervisor")

LoopFactory = Callable[[], Coroutine[Any, Any, None]]


@dataclass(frozen=True)
class RestartPolicy:
    """When a failed loop starts again."""

    first_delay: float = 0.1
    max_delay: float = 10.0
    # A loop that ran this long before failing was healthy: its next delay is first_delay again.
    healthy_after: float = 30.0

    def next_delay(self, previous: float | None, ran_for: float) -> float:
        if previous is None or ran_for >= self.healthy_after:
            return self.first_delay
        return min(previous * 2, self.max_delay)


def _ignore(*args: Any) -> None:
    return None


class Supervisor:
    """Starts supervised loops; one per server, shared by the capabilities that run loops."""

    def __init__(
        self,
        policy: RestartPolicy | None = None,
        *,
        on_restart: Callable[[str], None] = _ignore,
        on_running: Callable[[str, bool], None] = _ignore,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy or RestartPolicy()
        # on_restart(name) once per restart; on_running(name, running) when a loop starts or stops
        # running (False while it waits to restart, and once it ended).
        self._on_restart = on_restart
        self._on_running = on_running
        self._clock = clock

    def start(self, name: str, factory: LoopFactory) -> asyncio.Task[None]:
        """Run factory() in a task named name, again after each unexpected failure, until cancelled.
        A loop that returns is done and is not restarted."""
        return asyncio.create_task(self.supervise(name, factory), name=name)

    async def supervise(self, name: str, factory: LoopFactory) -> None:
        delay: float | None = None
        try:
            while True:
                started = self._clock()
                self._on_running(name, True)
                try:
                    await factory()
                    return
                except Exception:
                    ran_for = self._clock() - started
                    delay = self.policy.next_delay(delay, ran_for)
                    self._on_running(name, False)
                    self._on_restart(name)
                    log.exception(
                        "background task failed; restarting it",
                        extra={"task": name, "ran_for_s": round(ran_for, 3), "restart_in_s": delay},
                    )
                await asyncio.sleep(delay)
        finally:
            self._on_running(name, False)


__all__ = ["LoopFactory", "RestartPolicy", "Supervisor"]
