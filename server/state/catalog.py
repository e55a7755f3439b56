"""The operator's view of runs: list them by filter, a page at a time (catalog.sql).

Beside store.py, which makes the workflow's own reads and writes, one statement each; this module
answers the questions of the people who run the server (which runs failed today?) and makes their
changes in bulk. It speaks Python values and returns rows as dicts, as the store does.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..core import errors
from ..db.database import Database, Row
from .outcomes import Op, Outcome, OutcomeBug, Write, checked
from .store import FailureRecord, RunsChanged, ignore_runs_changed
from .transitions import RunStatus, RunVia, StepStatus, open_run_statuses, run_sources, run_target

# A run with a step in one of these is being moved by someone: it is not stalled (ListStalledRuns).
MOVING_STEP_STATUSES = frozenset({StepStatus.RUNNING, StepStatus.SCHEDULED, StepStatus.SUSPENDED})

# The error a cancelled run carries: the operator's reason, with this code.
CANCELLED_CODE = "CANCELLED"


@dataclass(frozen=True)
class RunFilter:
    """Which runs a list is about: every field set must match; None (or empty) matches all."""

    workflow: str | None = None
    statuses: frozenset[RunStatus] = frozenset()
    created_after: datetime | None = None  # inclusive
    created_before: datetime | None = None  # exclusive
    updated_after: datetime | None = None  # inclusive
    updated_before: datetime | None = None  # exclusive

    def params(self) -> dict[str, Any]:
        return {
            "workflow": self.workflow,
            "statuses": sorted(status.value for status in self.statuses) or None,
            "created_after": self.created_after,
            "created_before": self.created_before,
            "updated_after": self.updated_after,
            "updated_before": self.updated_before,
        }


@dataclass(frozen=True)
class RunPosition:
    """Where a page ends in the order of runs: the last run it held (create_time, run_id is unique)."""

    create_time: datetime
    run_id: uuid.UUID

    @classmethod
    def of(cls, row: Row) -> RunPosition:
        return cls(row["create_time"], row["run_id"])


class RunCatalog:
    """Lists of runs, one named statement of catalog.sql each."""

    def __init__(self, database: Database, *, on_runs_changed: RunsChanged = ignore_runs_changed) -> None:
        self._sql = database.statements(__package__, "catalog.sql")
        self._on_runs_changed = on_runs_changed

    async def list_steps(self, run_id: uuid.UUID) -> list[Row]:
        """Every step of the run, in insertion order; NotFound for an unknown run."""
        rows = await self._sql.fetch_all("list_steps", {"run_id": run_id})
        if not rows:
            raise errors.NotFound(f"run {run_id} not found")
        return [row for row in rows if row["step_id"] is not None]

    async def count_runs(self) -> dict[str, dict[RunStatus, int]]:
        """{workflow: {status: runs}} for every workflow that has runs, by name; every status present."""
        counts: dict[str, dict[RunStatus, int]] = {}
        for row in await self._sql.fetch_all("count_runs_by_workflow", {}):
            counts.setdefault(row["workflow"], dict.fromkeys(RunStatus, 0))[RunStatus(row["status"])] = row["runs"]
        return counts

    async def list_runs(
        self, runs: RunFilter, *, newest_first: bool, after: RunPosition | None, limit: int, full: bool
    ) -> list[Row]:
        """Up to `limit` runs that match, past `after` (None: from the first) in the order asked."""
        params = {
            **runs.params(),
            "after_time": after.create_time if after else None,
            "after_id": after.run_id if after else None,
            "limit": limit,
            "full": full,
        }
        name = ("list_runs_of_workflow" if runs.workflow is not None else "list_runs") + ("_newest_first" if newest_first else "_oldest_first")
        return await self._sql.fetch_all(name, params)

    # Engine reads.

    async def list_stalled_runs(self, updated_before: datetime, limit: int) -> list[uuid.UUID]:
        """Running runs with no step moving and no change since updated_before, oldest change first."""
        params = {"updated_before": updated_before, "limit": limit, "moving_statuses": sorted(s.value for s in MOVING_STEP_STATUSES)}
        return [row["run_id"] for row in await self._sql.fetch_all("list_stalled_runs", params)]

    async def list_undispatched_steps(self, updated_before: datetime, limit: int) -> list[Row]:
        """Pending steps of running runs unchanged since updated_before, oldest change first (run_id, step_id)."""
        return await self._sql.fetch_all("list_undispatched_steps", {"updated_before": updated_before, "limit": limit})

    # Cancelling.

    @staticmethod
    def _cancel_params(reason: str) -> dict[str, Any]:
        target = run_target(RunVia.CANCEL)
        return {
            "to_status": target.value,
            "from_statuses": run_sources(target, RunVia.CANCEL),
            "open_run_statuses": open_run_statuses(),
            "error": FailureRecord(reason, code=CANCELLED_CODE).to_json(),
        }

    async def cancel_run(self, run_id: uuid.UUID, reason: str) -> Row:
        """Cancel a running run (its event in the same statement); a cancelled one is left as it is.
        NotFound for an unknown run, FailedPrecondition for a run finished otherwise."""
        params = {"run_id": run_id, **self._cancel_params(reason)}
        write = Write(Op.UPDATE_RUN, run_id, run_target(RunVia.CANCEL).value)
        row = checked(await self._sql.fetch_one("cancel_run", params), write)
        if row["outcome"] == Outcome.CHANGED:
            self._on_runs_changed((run_id,))
        return row

    async def cancel_runs(self, runs: RunFilter, max_runs: int, reason: str) -> list[uuid.UUID]:
        """Cancel up to max_runs running runs that match, oldest first; return their ids."""
        params = {**runs.params(), **self._cancel_params(reason), "max_runs": max_runs}
        cancelled = [row["run_id"] for row in await self._sql.fetch_all("cancel_runs", params)]
        if cancelled:
            self._on_runs_changed(cancelled)
        return cancelled

    # Deleting.

    async def delete_run(self, run_id: uuid.UUID, *, force: bool) -> None:
        """Erase a run with its steps, attempts and events (one statement). NotFound for an unknown
        run; FailedPrecondition for a running one without force."""
        row = await self._sql.fetch_one("delete_run", {"run_id": run_id, "force": force, "open_run_statuses": open_run_statuses()})
        outcome, status = (row["outcome"], row["status"]) if row else (None, None)
        if outcome == "missing":
            raise errors.NotFound(f"run {run_id} not found")
        if outcome == "running":
            raise errors.FailedPrecondition(f"run {run_id} is {str(status).upper()}; cancel it first, or delete it with force; nothing was erased")
        if outcome != "deleted":
            raise OutcomeBug(f"unknown outcome {outcome!r} of delete run")

    async def delete_runs(self, runs: RunFilter, max_runs: int, *, force: bool) -> list[uuid.UUID]:
        """Erase up to max_runs runs that match, oldest first (running ones only with force); their ids."""
        params = {**runs.params(), "max_runs": max_runs, "force": force, "open_run_statuses": open_run_statuses()}
        rows = await self._sql.fetch_all("delete_runs", params)
        return [row["run_id"] for row in sorted(rows, key=lambda row: (row["create_time"], row["run_id"]))]


__all__ = ["CANCELLED_CODE", "RunCatalog", "RunFilter", "RunPosition"]
