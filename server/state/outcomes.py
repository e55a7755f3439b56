"""The outcome protocol: what a state-changing statement did, and what the caller is told.

Every statement that changes state (state.sql: create_run, update_run_status, insert_step,
set_step_status, create_retry_attempt; dispatch.sql: claim_tasks, fail_tasks) returns, per row,
one text column `outcome`, decided in SQL in the same statement that locks and writes:

  changed             the statement wrote the change
  same                the row already was so (an idempotent repeat): nothing written, the row returned
  missing             no run / step with that id
  finished_run        the run is finished (terminal): it takes no more run or step writes
  illegal_transition  the transition table has no such move from the current status
  different_payload   already in the target status, with another result / error / output
  wrong_attempt       the attempt named is not the step's current attempt
  not_held            the attempt is running but not held by the reporting worker stream
  timed_out           (a worker's report) the attempt ran past its start_to_close: the sweeper fails it
  stale_fence         the fencing token given is no longer its lease key's latest
  unknown_fence       no lease was ever granted on the key the fencing token names
  duplicate_name      the run already has a step of that name
  request_id_reused   the request_id was used for a run with another workflow or input
  wrong_rpc           (ClaimStep) the step runs another function than the one the caller names
  missing_child       (SetStepChildRun) no run has the child run's id
  too_large           (UpdateRunState) the run's state would grow past the payload limit
  worker_task         (set status, ClaimStep) the step is a worker's task, and the caller's token may not take one

`checked` is the one place that turns an outcome into the row (changed, same) or the server's
error with its message. An outcome it does not know is a bug in a statement, never the caller's
fault: it raises OutcomeBug, which the servicer answers as INTERNAL.

Refusals are checked in this order in every statement (the first that applies wins): missing,
unknown_fence, stale_fence, wrong_attempt, wrong_rpc, missing_child, same / different_payload,
worker_task, finished_run, illegal_transition, not_held, timed_out, too_large; duplicate_name and request_id_reused
come from the insert itself.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from ..core import errors
from .transitions import StepStatus, Via, step_sources


class Outcome(str, enum.Enum):
    """The outcome column's values."""

    CHANGED = "changed"
    SAME = "same"
    MISSING = "missing"
    FINISHED_RUN = "finished_run"
    ILLEGAL_TRANSITION = "illegal_transition"
    DIFFERENT_PAYLOAD = "different_payload"
    WRONG_ATTEMPT = "wrong_attempt"
    NOT_HELD = "not_held"
    TIMED_OUT = "timed_out"
    STALE_FENCE = "stale_fence"
    UNKNOWN_FENCE = "unknown_fence"
    DUPLICATE_NAME = "duplicate_name"
    REQUEST_ID_REUSED = "request_id_reused"
    WRONG_RPC = "wrong_rpc"
    MISSING_CHILD = "missing_child"
    TOO_LARGE = "too_large"
    WORKER_TASK = "worker_task"


# The one error class of each outcome; None: the write succeeded (the row is the answer).
ERROR_CLASS: dict[Outcome, type[errors.WorkflowStateError] | None] = {
    Outcome.CHANGED: None,
    Outcome.SAME: None,
    Outcome.MISSING: errors.NotFound,
    Outcome.FINISHED_RUN: errors.FailedPrecondition,
    Outcome.ILLEGAL_TRANSITION: errors.FailedPrecondition,
    Outcome.DIFFERENT_PAYLOAD: errors.FailedPrecondition,
    Outcome.WRONG_ATTEMPT: errors.FailedPrecondition,
    Outcome.NOT_HELD: errors.FailedPrecondition,
    Outcome.TIMED_OUT: errors.FailedPrecondition,
    Outcome.STALE_FENCE: errors.FailedPrecondition,
    Outcome.UNKNOWN_FENCE: errors.FailedPrecondition,
    Outcome.DUPLICATE_NAME: errors.AlreadyExists,
    Outcome.REQUEST_ID_REUSED: errors.AlreadyExists,
    Outcome.WRONG_RPC: errors.FailedPrecondition,
    Outcome.MISSING_CHILD: errors.NotFound,
    Outcome.TOO_LARGE: errors.TooLarge,
    Outcome.WORKER_TASK: errors.PermissionDenied,
}


class OutcomeBug(AssertionError):
    """A statement answered an outcome this module does not know, or none: a server bug."""


class Op(enum.Enum):
    """The kind of write a statement makes."""

    CREATE_RUN = "create run"
    UPDATE_RUN = "update run"
    INSERT_STEP = "insert step"
    MOVE_STEP = "move step"
    CLAIM_STEP = "claim step"  # ClaimStep: the step is named by run (ident) and step_name
    LINK_STEP = "link step"  # SetStepChildRun / SetStepBranch: `target` names what is linked
    UPDATE_RUN_STATE = "update run state"
    MOVE_VERSION = "move version"  # UpdateWorkflowVersionStatus: `version` names it


