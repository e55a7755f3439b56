"""The inputs of the set-based statements of state.sql: one dataclass per statement.

Each says which row it writes (`key`: one operation per row in a group), how many payload bytes
it carries (`size`: a group's bound), and how a group of them becomes the statement's array
parameters (`params`, one array per column, in the inputs' order: the ordinal of each result row).
"""

from __future__ import annotations

import uuid
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

from .options import StepOptions
from .transitions import RUN_START, STEP_START, StepStatus, Via, held_by_worker, next_attempt_sources, open_run_statuses, step_sources

# The run statuses that still take writes (the same for every input).
OPEN_RUN_STATUSES = open_run_statuses()
# The statuses in which a step waits for workers (a worker's task), the same for every input.
WORKER_DUE_STATUSES = step_sources(held_by_worker(), Via.CLAIM)
# The statuses whose own columns (time stamp, result, error) a step move fills.
STAMPED_STATUSES = {f"{status.value}_status": status.value for status in (
    StepStatus.SCHEDULED, StepStatus.RUNNING, StepStatus.SUCCEEDED, StepStatus.FAILED)}


class SetInput(Protocol):
    """What every input of a set-based statement says of itself."""

    @property
    def key(self) -> Hashable:
        """The row it writes: one operation per row in a group."""

    @property
    def size(self) -> int:
        """Its payload's bytes, for a group's byte bound."""


AnyInput = TypeVar("AnyInput", bound=SetInput)

# Where a claimed step goes (running: its caller runs it).
_CLAIMED = StepStatus.RUNNING

# What an input without a payload counts for in a group's byte bound (its ids and flags).
BASE_BYTES = 64


@dataclass(frozen=True, eq=False)
class GetRunInput:
    """get_run: one run by id. A read locks nothing, so reads of one run may share a group: each is its own key."""

    run_id: uuid.UUID

    @property
    def key(self) -> Hashable:
        return self

    @property
    def size(self) -> int:
        return BASE_BYTES

    @staticmethod
    def params(inputs: Sequence[GetRunInput]) -> dict[str, Any]:
        return {"run_id": [item.run_id for item in inputs]}


@dataclass(frozen=True, eq=False)
class CreateRunInput:
    """create_run: a new run (or the run its request_id names already). Compared by identity: two
    runs without a request_id are two different rows."""

    workflow: str
    input_json: str
    request_id: str | None
    inline: bool
    graph_hash: str | None
    metadata_json: str | None
    deterministic: bool
    planned_steps_json: str | None

    @property
    def key(self) -> Hashable:
        # One request_id per group: ON CONFLICT may not touch a row twice in one statement.
        return ("request_id", self.request_id) if self.request_id is not None else self

    @property
    def size(self) -> int:
        return BASE_BYTES + len(self.input_json) + len(self.metadata_json or "") + len(self.planned_steps_json or "")

    @staticmethod
    def params(inputs: Sequence[CreateRunInput]) -> dict[str, Any]:
        return {
            "status": RUN_START.value,
            "workflow": [item.workflow for item in inputs],
            "input": [item.input_json for item in inputs],
            "request_id": [item.request_id for item in inputs],
            "inline": [item.inline for item in inputs],
            "graph_hash": [item.graph_hash for item in inputs],
            "metadata": [item.metadata_json for item in inputs],
            "deterministic": [item.deterministic for item in inputs],
            "planned_steps": [item.planned_steps_json for item in inputs],
        }


@dataclass(frozen=True)
class UpdateRunStatusInput:
    """update_run_status: a run's move to to_status from one of from_statuses (the transition table's)."""

    run_id: uuid.UUID
    to_status: str
    from_statuses: Sequence[str]
    set_output: bool
    output_json: str | None
    error_json: str | None
    clear_error: bool
    fencing_token: int | None
    lease_key: str | None

    @property
    def key(self) -> Hashable:
        return self.run_id

    @property
    def size(self) -> int:
        return BASE_BYTES + len(self.output_json or "") + len(self.error_json or "")

    @staticmethod
    def params(inputs: Sequence[UpdateRunStatusInput]) -> dict[str, Any]:
        return {
            "run_id": [item.run_id for item in inputs],
            "to_status": [item.to_status for item in inputs],
            "set_output": [item.set_output for item in inputs],
            "output": [item.output_json for item in inputs],
            "error": [item.error_json for item in inputs],
            "clear_error": [item.clear_error for item in inputs],
            "from_statuses": [",".join(item.from_statuses) for item in inputs],
            "fencing_token": [item.fencing_token for item in inputs],
            "lease_key": [item.lease_key for item in inputs],
            "open_run_statuses": OPEN_RUN_STATUSES,
        }


