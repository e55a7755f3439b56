"""The SQL side of remote mode: hand due steps to workers, keep their task leases, fail lost ones.

Each change is one statement of dispatch.sql. Dispatch (claim_tasks) moves steps to RUNNING
in the statement that picks them, with SKIP LOCKED, so no two workers get one attempt, whatever
the number of servers. A worker's completion goes through Store.set_step_status with its attempt
number as the fence.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..db.database import Database, Row
from ..state.store import FailureRecord


@dataclass(frozen=True)
class FailOutcome:
    """What fail_tasks did to one attempt it was given."""

    step_id: uuid.UUID
    attempt: int
    # The step's status and attempt before, None when no step has that id.
    prior_status: str | None
    prior_attempt: int | None
    run_status: str | None
    # The step's status after: 'scheduled' (retry), 'failed'; None when nothing was written.
    new_status: str | None


class TaskStore:
    """Remote-mode statements of dispatch.sql."""

    def __init__(self, database: Database) -> None:
        self._sql = database.statements(__package__, "dispatch.sql")

    async def claim(
        self, rpc_names: list[str], limit: int, *, worker_id: str, stream_id: uuid.UUID, task_lease: timedelta
    ) -> list[Row]:
        """Move up to `limit` due steps to RUNNING for this stream; return them, oldest due first."""
        return await self._sql.fetch_all(
            "claim_tasks",
            {"rpc_names": rpc_names, "limit": limit, "worker_id": worker_id, "stream_id": stream_id, "task_lease": task_lease},
        )

    async def next_due(self, rpc_names: list[str]) -> datetime | None:
        """When the next scheduled step of these rpc names falls due, if in the future."""
        row = await self._sql.fetch_one("next_task_due", {"rpc_names": rpc_names})
        return row["due"] if row else None

    async def extend(self, step_ids: list[uuid.UUID], stream_id: uuid.UUID, task_lease: timedelta) -> None:
        await self._sql.fetch_all("extend_tasks", {"step_ids": step_ids, "stream_id": stream_id, "task_lease": task_lease})

    async def adopt(
        self, attempts: list[tuple[uuid.UUID, int]], *, worker_id: str, stream_id: uuid.UUID, task_lease: timedelta
    ) -> list[tuple[uuid.UUID, int]]:
        """Make these attempts, still running and handed out, this stream's; return those adopted."""
        if not attempts:
            return []
        rows = await self._sql.fetch_all(
            "adopt_tasks",
            {
                "step_ids": [step_id for step_id, _ in attempts],
                "attempts": [attempt for _, attempt in attempts],
                "worker_id": worker_id,
                "stream_id": stream_id,
                "task_lease": task_lease,
            },
        )
        return [(row["step_id"], row["attempt_count"]) for row in rows]

    async def expired(self) -> list[tuple[uuid.UUID, int]]:
        """Handed-out attempts whose task lease passed (at most 100 at a time)."""
        rows = await self._sql.fetch_all("expired_tasks", {})
        return [(row["step_id"], row["attempt_count"]) for row in rows]

    async def fail(self, attempts: list[tuple[uuid.UUID, int]], error: FailureRecord, *, retryable: bool) -> list[FailOutcome]:
        """Fail these running attempts, retrying each while its step has retries left (if retryable)."""
        if not attempts:
            return []
        rows = await self._sql.fetch_all(
            "fail_tasks",
            {
                "step_ids": [step_id for step_id, _ in attempts],
                "attempts": [attempt for _, attempt in attempts],
                "error": error.to_json(),
                "retryable": retryable,
            },
        )
        found = {row["step_id"]: row for row in rows}
        outcomes = []
        for step_id, attempt in attempts:
            row = found.get(step_id)
            outcomes.append(
                FailOutcome(
                    step_id,
                    attempt,
                    row["prior_status"] if row else None,
                    row["prior_attempt"] if row else None,
                    row["run_status"] if row else None,
                    row["new_status"] if row else None,
                )
            )
        return outcomes


__all__ = ["FailOutcome", "TaskStore"]