# Why a move made by something other than a set-status call needs the status it needs.
_NEEDS = {
    Via.RETRY: "a retry attempt can only follow a {sources} attempt",
    Via.CLAIM: "only a {sources} step can be handed to a worker",
    Via.COMPLETE: "only a {sources} attempt held by this stream can be completed",
    Via.TASK_FAIL: "only a {sources} attempt held by this stream can be failed",
    Via.START_TIMEOUT: "only a {sources} attempt can time out waiting for a worker",
}


@dataclass(frozen=True)
class Write:
    """What a statement was asked to do: all a refusal's message needs besides the row."""

    op: Op
    ident: uuid.UUID | None = None  # the run (runs, insert step) or step (moves) written
    target: str | None = None  # the status moved to, as stored
    via: Via | None = None  # who moves the step (MOVE_STEP only)
    attempt: int | None = None  # the attempt a worker reports on
    fence_token: int | None = None
    step_name: str | None = None
    request_id: str | None = None
    version: tuple[str, str] | None = None  # (workflow, graph_hash) of MOVE_VERSION
    rpc_name: str | None = None  # the function a ClaimStep names
    child_run_id: uuid.UUID | None = None  # the child a SetStepChildRun names
    max_bytes: int | None = None  # the limit an UpdateRunState is held to

    @property
    def subject(self) -> str:
        if self.op is Op.MOVE_VERSION and self.version is not None:
            return f"version {self.version[1]!r} of workflow {self.version[0]!r}"
        if self.op is Op.CLAIM_STEP:
            return f"step {self.step_name!r} of run {self.ident}"
        if self.op not in (Op.MOVE_STEP, Op.LINK_STEP):
            return f"run {self.ident}"
        if self.attempt is not None:
            return f"attempt {self.attempt} of step {self.ident}"
        return f"step {self.ident}"


RowT = TypeVar("RowT", bound=Mapping[str, Any])


def checked(row: RowT | None, write: Write) -> RowT:
    """The row when the write was made (or already so); else raise its refusal."""
    if row is None:
        raise OutcomeBug(f"the statement of {write.op.value} returned no row")
    error = refusal(row.get("outcome"), write, row)
    if error is not None:
        raise error
    return row


def refusal(outcome: str | None, write: Write, row: Mapping[str, Any]) -> errors.WorkflowStateError | None:
    """The error (class and message) of an outcome, None for changed and same.

    `row` gives the context the statement returned beside its outcome: prior_status,
    prior_attempt, run_status, lease_key, current_token, holder and run_id, as it has them.
    """
    try:
        known = Outcome(outcome)
    except ValueError:
        raise OutcomeBug(f"unknown outcome {outcome!r} of {write.op.value}") from None
    error_class = ERROR_CLASS[known]
    if error_class is None:
        return None
    message = _message(known, write, row)
    if error_class in (errors.FailedPrecondition, errors.PermissionDenied):
        message += "; nothing was written"
    # The outcome's own name is the reason programs match on (the README's error table lists them).
    return error_class(message, reason=known.name, metadata=_context(write, row))


# The columns a statement returns beside its outcome that tell the caller why (as the message does).
_ROW_CONTEXT = (
    "prior_status",
    "prior_attempt",
    "run_status",
    "lease_key",
    "current_token",
    "holder",
    "worker_id",
    "attempt_count",
    "prior_rpc_name",
    "prior_link",
    "state_bytes",
)
_STATUS_COLUMNS = ("prior_status", "run_status")


def _context(write: Write, row: Mapping[str, Any]) -> dict[str, object]:
    """A refusal's metadata: what was asked (the write) and what the statement found (the row)."""
    context: dict[str, object] = {
        "step_id" if write.op in (Op.MOVE_STEP, Op.LINK_STEP) else "run_id": write.ident,
        # A status moved to (a link's target names what is linked, not a status).
        "target_status": _name(write.target) if write.target and write.op in (Op.UPDATE_RUN, Op.MOVE_STEP, Op.MOVE_VERSION) else None,
        "attempt": write.attempt,
        "fence_token": write.fence_token,
        "step_name": write.step_name,
        "request_id": write.request_id,
        "rpc_name": write.rpc_name if write.rpc_name is not None else row.get("rpc_name"),
        "child_run_id": write.child_run_id,
        "max_bytes": write.max_bytes,
    }
    if write.version is not None:
        context["workflow"], context["graph_hash"] = write.version
    if write.op is Op.CREATE_RUN:
        # The run a reused request_id already names.
        context["run_id"] = row.get("run_id")
    for column in _ROW_CONTEXT:
        value = row.get(column)
        context[column] = _name(value) if column in _STATUS_COLUMNS and value is not None else value
    return context


