"""The PostgreSQL store: every read and write of workflow state, one statement each.

The store speaks Python values (JSON as text, statuses as the enums of transitions.py) and
returns rows as dicts; it knows nothing of protobuf. Each state change is one statement from
state.sql that locks, decides its outcome and writes together (see the comment at the top of
that file); outcomes.checked turns the outcome into the row or the error to raise.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from ..db.database import Database
from .options import NO_OPTIONS, StepOptions
from .outcomes import Op, Outcome, Write, checked, missing
from .inputs import RunIdInput
from .rows import AttemptRow, RunRow, RunStateRow, RunStateWriteRow, RunWriteRow, StepLinkRow, StepMoveRow, StepRow, StepWriteRow
from .set_inputs import (
    ClaimStepInput,
    CreateRetryAttemptInput,
    CreateRunInput,
    GetRunInput,
    GetRunStateInput,
    GetStepByIdInput,
    GetStepInput,
    InsertStepInput,
    SetStepBranchInput,
    SetStepChildRunInput,
    SetStepStatusInput,
    UpdateRunStateInput,
    UpdateRunStatusInput,
)
from .transitions import (
    STEP_START,
    RunStatus,
    StepStatus,
    Via,
    run_clears_error,
    run_sources,
    step_sources,
)

log = logging.getLogger("workflowstate.server.store")

# A state change's row: the run or step as written or as it is, with its outcome.
WrittenRow = TypeVar("WrittenRow", bound=Mapping[str, Any])

# Told the runs a committed statement changed (their readers are woken at once: events/watchers.py).
RunsChanged = Callable[[Collection[uuid.UUID]], None]


def ignore_runs_changed(run_ids: Collection[uuid.UUID]) -> None:
    """The default when no one follows changes made through this server."""


@dataclass(frozen=True)
class FailureRecord:
    """An error as stored in the error jsonb column."""

    message: str
    stack: str = ""
    code: str = ""

    def to_json(self) -> str:
        return json.dumps({"message": self.message, "stack": self.stack, "code": self.code}, separators=(",", ":"))


@dataclass(frozen=True)
class Fence:
    """A lease a write is made under: its fencing token, and its key (None: the run's key)."""

    token: int
    key: str | None = None


@dataclass(frozen=True)
class RunEngineFields:
    """What an engine keeps with a run when it creates it (CreateRun's engine fields)."""

    inline: bool = False
    graph_hash: str | None = None
    metadata_json: str | None = None  # None: no metadata (not JSON null)
    deterministic: bool = False
    planned_steps_json: str | None = None  # a JSON array of {"step_name", "display_name"}; None: none


class StateStore:
    """Runs and steps: every read and write of workflow state, one named statement of state.sql each."""

    def __init__(self, database: Database, *, on_runs_changed: RunsChanged = ignore_runs_changed) -> None:
        self._sql = database.statements(__package__, "state.sql")
        self._on_runs_changed = on_runs_changed
        # The set-based statements: concurrent calls share one statement and one commit (db/coalescer.py).
        self._get_run = self._sql.grouped("get_run", GetRunInput, RunRow)
        self._create_run = self._sql.grouped("create_run", CreateRunInput, RunWriteRow)
        self._update_run_status = self._sql.grouped("update_run_status", UpdateRunStatusInput, RunWriteRow)
        self._insert_step = self._sql.grouped("insert_step", InsertStepInput, StepWriteRow)
        self._get_step = self._sql.grouped("get_step", GetStepInput, StepRow)
        self._get_step_by_id = self._sql.grouped("get_step_by_id", GetStepByIdInput, StepRow)
        self._create_retry_attempt = self._sql.grouped("create_retry_attempt", CreateRetryAttemptInput, StepMoveRow)
        self._set_step_status = self._sql.grouped("set_step_status", SetStepStatusInput, StepMoveRow)
        self._claim_step = self._sql.grouped("claim_step", ClaimStepInput, StepMoveRow)
        self._set_step_child_run = self._sql.grouped("set_step_child_run", SetStepChildRunInput, StepLinkRow)
        self._set_step_branch = self._sql.grouped("set_step_branch", SetStepBranchInput, StepLinkRow)
        self._update_run_state = self._sql.grouped("update_run_state", UpdateRunStateInput, RunStateWriteRow)
        self._get_run_state = self._sql.grouped("get_run_state", GetRunStateInput, RunStateRow)
        self._get_run_history = self._sql.query("get_run_history", RunIdInput, AttemptRow)

    def _written(self, row: WrittenRow | None, write: Write) -> WrittenRow:
        """A state-changing statement's row when changed or same, else its refusal."""
        row = checked(row, write)
        if row["outcome"] == Outcome.CHANGED:  # committed (autocommit): its events are written
            self._on_runs_changed((row["run_id"],))
        return row

    # Runs

    async def create_run(self, workflow: str, input_json: str, request_id: str | None, engine: RunEngineFields | None = None) -> RunWriteRow:
        engine = engine or RunEngineFields()
        item = CreateRunInput(
            workflow=workflow,
            input_json=input_json,
            request_id=request_id,
            inline=engine.inline,
            graph_hash=engine.graph_hash,
            metadata_json=engine.metadata_json,
            deterministic=engine.deterministic,
            planned_steps_json=engine.planned_steps_json,
        )
        return self._written(await self._create_run.run(item), Write(Op.CREATE_RUN, request_id=request_id))

    async def get_run(self, run_id: uuid.UUID) -> RunRow:
        row = await self._get_run.run(GetRunInput(run_id))
        if row is None or row["run_id"] is None:
            raise missing(f"run {run_id} not found", run_id=run_id)
        return row

    async def get_run_history(self, run_id: uuid.UUID) -> list[AttemptRow]:
        rows = await self._get_run_history.all(RunIdInput(run_id))
        if not rows:
            raise missing(f"run {run_id} not found", run_id=run_id)
        return [row for row in rows if row["step_id"] is not None]

    async def update_run_status(
        self,
        run_id: uuid.UUID,
        status: RunStatus,
        *,
        output_json: str | None,
        error: FailureRecord | None,
        fence: Fence | None = None,
    ) -> RunWriteRow:
        item = UpdateRunStatusInput(
            run_id=run_id,
            to_status=status.value,
            from_statuses=run_sources(status),
            set_output=output_json is not None,
            output_json=output_json,
            error_json=error.to_json() if error else None,
            clear_error=run_clears_error(status),
            fencing_token=fence.token if fence else None,
            lease_key=fence.key if fence else None,
        )
        write = Write(Op.UPDATE_RUN, run_id, status.value, fence_token=fence.token if fence else None)
        return self._written(await self._update_run_status.run(item), write)

    # Steps

    async def insert_step(
        self,
        run_id: uuid.UUID,
        step_name: str,
        rpc_name: str,
        data_json: str,
        *,
        options: StepOptions = NO_OPTIONS,
        fence: Fence | None = None,
        from_step_name: str | None = None,
    ) -> StepWriteRow:
        """A new step, PENDING; rpc_name '' is a step without a function of its own (never dispatched).
        Options it does not set come from its rpc name's dispatch defaults."""
        item = InsertStepInput(
            run_id=run_id,
            step_name=step_name,
            rpc_name=rpc_name,
            data_json=data_json,
            from_step_name=from_step_name,
            fencing_token=fence.token if fence else None,
            lease_key=fence.key if fence else None,
            options=options,
        )
        write = Write(Op.INSERT_STEP, run_id, STEP_START.value, step_name=step_name, fence_token=fence.token if fence else None)
        return self._written(await self._insert_step.run(item), write)

    async def get_step(self, run_id: uuid.UUID, step_name: str) -> StepRow:
        row = await self._get_step.run(GetStepInput(run_id, step_name))
        if row is None or row["step_id"] is None:
            raise missing(f"run {run_id} has no step named {step_name!r}", run_id=run_id, step_name=step_name)
        return row

    async def get_step_by_id(self, step_id: uuid.UUID) -> StepRow:
        row = await self._get_step_by_id.run(GetStepByIdInput(step_id))
        if row is None or row["step_id"] is None:
            raise missing(f"step {step_id} not found", step_id=step_id)
        return row

    async def set_step_status(
        self,
        step_id: uuid.UUID,
        status: StepStatus,
        *,
        result_json: str | None = None,
        error: FailureRecord | None = None,
        fence: Fence | None = None,
        not_before: datetime | None = None,
        delay: timedelta | None = None,
        options: StepOptions = NO_OPTIONS,
        takes_worker_tasks: bool = True,
    ) -> StepMoveRow:
        """SetStepScheduled / Running / Result / Error: one statement, checked by the transition table.
        `options` (scheduling only) replace the step's stored options they set. Without
        `takes_worker_tasks` a step that is a worker's task is refused (PermissionDenied)."""
        item = SetStepStatusInput(
            step_id=step_id,
            to_status=status.value,
            from_statuses=step_sources(status, Via.SET_STATUS),
            result_json=result_json,
            error_json=error.to_json() if error else None,
            not_before=not_before,
            delay=delay,
            refuse_worker_tasks=not takes_worker_tasks,
            fencing_token=fence.token if fence else None,
            lease_key=fence.key if fence else None,
            options=options,
        )
        write = Write(Op.MOVE_STEP, step_id, status.value, Via.SET_STATUS, fence_token=fence.token if fence else None)
        return self._written(await self._set_step_status.run(item), write)

    async def complete_task(self, step_id: uuid.UUID, attempt: int, stream_id: uuid.UUID, result_json: str) -> StepMoveRow:
        """A worker's complete: only for the attempt that is running and held by its stream
        (repeating the result already stored at that attempt is a no-op)."""
        target = StepStatus.SUCCEEDED
        item = SetStepStatusInput(
            step_id=step_id,
            to_status=target.value,
            from_statuses=step_sources(target, Via.COMPLETE),
            result_json=result_json,
            attempt=attempt,
            stream_id=stream_id,
        )
        write = Write(Op.MOVE_STEP, step_id, target.value, Via.COMPLETE, attempt=attempt)
        return self._written(await self._set_step_status.run(item), write)

    async def create_retry_attempt(self, step_id: uuid.UUID, status: StepStatus, *, fence: Fence | None = None) -> StepMoveRow:
        item = CreateRetryAttemptInput(
            step_id=step_id,
            to_status=status.value,
            from_statuses=step_sources(status, Via.RETRY),
            fencing_token=fence.token if fence else None,
            lease_key=fence.key if fence else None,
        )
        write = Write(Op.MOVE_STEP, step_id, status.value, Via.RETRY, fence_token=fence.token if fence else None)
        return self._written(await self._create_retry_attempt.run(item), write)

    # Engine state.

    async def set_step_suspended(self, step_id: uuid.UUID, *, fence: Fence | None = None) -> StepMoveRow:
        """SetStepSuspended: the set-status statement, with the suspend moves of the table."""
        target = StepStatus.SUSPENDED
        item = SetStepStatusInput(
            step_id=step_id,
            to_status=target.value,
            from_statuses=step_sources(target, Via.SUSPEND),
            fencing_token=fence.token if fence else None,
            lease_key=fence.key if fence else None,
        )
        write = Write(Op.MOVE_STEP, step_id, target.value, Via.SUSPEND, fence_token=fence.token if fence else None)
        return self._written(await self._set_step_status.run(item), write)

    async def claim_step(
        self, run_id: uuid.UUID, step_name: str, rpc_name: str, *, fence: Fence | None = None, takes_worker_tasks: bool = True
    ) -> StepMoveRow:
        """ClaimStep: the row's outcome is `changed` when this call claimed the step, `same` when not.
        Without `takes_worker_tasks` a step that is a worker's task is refused (PermissionDenied)."""
        target = StepStatus.RUNNING
        item = ClaimStepInput(
            run_id=run_id,
            step_name=step_name,
            rpc_name=rpc_name,
            refuse_worker_tasks=not takes_worker_tasks,
            fencing_token=fence.token if fence else None,
            lease_key=fence.key if fence else None,
        )
        write = Write(Op.CLAIM_STEP, run_id, target.value, Via.CLAIM_STEP, step_name=step_name, rpc_name=rpc_name,
                      fence_token=fence.token if fence else None)
        return self._written(await self._claim_step.run(item), write)

    async def set_step_child_run(self, step_id: uuid.UUID, child_run_id: uuid.UUID, *, fence: Fence | None = None) -> StepLinkRow:
        item = SetStepChildRunInput(step_id, child_run_id, fencing_token=fence.token if fence else None, lease_key=fence.key if fence else None)
        write = Write(Op.LINK_STEP, step_id, "child run", child_run_id=child_run_id, fence_token=fence.token if fence else None)
        return self._written(await self._set_step_child_run.run(item), write)

    async def set_step_branch(self, step_id: uuid.UUID, branch_key: str, *, fence: Fence | None = None) -> StepLinkRow:
        item = SetStepBranchInput(step_id, branch_key, fencing_token=fence.token if fence else None, lease_key=fence.key if fence else None)
        write = Write(Op.LINK_STEP, step_id, "branch", fence_token=fence.token if fence else None)
        return self._written(await self._set_step_branch.run(item), write)

    async def update_run_state(
        self, run_id: uuid.UUID, name: str, value_json: str, *, max_bytes: int, fence: Fence | None = None
    ) -> None:
        """Set one state variable of an open run; TooLarge when the state would pass max_bytes."""
        item = UpdateRunStateInput(
            run_id, name, value_json, max_bytes, fencing_token=fence.token if fence else None, lease_key=fence.key if fence else None
        )
        write = Write(Op.UPDATE_RUN_STATE, run_id, max_bytes=max_bytes, fence_token=fence.token if fence else None)
        # Not through _written: no event follows a state write, so no reader needs waking.
        checked(await self._update_run_state.run(item), write)

    async def get_run_state(self, run_id: uuid.UUID) -> str:
        """The run's state variables as JSON text ("{}" when none)."""
        row = await self._get_run_state.run(GetRunStateInput(run_id))
        if row is None or row["run_id"] is None:
            raise missing(f"run {run_id} not found", run_id=run_id)
        return row["state"]


__all__ = ["Fence", "FailureRecord", "RunEngineFields", "RunsChanged", "StateStore", "ignore_runs_changed"]
