"""The SQL side of remote mode: hand due steps to workers, keep their task leases, fail lost ones.

Each change is one statement of dispatch.sql. Dispatch (claim_tasks) moves steps to RUNNING
in the statement that picks them, with SKIP LOCKED, so no two workers get one attempt, whatever
the number of servers. A worker's reports are decided in reports.py: its complete by
StateStore.complete_task, its fail by fail_task here, both only for the attempt that is running and
held by the worker's stream. Statuses come from the transition table (state/transitions.py);
outcomes are read by state/outcomes.py.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..core import errors
from ..db.database import Database
from ..state.outcomes import Op, Outcome, Write, checked, refusal
from ..state.rows import ClaimedTaskRow, FailTaskRow, FinishedRunRow
from ..state.store import FailureRecord, RunsChanged, ignore_runs_changed
from ..state.transitions import StepStatus, Via, only_target, step_sources
from .fail_input import FailTaskInput
from .inputs import AdoptTasksInput, ClaimTasksInput, ExpiredTasksInput, FinishedRunsInput, NextDueInput, StartTimeoutsInput
from .rows import AdoptedTaskRow, ExpiredTaskRow, NextDueRow, StartTimeoutRow

_CLAIMED = only_target(Via.CLAIM)
_FAILED = only_target(Via.TASK_FAIL)


@dataclass(frozen=True)
class ExpiredTask:
    """An attempt the sweeper fails: its task lease passed, or (timeout set) it timed out."""

    step_id: uuid.UUID
    attempt: int
    # The start_to_close (or schedule_to_start) it ran out of; None when its worker was lost.
    timeout: timedelta | None = None


@dataclass(frozen=True)
class FailOutcome:
    """What fail_tasks did to one attempt it was given."""

    step_id: uuid.UUID
    attempt: int
    # The step's status after: scheduled (its next attempt) or failed; None when nothing was written.
    new_status: StepStatus | None
    # Why nothing was written (None when written).
    refusal: errors.WorkflowStateError | None


class TaskStore:
    """Remote-mode statements of dispatch.sql."""

    def __init__(self, database: Database, *, on_runs_changed: RunsChanged = ignore_runs_changed) -> None:
        sql = database.statements(__package__, "dispatch.sql")
        self._on_runs_changed = on_runs_changed
        # A worker's own fails of many streams share one statement and one commit (db/coalescer.py).
        self._fail_tasks = sql.grouped("fail_tasks", FailTaskInput, FailTaskRow)
        self._claim_tasks = sql.query("claim_tasks", ClaimTasksInput, ClaimedTaskRow)
        self._next_task_due = sql.query("next_task_due", NextDueInput, NextDueRow)
        self._adopt_tasks = sql.query("adopt_tasks", AdoptTasksInput, AdoptedTaskRow)
        self._finished_runs = sql.query("finished_runs", FinishedRunsInput, FinishedRunRow)
        self._expired_tasks = sql.query("expired_tasks", ExpiredTasksInput, ExpiredTaskRow)
        self._start_timeouts = sql.query("start_timeouts", StartTimeoutsInput, StartTimeoutRow)

    async def claim(
        self, rpc_names: list[str], limit: int, *, worker_id: str, stream_id: uuid.UUID, task_lease: timedelta
    ) -> list[ClaimedTaskRow]:
        """Move up to `limit` due steps to RUNNING for this stream; return them, oldest due first."""
        rows = await self._claim_tasks.all(ClaimTasksInput(rpc_names, limit, worker_id, stream_id, task_lease))
        claim = Write(Op.MOVE_STEP, target=_CLAIMED.value, via=Via.CLAIM)
        claimed = [checked(row, claim) for row in rows]
        if claimed:
            self._on_runs_changed({row["run_id"] for row in claimed})
        return claimed

    async def next_due(self, rpc_names: list[str]) -> datetime | None:
        """When the next scheduled step of these rpc names falls due, if in the future."""
        row = await self._next_task_due.one(NextDueInput(rpc_names))
        return row["due"] if row else None

    async def adopt(
        self,
        attempts: list[tuple[uuid.UUID, int]],
        *,
        worker_id: str,
        stream_id: uuid.UUID,
        task_lease: timedelta,
        credential: str | None = None,
    ) -> list[tuple[uuid.UUID, int, uuid.UUID]]:
        """Make these attempts, still running and handed out, this stream's; return those adopted
        (step_id, attempt, run_id). FailedPrecondition, and nothing adopted, when one is held by
        another worker (another worker_id, or another token's `credential`) whose stream is still
        connected."""
        if not attempts:
            return []
        item = AdoptTasksInput(
            step_ids=[step_id for step_id, _ in attempts],
            attempts=[attempt for _, attempt in attempts],
            worker_id=worker_id,
            stream_id=stream_id,
            task_lease=task_lease,
            credential=credential,
        )
        rows = await self._adopt_tasks.all(item)
        for row in rows:
            if row["outcome"] != Outcome.CHANGED:
                raise errors.FailedPrecondition(
                    f"subscribe.running: attempt {row['attempt_count']} of step {row['step_id']} is held by worker "
                    f"{row['holder']!r}, which is still connected: a worker takes back only tasks it holds under its own "
                    "worker_id and token, or whose worker is gone; nothing was adopted"
                )
        return [(row["step_id"], row["attempt_count"], row["run_id"]) for row in rows]

    async def finished_runs(self, run_ids: list[uuid.UUID]) -> list[FinishedRunRow]:
        """Those of the runs that are finished: run_id, status, error (JSON text or None)."""
        return await self._finished_runs.all(FinishedRunsInput(run_ids))

    async def expired(self) -> list[ExpiredTask]:
        """Handed-out attempts whose task lease passed, or that ran past start_to_close (at most
        100 at a time)."""
        rows = await self._expired_tasks.all(ExpiredTasksInput())
        return [ExpiredTask(row["step_id"], row["attempt_count"], row["start_to_close"] if row["timed_out"] else None) for row in rows]

    async def start_timeouts(self) -> list[ExpiredTask]:
        """Scheduled attempts nobody claimed within their schedule_to_start (at most 100 at a time);
        `timeout` is that schedule_to_start."""
        rows = await self._start_timeouts.all(StartTimeoutsInput())
        return [ExpiredTask(row["step_id"], row["attempt_count"], row["schedule_to_start"]) for row in rows]

    async def fail_task(self, step_id: uuid.UUID, attempt: int, error: FailureRecord, *, retryable: bool, stream_id: uuid.UUID) -> FailOutcome:
        """A worker's own fail of an attempt its stream holds, retried while its step has retries
        left (if retryable); grouped with the fails of other streams arriving meanwhile."""
        item = self._fail_input(step_id, attempt, error, retryable=retryable, stream_id=stream_id, via=Via.TASK_FAIL)
        row = await self._fail_tasks.run(item)
        assert row is not None  # run alone when its step is locked elsewhere: every input gets its row
        [outcome] = self._outcomes([item], [row], Via.TASK_FAIL)
        return outcome

    async def fail(
        self,
        attempts: list[tuple[uuid.UUID, int]],
        error: FailureRecord,
        *,
        retryable: bool,
        stream_id: uuid.UUID | None = None,
        via: Via = Via.TASK_FAIL,
    ) -> list[FailOutcome]:
        """Fail these running attempts, retrying each while its step has retries left (if retryable).

        With `stream_id` (its stream ending), only attempts that stream holds are failed; without it
        (the sweeper), any holder's. `via` START_TIMEOUT fails scheduled attempts nobody claimed in
        time instead (never retried). One statement for all of them (an attempt whose step another
        transaction holds is then failed alone, waiting for it): not grouped, nobody waits on one of them."""
        if via is Via.START_TIMEOUT:
            retryable = False
        items = [self._fail_input(step_id, attempt, error, retryable=retryable, stream_id=stream_id, via=via) for step_id, attempt in attempts]
        return self._outcomes(items, await self._fail_tasks.run_each(items), via)

    @staticmethod
    def _fail_input(
        step_id: uuid.UUID, attempt: int, error: FailureRecord, *, retryable: bool, stream_id: uuid.UUID | None, via: Via
    ) -> FailTaskInput:
        return FailTaskInput(
            step_id=step_id,
            attempt=attempt,
            error_json=error.to_json(),
            retryable=retryable,
            stream_id=stream_id,
            from_statuses=step_sources(only_target(via), via),
        )

    def _outcomes(self, items: list[FailTaskInput], rows: list[FailTaskRow], via: Via) -> list[FailOutcome]:
        """Each attempt's outcome from its row; the runs of those failed are told changed."""
        outcomes = []
        for item, row in zip(items, rows, strict=True):
            write = Write(Op.MOVE_STEP, item.step_id, _FAILED.value, via, attempt=item.attempt)
            refused = refusal(row["outcome"], write, row)
            new_status = StepStatus(row["new_status"]) if refused is None and row["new_status"] is not None else None
            outcomes.append(FailOutcome(item.step_id, item.attempt, new_status, refused))
        # A row carries its run only when it failed the attempt (new_status set).
        changed = {row["run_id"] for row in rows if row["new_status"] is not None and row["run_id"] is not None}
        if changed:
            self._on_runs_changed(changed)
        return outcomes


__all__ = ["ExpiredTask", "FailOutcome", "TaskStore"]
