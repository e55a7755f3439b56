"""The rows the statements of state.sql and dispatch.sql return, one TypedDict per shape.

Rows come from psycopg as dicts (db/database.py); these say which keys a statement's row has and
what they hold, so a store method says what it returns. jsonb columns are JSON text (the pool
reads jsonb as text), intervals timedelta, timestamps aware datetimes. A set-based statement's
row carries its input's `ordinal`; a state change's its `outcome` (state/outcomes.py) and the
context its refusal message needs. A row of a missing run or step has its columns None.
"""

# No `from __future__ import annotations` here: TypedDict reads NotRequired from evaluated annotations only
# (string ones count as required keys), and the keys a row may lack must be known at run time.
import uuid
from datetime import datetime, timedelta
from typing import NotRequired, TypedDict


class RunRow(TypedDict):
    """A row of table runs (get_run), with its input's ordinal."""

    ordinal: int
    run_id: uuid.UUID
    workflow: str
    status: str
    input: str
    output: str | None
    error: str | None
    request_id: str | None
    create_time: datetime
    update_time: datetime
    fencing_token: int | None
    inline: bool
    graph_hash: str | None
    metadata: str | None
    deterministic: bool
    planned_steps: str | None
    state: str | None
    schedule_id: str | None
    schedule_time: datetime | None


class RunWriteRow(RunRow):
    """create_run, update_run_status: the run as written (changed) or as it is, and the outcome."""

    outcome: str
    # update_run_status only: the run's status before, and the fence it was checked against.
    prior_status: NotRequired[str | None]
    lease_key: NotRequired[str | None]
    current_token: NotRequired[int | None]


class StepRow(TypedDict):
    """A row of table steps (get_step, get_step_by_id), with its input's ordinal."""

    ordinal: int
    step_id: uuid.UUID
    run_id: uuid.UUID
    step_name: str
    rpc_name: str
    data: str
    status: str
    result: str | None
    error: str | None
    attempt_count: int
    retries: int | None
    retry_delay: timedelta | None
    create_time: datetime
    update_time: datetime
    scheduled_time: datetime | None
    running_time: datetime | None
    succeeded_time: datetime | None
    failed_time: datetime | None
    fencing_token: int | None
    not_before: datetime | None
    worker_id: str | None
    task_stream_id: uuid.UUID | None
    task_expire_time: datetime | None
    from_step_name: str | None
    child_run_id: uuid.UUID | None
    branch_key: str | None
    backoff_coefficient: float | None
    max_retry_delay: timedelta | None
    jitter: float | None
    start_to_close: timedelta | None
    schedule_to_start: timedelta | None
    priority: int
    concurrency_key: str | None
    task_timeout_time: datetime | None
    start_timeout_time: datetime | None


class StepWriteRow(StepRow):
    """A step change (insert_step, set_step_status, create_retry_attempt, claim_step, set_step_child_run,
    set_step_branch): the step as written (changed) or as it is, the outcome and its context."""

    outcome: str
    run_status: str | None
    lease_key: str | None
    current_token: int | None


class StepMoveRow(StepWriteRow):
    """set_step_status, create_retry_attempt, claim_step: the step's status before, and what else
    the statement's refusals name (set_step_status: the attempt and the worker holding it;
    claim_step: the rpc name)."""

    prior_status: str | None
    prior_attempt: NotRequired[int | None]
    holder: NotRequired[str | None]
    prior_rpc_name: NotRequired[str | None]


class StepLinkRow(StepWriteRow):
    """set_step_child_run, set_step_branch: the current attempt and the link it had."""

    prior_attempt: int | None
    prior_link: str | None


class RunStateWriteRow(TypedDict):
    """update_run_state: the outcome, and the size the state would have had."""

    ordinal: int
    outcome: str
    run_id: uuid.UUID | None
    run_status: str | None
    lease_key: str | None
    current_token: int | None
    state_bytes: int


class RunStateRow(TypedDict):
    """get_run_state: the run's state variables as JSON text ("{}" when none); run_id None when no such run."""

    ordinal: int
    run_id: uuid.UUID | None
    state: str


class FailTaskRow(TypedDict):
    """fail_tasks: what was done to one attempt (new_status and run_id when failed)."""

    ordinal: int
    outcome: str
    step_id: uuid.UUID
    sent_attempt: int
    prior_status: str | None
    prior_attempt: int | None
    run_status: str | None
    holder: str | None
    new_status: str | None
    run_id: uuid.UUID | None


class ClaimedTaskRow(TypedDict):
    """claim_tasks: an attempt handed to a worker's stream."""

    outcome: str
    step_id: uuid.UUID
    run_id: uuid.UUID
    step_name: str
    rpc_name: str
    data: str
    attempt_count: int
    task_expire_time: datetime
    task_timeout_time: datetime | None
    running_time: datetime


class FinishedRunRow(TypedDict):
    """finished_runs: a finished run whose attempts a worker must cancel."""

    run_id: uuid.UUID
    status: str
    error: str | None


__all__ = [
    "ClaimedTaskRow",
    "FailTaskRow",
    "FinishedRunRow",
    "RunRow",
    "RunStateRow",
    "RunStateWriteRow",
    "RunWriteRow",
    "StepLinkRow",
    "StepMoveRow",
    "StepRow",
    "StepWriteRow",
]
