"""Database health: the standard grpc.health.v1 service follows whether PostgreSQL answers.

A monitor probes the database every interval on a connection of its own (Database.probe), so a
busy pool is not mistaken for an outage. A call that met an unreachable database, or a dead pooled
connection, wakes it at once, so the status flips to NOT_SERVING without waiting for the next
probe; while the database is down the monitor probes every UNHEALTHY_INTERVAL, so SERVING (and
calls) come back within about that long of PostgreSQL's return.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from grpc_health.v1 import health, health_pb2

from ..core.errors import Unavailable
from ..core.supervisor import Supervisor
from .metrics import Metrics
from ..db.database import Database

log = logging.getLogger("workflowstate.server.health")

SERVICE_NAMES = ("", "workflowstate.v1.WorkflowStateService")

# Seconds between probes while the database is down.
UNHEALTHY_INTERVAL = 0.25


class DatabaseHealth:
    """Keeps the health service's status in step with the database."""

    def __init__(
        self, database: Database, servicer: health.aio.HealthServicer, metrics: Metrics, *, interval: float, supervisor: Supervisor
    ) -> None:
        self._database = database
        self._metrics = metrics
        self._servicer = servicer
        self._interval = interval
        self._healthy: bool | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._supervisor = supervisor
        database.on_trouble(self._look_now)

    async def start(self) -> None:
        await self._check_once()
        self._task = self._supervisor.start("database-health", self._run)

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.wait([self._task], timeout=5)

    def report_unavailable(self, error: Exception) -> None:
        """Called by the servicer when a call could not reach the database."""
        self._look_now()

    def _look_now(self) -> None:
        # Once the database is known to be down, calls fail at once and each would ask again: the
        # monitor already probes every UNHEALTHY_INTERVAL then, which is often enough.
        if self._healthy is not False:
            self._wake.set()

    async def _run(self) -> None:
        while True:
            # While unhealthy, look again sooner so recovery shows quickly.
            wait = self._interval if self._healthy else min(self._interval, UNHEALTHY_INTERVAL)
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow the cancel that
            # stop() sends, and the monitor would then never end.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()
            self._wake.clear()
            await self._check_once()

    async def _check_once(self) -> None:
        try:
            await self._database.probe(timeout=max(self._interval, 1.0))
        except Unavailable as err:
            await self._set(False, str(err))
        else:
            await self._set(True, "")

    async def _set(self, healthy: bool, reason: str) -> None:
        if healthy == self._healthy:
            return
        self._healthy = healthy
        self._metrics.database_serving.set(1 if healthy else 0)
        status = health_pb2.HealthCheckResponse.SERVING if healthy else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in SERVICE_NAMES:
            await self._servicer.set(name, status)
        if healthy:
            log.info("database reachable; serving")
        else:
            log.error("database unreachable; not serving", extra={"reason": reason})
