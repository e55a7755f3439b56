"""The rows the statements of state.sql, catalog.sql, versions.sql and dispatch.sql's state changes
return, one TypedDict per shape.

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


class RunColumns(TypedDict):
    """The columns of table runs every run row has (input aside: a list may leave it out)."""

    run_id: uuid.UUID
    workflow: str
    status: str
    output: str | None
    error: str | None
    create_time: datetime
    update_time: datetime
    inline: bool
    graph_hash: str | None
    metadata: str | None
    deterministic: bool
    planned_steps: str | None
    schedule_id: str | None
    schedule_time: datetime | None


class RunSummary(RunColumns):
    """list_runs_*: a run as a page of runs shows it; without `full` its payloads (input, output,
    metadata, planned_steps, the error's stack) are None."""

    input: str | None


class RunRecord(RunColumns):
    """A whole row of table runs."""

    input: str
    request_id: str | None
    fencing_token: int | None
    state: str | None


class RunRow(RunRecord):
    """get_run: a row of table runs, with its input's ordinal."""

    ordinal: int


class RunCancelRow(RunRecord):
    """cancel_run: the run as written (changed) or as it is, the outcome and the status before."""

    outcome: str
    prior_status: str | None


class RunWriteRow(RunRow):
    """create_run, update_run_status: the run as written (changed) or as it is, and the outcome."""

    outcome: str
    # update_run_status only: the run's status before, and the fence it was checked against.
    prior_status: NotRequired[str | None]
    lease_key: NotRequired[str | None]
    current_token: NotRequired[int | None]


class StepOptionColumns(TypedDict):
    """A step's retry and dispatch options as stored, in table steps and in table dispatch_defaults
    (state/options.py: None is not set)."""

    retries: int | None
    retry_delay: timedelta | None
    backoff_coefficient: float | None
    max_retry_delay: timedelta | None
    jitter: float | None
    start_to_close: timedelta | None
    schedule_to_start: timedelta | None
    priority: int | None


class StepRecord(StepOptionColumns):
    """A whole row of table steps (list_steps)."""

    step_id: uuid.UUID
    run_id: uuid.UUID
    step_name: str
    rpc_name: str
    data: str
    status: str
    result: str | None
    error: str | None
    attempt_count: int
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
    concurrency_key: str | None
    task_timeout_time: datetime | None
    start_timeout_time: datetime | None


class StepRow(StepRecord):
    """get_step, get_step_by_id: a row of table steps, with its input's ordinal."""

    ordinal: int


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


class AttemptRow(TypedDict):
    """get_run_history: one attempt of a step (a run without steps has one row, every column None)."""

    step_id: uuid.UUID
    step_name: str
    attempt: int
    status: str
    result: str | None
    error: str | None
    create_time: datetime
    update_time: datetime
    scheduled_time: datetime | None
    running_time: datetime | None
    succeeded_time: datetime | None
    failed_time: datetime | None


class RunCountRow(TypedDict):
    """count_runs_by_workflow: how many runs of a workflow are in a status."""

    workflow: str
    status: str
    runs: int


class RunIdRow(TypedDict):
    """cancel_runs: a run the statement changed."""

    run_id: uuid.UUID


class RunDeleteRow(TypedDict):
    """delete_run: the outcome (missing, running, deleted) and the run's status (None when missing)."""

    outcome: str
    status: str | None


class DeletedRunRow(TypedDict):
    """delete_runs: a run erased, with its place in the order of runs."""

    run_id: uuid.UUID
    create_time: datetime


class StalledRunRow(TypedDict):
    """list_stalled_runs: a running run nothing moves, and its last change (of it or a step)."""

    run_id: uuid.UUID
    last_change: datetime


class UndispatchedStepRow(TypedDict):
    """list_undispatched_steps: a pending step of a running run."""

    run_id: uuid.UUID
    step_id: uuid.UUID


class VersionRow(TypedDict):
    """A row of table workflow_versions (get_workflow_version)."""

    workflow: str
    graph_hash: str
    graph: str
    source: str
    status: str
    create_time: datetime
    update_time: datetime


class VersionUpsertRow(VersionRow):
    """upsert_workflow_version: the version, and whether this statement created it."""

    created: bool


class VersionMoveRow(VersionRow):
    """update_workflow_version_status: the version as written or as it is, the outcome and the status before."""

    outcome: str
    prior_status: str | None


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
    "AttemptRow",
    "ClaimedTaskRow",
    "DeletedRunRow",
    "FailTaskRow",
    "FinishedRunRow",
    "RunCancelRow",
    "RunColumns",
    "RunCountRow",
    "RunDeleteRow",
    "RunIdRow",
    "RunRecord",
    "RunRow",
    "RunStateRow",
    "RunStateWriteRow",
    "RunSummary",
    "RunWriteRow",
    "StalledRunRow",
    "StepLinkRow",
    "StepMoveRow",
    "StepOptionColumns",
    "StepRecord",
    "StepRow",
    "StepWriteRow",
    "UndispatchedStepRow",
    "VersionMoveRow",
    "VersionRow",
    "VersionUpsertRow",
]