def _message(outcome: Outcome, write: Write, row: Mapping[str, Any]) -> str:
    prior = _name(row.get("prior_status"))
    match outcome:
        case Outcome.MISSING:
            if write.op is Op.MOVE_VERSION:
                return f"{write.subject} not found"
            if write.op is Op.CLAIM_STEP:
                return f"run {write.ident} has no step named {write.step_name!r}"
            return f"{'step' if write.op in (Op.MOVE_STEP, Op.LINK_STEP) else 'run'} {write.ident} not found"
        case Outcome.WRONG_RPC:
            return (
                f"{write.subject} runs rpc_name {row.get('prior_rpc_name')!r}, not {write.rpc_name!r}: "
                "a message naming another function must not run it"
            )
        case Outcome.MISSING_CHILD:
            return f"child_run_id: run {write.child_run_id} not found"
        case Outcome.TOO_LARGE:
            return (
                f"the state of {write.subject} would be {row.get('state_bytes')} bytes, over the limit of "
                f"{write.max_bytes} bytes; nothing was written"
            )
        case Outcome.UNKNOWN_FENCE:
            return f"fencing token {write.fence_token} is unknown: no lease was ever granted on {row.get('lease_key')!r}"
        case Outcome.STALE_FENCE:
            return (
                f"stale fencing token {write.fence_token} for lease {row.get('lease_key')!r}: "
                f"the current token is {row.get('current_token')}"
            )
        case Outcome.REQUEST_ID_REUSED:
            return f"request_id {write.request_id!r} was already used for run {row.get('run_id')} with a different workflow or input"
        case Outcome.DUPLICATE_NAME:
            return f"run {write.ident} already has a step named {write.step_name!r}"
        case Outcome.WRONG_ATTEMPT:
            return f"{write.subject} is over: the step is at attempt {row.get('prior_attempt')} ({prior})"
        case Outcome.NOT_HELD:
            holder = row.get("holder")
            if holder is None:
                return f"{write.subject} is {prior} but was not handed to a worker stream"
            return f"{write.subject} is held by another stream (worker {holder!r}), not this one"
        case Outcome.WORKER_TASK:
            holder = row.get("worker_id")
            why = (
                f"worker {holder!r} holds its attempt {row.get('attempt_count')}"
                if holder
                else f"it is due for the connected workers of rpc_name {row.get('rpc_name')!r}"
            )
            return (
                f"{write.subject} is a worker's task ({why}): only a 'worker' token takes it and reports its result, "
                "through StreamStepTasks (or an 'admin' token)"
            )
        case Outcome.TIMED_OUT:
            return f"{write.subject} timed out: it ran past its start_to_close, and fails as timed out"
        case Outcome.DIFFERENT_PAYLOAD:
            if write.op is Op.LINK_STEP:
                return f"{write.subject} already has {write.target} {row.get('prior_link')!r} for attempt {row.get('prior_attempt')}"
            if write.op is Op.UPDATE_RUN:
                what = "output or error"
            else:
                what = "result" if write.target == "succeeded" else "error"
            return f"{write.subject} is already {prior} with a different {what}"
        case Outcome.FINISHED_RUN:
            if write.op is Op.UPDATE_RUN:
                return f"{write.subject} is {prior}; a finished run cannot become {_name(write.target)}"
            if write.op is Op.INSERT_STEP:
                return f"{write.subject} is {_name(row.get('run_status'))}; a finished run takes no new steps"
            if write.op is Op.UPDATE_RUN_STATE:
                return f"{write.subject} is {_name(row.get('run_status'))}; a finished run takes no state writes"
            return f"{write.subject} belongs to a run that is {_name(row.get('run_status'))}; a finished run takes no step writes"
        case Outcome.ILLEGAL_TRANSITION:
            if write.via is None or write.via in (Via.SET_STATUS, Via.SUSPEND):
                return f"{write.subject} cannot move from {prior} to {_name(write.target)}"
            sources = " or ".join(_name(source) for source in step_sources(StepStatus(write.target), write.via))
            return f"{write.subject} is {prior}, not {sources}: {_NEEDS[write.via].format(sources=sources)}"
    raise OutcomeBug(f"outcome {outcome.value} has an error class but no message")


def missing(message: str, **context: object) -> errors.NotFound:
    """The refusal of a read or delete whose run, step or version does not exist: named as a statement's
    missing outcome is (reason MISSING), with the ids the request named as its metadata."""
    return errors.NotFound(message, reason=Outcome.MISSING.name, metadata=context)


def _name(status: str | None) -> str:
    """A stored status as the caller knows it (the enum's name)."""
    return status.upper() if status else "?"
