"""The inputs of the set-based statements of state.sql: one dataclass per statement.

Each says which row it writes (`key`: one operation per row in a group) and how many payload bytes
it carries (`size`: a group's bound); its fields are the statement's array parameters, one array
per field in the inputs' order (the ordinal of each result row), and its CONSTANTS what is the same
for every input (db/params.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar

from ..db.params import JOINED, named, spread
from .options import StepOptions
from .transitions import RUN_START, STEP_START, StepStatus, Via, held_by_worker, next_attempt_sources, open_run_statuses, step_sources

# The run statuses that still take writes (the same for every input).
OPEN_RUN_STATUSES = open_run_statuses()
# The statuses in which a step waits for workers (a worker's task), the same for every input.
WORKER_DUE_STATUSES = step_sources(held_by_worker(), Via.CLAIM)
# The statuses whose own columns (time stamp, result, error) a step move fills.
STAMPED_STATUSES = {f"{status.value}_status": status.value for status in (
    StepStatus.SCHEDULED, StepStatus.RUNNING, StepStatus.SUCCEEDED, StepStatus.FAILED)}

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


@dataclass(frozen=True, eq=False)
class CreateRunInput:
    """create_run: a new run (or the run its request_id names already). Compared by identity: two
    runs without a request_id are two different rows."""

    workflow: str
    input_json: str = field(metadata=named("input"))
    request_id: str | None
    inline: bool
    graph_hash: str | None
    metadata_json: str | None = field(metadata=named("metadata"))
    deterministic: bool
    planned_steps_json: str | None = field(metadata=named("planned_steps"))

    CONSTANTS: ClassVar[Mapping[str, Any]] = {"status": RUN_START.value}

    @property
    def key(self) -> Hashable:
        # One request_id per group: ON CONFLICT may not touch a row twice in one statement.
        return ("request_id", self.request_id) if self.request_id is not None else self

    @property
    def size(self) -> int:
        return BASE_BYTES + len(self.input_json) + len(self.metadata_json or "") + len(self.planned_steps_json or "")


@dataclass(frozen=True)
class UpdateRunStatusInput:
    """update_run_status: a run's move to to_status from one of from_statuses (the transition table's)."""

    run_id: uuid.UUID
    to_status: str
    from_statuses: Sequence[str] = field(metadata=JOINED)
    set_output: bool
    output_json: str | None = field(metadata=named("output"))
    error_json: str | None = field(metadata=named("error"))
    clear_error: bool
    fencing_token: int | None
    lease_key: str | None

    CONSTANTS: ClassVar[Mapping[str, Any]] = {"open_run_statuses": OPEN_RUN_STATUSES}

    @property
    def key(self) -> Hashable:
        return self.run_id

    @property
    def size(self) -> int:
        return BASE_BYTES + len(self.output_json or "") + len(self.error_json or "")


@dataclass(frozen=True)
class SetStepStatusInput:
    """set_step_status: a step's move to to_status (a set-status call, a worker's complete, a suspend)."""

    step_id: uuid.UUID
    to_status: str
    from_statuses: Sequence[str] = field(metadata=JOINED)
    result_json: str | None = field(default=None, metadata=named("result"))
    error_json: str | None = field(default=None, metadata=named("error"))
    not_before: datetime | None = None
    delay: timedelta | None = None
    attempt: int | None = None  # a worker's complete: the attempt it reports on
    stream_id: uuid.UUID | None = None  # a worker's complete: the stream that must hold the attempt
    refuse_worker_tasks: bool = False
    fencing_token: int | None = None
    lease_key: str | None = None
    options: StepOptions = field(default=StepOptions(), metadata=spread("opt_"))

    CONSTANTS: ClassVar[Mapping[str, Any]] = {
        "open_run_statuses": OPEN_RUN_STATUSES,
        "worker_due_statuses": WORKER_DUE_STATUSES,
        **STAMPED_STATUSES,
    }

    @property
    def key(self) -> Hashable:
        return self.step_id

    @property
    def size(self) -> int:
        return BASE_BYTES + len(self.result_json or "") + len(self.error_json or "")


@dataclass(frozen=True)
class InsertStepInput:
    """insert_step: a new step of a run, in its start status, with the options it sets (the rest from its rpc name's defaults)."""

    run_id: uuid.UUID
    step_name: str
    rpc_name: str
    data_json: str = field(metadata=named("data"))
    from_step_name: str | None = None
    fencing_token: int | None = None
    lease_key: str | None = None
    options: StepOptions = field(default=StepOptions(), metadata=spread("opt_"))

    CONSTANTS: ClassVar[Mapping[str, Any]] = {"status": STEP_START.value, "open_run_statuses": OPEN_RUN_STATUSES}

    @property
    def key(self) -> Hashable:
        return (self.run_id, self.step_name)

    @property
    def size(self) -> int:
        return BASE_BYTES + len(self.step_name) + len(self.data_json)


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


@dataclass(frozen=True)
class CreateRetryAttemptInput:
    """create_retry_attempt: the next attempt of a step, in to_status, from one of from_statuses."""

    step_id: uuid.UUID
    to_status: str
    from_statuses: Sequence[str] = field(metadata=JOINED)
    fencing_token: int | None = None
    lease_key: str | None = None

    CONSTANTS: ClassVar[Mapping[str, Any]] = {"open_run_statuses": OPEN_RUN_STATUSES, "running_status": StepStatus.RUNNING.value}

    @property
    def key(self) -> Hashable:
        return self.step_id

    @property
    def size(self) -> int:
        return BASE_BYTES


@dataclass(frozen=True)
class ClaimStepInput:
    """claim_step: a step, by run and name, claimed for its caller to run (running, or its next attempt)."""

    run_id: uuid.UUID
    step_name: str
    rpc_name: str
    refuse_worker_tasks: bool = False
    fencing_token: int | None = None
    lease_key: str | None = None

    CONSTANTS: ClassVar[Mapping[str, Any]] = {
        "to_status": _CLAIMED.value,
        "from_statuses": step_sources(_CLAIMED, Via.CLAIM_STEP),
        "next_attempt_from": next_attempt_sources(_CLAIMED, Via.CLAIM_STEP),
        "open_run_statuses": OPEN_RUN_STATUSES,
        "worker_due_statuses": WORKER_DUE_STATUSES,
    }

    @property
    def key(self) -> Hashable:
        return (self.run_id, self.step_name)

    @property
    def size(self) -> int:
        return BASE_BYTES + len(self.step_name) + len(self.rpc_name)


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


@dataclass(frozen=True)
class SetStepChildRunInput:
    """set_step_child_run: the run a step's current attempt started."""

    step_id: uuid.UUID
    child_run_id: uuid.UUID
    fencing_token: int | None = None
    lease_key: str | None = None

    CONSTANTS: ClassVar[Mapping[str, Any]] = {"open_run_statuses": OPEN_RUN_STATUSES}

    @property
    def key(self) -> Hashable:
        return self.step_id

    @property
    def size(self) -> int:
        return BASE_BYTES


@dataclass(frozen=True)
class SetStepBranchInput:
    """set_step_branch: the branch a step's current attempt took."""

    step_id: uuid.UUID
    branch_key: str
    fencing_token: int | None = None
    lease_key: str | None = None

    CONSTANTS: ClassVar[Mapping[str, Any]] = {"open_run_statuses": OPEN_RUN_STATUSES}

    @property
    def key(self) -> Hashable:
        return self.step_id

    @property
    def size(self) -> int:
        return BASE_BYTES + len(self.branch_key)


@dataclass(frozen=True)
class UpdateRunStateInput:
    """update_run_state: one state variable of a run, refused when the state would pass max_bytes."""

    run_id: uuid.UUID
    name: str
    value_json: str = field(metadata=named("value"))
    max_bytes: int
    fencing_token: int | None = None
    lease_key: str | None = None

    CONSTANTS: ClassVar[Mapping[str, Any]] = {"open_run_statuses": OPEN_RUN_STATUSES}

    @property
    def key(self) -> Hashable:
        return self.run_id

    @property
    def size(self) -> int:
        return BASE_BYTES + len(self.name) + len(self.value_json)


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