@dataclass(frozen=True)
class SetStepStatusInput:
    """set_step_status: a step's move to to_status (a set-status call, a worker's complete, a suspend)."""

    step_id: uuid.UUID
    to_status: str
    from_statuses: Sequence[str]
    result_json: str | None = None
    error_json: str | None = None
    not_before: datetime | None = None
    delay: timedelta | None = None
    attempt: int | None = None  # a worker's complete: the attempt it reports on
    stream_id: uuid.UUID | None = None  # a worker's complete: the stream that must hold the attempt
    refuse_worker_tasks: bool = False
    fencing_token: int | None = None
    lease_key: str | None = None
    options: StepOptions = StepOptions()

    @property
    def key(self) -> Hashable:
        return self.step_id

    @property
    def size(self) -> int:
        return BASE_BYTES + len(self.result_json or "") + len(self.error_json or "")

    @staticmethod
    def params(inputs: Sequence[SetStepStatusInput]) -> dict[str, Any]:
        params: dict[str, Any] = {
            "step_id": [item.step_id for item in inputs],
            "to_status": [item.to_status for item in inputs],
            "from_statuses": [",".join(item.from_statuses) for item in inputs],
            "result": [item.result_json for item in inputs],
            "error": [item.error_json for item in inputs],
            "not_before": [item.not_before for item in inputs],
            "delay": [item.delay for item in inputs],
            "attempt": [item.attempt for item in inputs],
            "stream_id": [item.stream_id for item in inputs],
            "refuse_worker_tasks": [item.refuse_worker_tasks for item in inputs],
            "fencing_token": [item.fencing_token for item in inputs],
            "lease_key": [item.lease_key for item in inputs],
            "open_run_statuses": OPEN_RUN_STATUSES,
            "worker_due_statuses": WORKER_DUE_STATUSES,
            **STAMPED_STATUSES,
        }
        for option in fields(StepOptions):
            params[f"opt_{option.name}"] = [getattr(item.options, option.name) for item in inputs]
        return params


@dataclass(frozen=True)
class InsertStepInput:
    """insert_step: a new step of a run, in its start status, with the options it sets (the rest from its rpc name's defaults)."""

    run_id: uuid.UUID
    step_name: str
    rpc_name: str
    data_json: str
    from_step_name: str | None = None
    fencing_token: int | None = None
    lease_key: str | None = None
    options: StepOptions = StepOptions()

    @property
    def key(self) -> Hashable:
        return (self.run_id, self.step_name)

    @property
    def size(self) -> int:
        return BASE_BYTES + len(self.step_name) + len(self.data_json)

    @staticmethod
    def params(inputs: Sequence[InsertStepInput]) -> dict[str, Any]:
        params: dict[str, Any] = {
            "run_id": [item.run_id for item in inputs],
            "step_name": [item.step_name for item in inputs],
            "rpc_name": [item.rpc_name for item in inputs],
            "from_step_name": [item.from_step_name for item in inputs],
            "data": [item.data_json for item in inputs],
            "fencing_token": [item.fencing_token for item in inputs],
            "lease_key": [item.lease_key for item in inputs],
            "status": STEP_START.value,
            "open_run_statuses": OPEN_RUN_STATUSES,
        }
        for option in fields(StepOptions):
            params[f"opt_{option.name}"] = [getattr(item.options, option.name) for item in inputs]
        return params


@dataclass(frozen=True, eq=False)
class GetStepInput:
    """get_step: one step by run and name. A read: each is its own key."""

    run_id: uuid.UUID
    step_name: str

    @property
    def key(self) -> Hashable:
        return self

    @property
    def size(self) -> int:
        return BASE_BYTES + len(self.step_name)

    @staticmethod
    def params(inputs: Sequence[GetStepInput]) -> dict[str, Any]:
        return {"run_id": [item.run_id for item in inputs], "step_name": [item.step_name for item in inputs]}


@dataclass(frozen=True)
class CreateRetryAttemptInput:
    """create_retry_attempt: the next attempt of a step, in to_status, from one of from_statuses."""

    step_id: uuid.UUID
    to_status: str
    from_statuses: Sequence[str]
    fencing_token: int | None = None
    lease_key: str | None = None

    @property
    def key(self) -> Hashable:
        return self.step_id

    @property
    def size(self) -> int:
        return BASE_BYTES

    @staticmethod
    def params(inputs: Sequence[CreateRetryAttemptInput]) -> dict[str, Any]:
        return {
            "step_id": [item.step_id for item in inputs],
            "to_status": [item.to_status for item in inputs],
            "from_statuses": [",".join(item.from_statuses) for item in inputs],
            "fencing_token": [item.fencing_token for item in inputs],
            "lease_key": [item.lease_key for item in inputs],
            "open_run_statuses": OPEN_RUN_STATUSES,
            "running_status": StepStatus.RUNNING.value,
        }


