"""The operator's view of runs: list them by filter, a page at a time (catalog.sql).

Beside store.py, which makes the workflow's own reads and writes, one statement each; this module
answers the questions of the people who run the server (which runs failed today?) and makes their
changes in bulk. It speaks Python values and returns rows as dicts, as the store does.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from ..core import errors
from ..db.database import Database
from ..db.params import NO_INPUT, NoInput
from .inputs import (
    MOVING_STEP_STATUSES,
    CancelRunInput,
    CancelRunsInput,
    DeleteRunInput,
    DeleteRunsInput,
    ListRunsInput,
    ListRunsOfWorkflowInput,
    RunFilterInput,
    RunIdInput,
    StalledRunsInput,
    UndispatchedStepsInput,
)
from .outcomes import Op, Outcome, OutcomeBug, Write, checked, missing
from .rows import (
    DeletedRunRow,
    RunCancelRow,
    RunCountRow,
    RunDeleteRow,
    RunIdRow,
    RunSummary,
    StalledRunRow,
    StepRecord,
    UndispatchedStepRow,
)
from .store import FailureRecord, RunsChanged, ignore_runs_changed
from .transitions import RunStatus, RunVia, run_target

# The statements' names of the orders a list may ask for, by newest first.
_ORDERS = {True: "newest_first", False: "oldest_first"}

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

    def input(self) -> RunFilterInput:
        """The filter as the statements take it (its workflow aside)."""
        return RunFilterInput(
            statuses=sorted(status.value for status in self.statuses) or None,
            created_after=self.created_after,
            created_before=self.created_before,
            updated_after=self.updated_after,
            updated_before=self.updated_before,
        )


@dataclass(frozen=True)
class RunPosition:
    """Where a page ends in the order of runs: the last run it held (create_time, run_id is unique)."""

    create_time: datetime
    run_id: uuid.UUID

    @classmethod
    def of(cls, row: RunSummary) -> RunPosition:
        return cls(row["create_time"], row["run_id"])


class RunCatalog:
    """Lists of runs, one named statement of catalog.sql each."""

    def __init__(self, database: Database, *, on_runs_changed: RunsChanged = ignore_runs_changed) -> None:
        sql = database.statements(__package__, "catalog.sql")
        self._on_runs_changed = on_runs_changed
        # One statement per direction and workflow filter (catalog.sql says why), by newest first.
        self._list_runs = {
            newest_first: sql.query(f"list_runs_{order}", ListRunsInput, RunSummary) for newest_first, order in _ORDERS.items()
        }
        self._list_runs_of_workflow = {
            newest_first: sql.query(f"list_runs_of_workflow_{order}", ListRunsOfWorkflowInput, RunSummary)
            for newest_first, order in _ORDERS.items()
        }
        self._list_steps = sql.query("list_steps", RunIdInput, StepRecord)
        self._count_runs = sql.query("count_runs_by_workflow", NoInput, RunCountRow)
        self._list_stalled_runs = sql.query("list_stalled_runs", StalledRunsInput, StalledRunRow)
        self._list_undispatched_steps = sql.query("list_undispatched_steps", UndispatchedStepsInput, UndispatchedStepRow)
        self._cancel_run = sql.query("cancel_run", CancelRunInput, RunCancelRow)
        self._cancel_runs = sql.query("cancel_runs", CancelRunsInput, RunIdRow)
        self._delete_run = sql.query("delete_run", DeleteRunInput, RunDeleteRow)
        self._delete_runs = sql.query("delete_runs", DeleteRunsInput, DeletedRunRow)

    async def list_steps(self, run_id: uuid.UUID) -> list[StepRecord]:
        """Every step of the run, in insertion order; NotFound for an unknown run."""
        rows = await self._list_steps.all(RunIdInput(run_id))
        if not rows:
            raise missing(f"run {run_id} not found", run_id=run_id)
        return [row for row in rows if row["step_id"] is not None]

    async def count_runs(self) -> dict[str, dict[RunStatus, int]]:
        """{workflow: {status: runs}} for every workflow that has runs, by name; every status present."""
        counts: dict[str, dict[RunStatus, int]] = {}
        for row in await self._count_runs.all(NO_INPUT):
            counts.setdefault(row["workflow"], dict.fromkeys(RunStatus, 0))[RunStatus(row["status"])] = row["runs"]
        return counts

    async def list_runs(
        self, runs: RunFilter, *, newest_first: bool, after: RunPosition | None, limit: int, full: bool
    ) -> list[RunSummary]:
        """Up to `limit` runs that match, past `after` (None: from the first) in the order asked."""
        after_time, after_id = (after.create_time, after.run_id) if after else (None, None)
        if runs.workflow is None:
            return await self._list_runs[newest_first].all(ListRunsInput(runs.input(), limit, full, after_time, after_id))
        item = ListRunsOfWorkflowInput(runs.input(), limit, full, after_time, after_id, workflow=runs.workflow)
        return await self._list_runs_of_workflow[newest_first].all(item)

    # Engine reads.

    async def list_stalled_runs(self, updated_before: datetime, limit: int) -> list[uuid.UUID]:
        """Running runs with no step moving and no change since updated_before, oldest change first."""
        return [row["run_id"] for row in await self._list_stalled_runs.all(StalledRunsInput(updated_before, limit))]

    async def list_undispatched_steps(self, updated_before: datetime, limit: int) -> list[UndispatchedStepRow]:
        """Pending steps of running runs unchanged since updated_before, oldest change first (run_id, step_id)."""
        return await self._list_undispatched_steps.all(UndispatchedStepsInput(updated_before, limit))

    # Cancelling.

    @staticmethod
    def _cancel_error(reason: str) -> str:
        return FailureRecord(reason, code=CANCELLED_CODE).to_json()

    async def cancel_run(self, run_id: uuid.UUID, reason: str) -> RunCancelRow:
        """Cancel a running run (its event in the same statement); a cancelled one is left as it is.
        NotFound for an unknown run, FailedPrecondition for a run finished otherwise."""
        write = Write(Op.UPDATE_RUN, run_id, run_target(RunVia.CANCEL).value)
        row = checked(await self._cancel_run.one(CancelRunInput(run_id, self._cancel_error(reason))), write)
        if row["outcome"] == Outcome.CHANGED:
            self._on_runs_changed((run_id,))
        return row

    async def cancel_runs(self, runs: RunFilter, max_runs: int, reason: str) -> list[uuid.UUID]:
        """Cancel up to max_runs running runs that match, oldest first; return their ids."""
        item = CancelRunsInput(runs.workflow, runs.input(), self._cancel_error(reason), max_runs)
        cancelled = [row["run_id"] for row in await self._cancel_runs.all(item)]
        if cancelled:
            self._on_runs_changed(cancelled)
        return cancelled

    # Deleting.

    async def delete_run(self, run_id: uuid.UUID, *, force: bool) -> None:
        """Erase a run with its steps, attempts and events (one statement). NotFound for an unknown
        run; FailedPrecondition for a running one without force."""
        row = await self._delete_run.one(DeleteRunInput(run_id, force))
        outcome, status = (row["outcome"], row["status"]) if row else (None, None)
        if outcome == "missing":
            raise missing(f"run {run_id} not found", run_id=run_id)
        if outcome == "running":
            raise errors.FailedPrecondition(f"run {run_id} is {str(status).upper()}; cancel it first, or delete it with force; nothing was erased")
        if outcome != "deleted":
            raise OutcomeBug(f"unknown outcome {outcome!r} of delete run")

    async def delete_runs(self, runs: RunFilter, max_runs: int, *, force: bool) -> list[uuid.UUID]:
        """Erase up to max_runs runs that match, oldest first (running ones only with force); their ids."""
        rows = await self._delete_runs.all(DeleteRunsInput(runs.workflow, runs.input(), max_runs, force))
        return [row["run_id"] for row in sorted(rows, key=lambda row: (row["create_time"], row["run_id"]))]


__all__ = ["CANCELLED_CODE", "MOVING_STEP_STATUSES", "RunCatalog", "RunFilter", "RunPosition"]