@dataclass(frozen=True)
class ClaimStepInput:
    """claim_step: a step, by run and name, claimed for its caller to run (running, or its next attempt)."""

    run_id: uuid.UUID
    step_name: str
    rpc_name: str
    refuse_worker_tasks: bool = False
    fencing_token: int | None = None
    lease_key: str | None = None

    @property
    def key(self) -> Hashable:
        return (self.run_id, self.step_name)

    @property
    def size(self) -> int:
        return BASE_BYTES + len(self.step_name) + len(self.rpc_name)

    @staticmethod
    def params(inputs: Sequence[ClaimStepInput]) -> dict[str, Any]:
        return {
            "run_id": [item.run_id for item in inputs],
            "step_name": [item.step_name for item in inputs],
            "rpc_name": [item.rpc_name for item in inputs],
            "refuse_worker_tasks": [item.refuse_worker_tasks for item in inputs],
            "fencing_token": [item.fencing_token for item in inputs],
            "lease_key": [item.lease_key for item in inputs],
            "to_status": _CLAIMED.value,
            "from_statuses": step_sources(_CLAIMED, Via.CLAIM_STEP),
            "next_attempt_from": next_attempt_sources(_CLAIMED, Via.CLAIM_STEP),
            "open_run_statuses": OPEN_RUN_STATUSES,
            "worker_due_statuses": WORKER_DUE_STATUSES,
        }


@dataclass(frozen=True, eq=False)
class GetStepByIdInput:
    """get_step_by_id: one step by id. A read: each is its own key."""

    step_id: uuid.UUID

    @property
    def key(self) -> Hashable:
        return self

    @property
    def size(self) -> int:
        return BASE_BYTES

    @staticmethod
    def params(inputs: Sequence[GetStepByIdInput]) -> dict[str, Any]:
        return {"step_id": [item.step_id for item in inputs]}


@dataclass(frozen=True)
class SetStepChildRunInput:
    """set_step_child_run: the run a step's current attempt started."""

    step_id: uuid.UUID
    child_run_id: uuid.UUID
    fencing_token: int | None = None
    lease_key: str | None = None

    @property
    def key(self) -> Hashable:
        return self.step_id

    @property
    def size(self) -> int:
        return BASE_BYTES

    @staticmethod
    def params(inputs: Sequence[SetStepChildRunInput]) -> dict[str, Any]:
        return {
            "step_id": [item.step_id for item in inputs],
            "child_run_id": [item.child_run_id for item in inputs],
            "fencing_token": [item.fencing_token for item in inputs],
            "lease_key": [item.lease_key for item in inputs],
            "open_run_statuses": OPEN_RUN_STATUSES,
        }


@dataclass(frozen=True)
class SetStepBranchInput:
    """set_step_branch: the branch a step's current attempt took."""

    step_id: uuid.UUID
    branch_key: str
    fencing_token: int | None = None
    lease_key: str | None = None

    @property
    def key(self) -> Hashable:
        return self.step_id

    @property
    def size(self) -> int:
        return BASE_BYTES + len(self.branch_key)

    @staticmethod
    def params(inputs: Sequence[SetStepBranchInput]) -> dict[str, Any]:
        return {
            "step_id": [item.step_id for item in inputs],
            "branch_key": [item.branch_key for item in inputs],
            "fencing_token": [item.fencing_token for item in inputs],
            "lease_key": [item.lease_key for item in inputs],
            "open_run_statuses": OPEN_RUN_STATUSES,
        }


@dataclass(frozen=True)
class UpdateRunStateInput:
    """update_run_state: one state variable of a run, refused when the state would pass max_bytes."""

    run_id: uuid.UUID
    name: str
    value_json: str
    max_bytes: int
    fencing_token: int | None = None
    lease_key: str | None = None

    @property
    def key(self) -> Hashable:
        return self.run_id

    @property
    def size(self) -> int:
        return BASE_BYTES + len(self.name) + len(self.value_json)

    @staticmethod
    def params(inputs: Sequence[UpdateRunStateInput]) -> dict[str, Any]:
        return {
            "run_id": [item.run_id for item in inputs],
            "name": [item.name for item in inputs],
            "value": [item.value_json for item in inputs],
            "max_bytes": [item.max_bytes for item in inputs],
            "fencing_token": [item.fencing_token for item in inputs],
            "lease_key": [item.lease_key for item in inputs],
            "open_run_statuses": OPEN_RUN_STATUSES,
        }


@dataclass(frozen=True, eq=False)
class GetRunStateInput:
    """get_run_state: one run's state variables. A read: each is its own key."""

    run_id: uuid.UUID

    @property
    def key(self) -> Hashable:
        return self

    @property
    def size(self) -> int:
        return BASE_BYTES

    @staticmethod
    def params(inputs: Sequence[GetRunStateInput]) -> dict[str, Any]:
        return {"run_id": [item.run_id for item in inputs]}
