"""The legal status moves of steps and runs: the one table the whole server obeys.

Every statement that changes a status takes the statuses it may start from, and the status it
moves to, from here as parameters (see step_sources), so the check and the write happen
atomically in the database and no statement decides legality on its own. Setting the status a
step or run already has is not a move: it is a no-op that succeeds (outcome `same`), so a retried
call is safe.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class StepStatus(str, enum.Enum):
    """Status of a step's current attempt, as stored (lower-case text)."""

    PENDING = "pending"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SUSPENDED = "suspended"


class RunStatus(str, enum.Enum):
    """Status of a run, as stored (lower-case text)."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    SUSPENDED = "suspended"  # last, as in the proto's numbering (ListWorkflows counts in this order)


class Via(enum.Enum):
    """Which part of the server makes a step move."""

    SET_STATUS = "set status"  # SetStepScheduled / SetStepRunning / SetStepResult / SetStepError
    RETRY = "retry attempt"  # CreateRetryAttempt: a new attempt, attempt_count + 1
    CLAIM = "claim"  # dispatch hands a due scheduled step to a worker's stream
    COMPLETE = "complete"  # a worker's complete of the attempt its stream holds
    TASK_FAIL = "task fail"  # a worker's fail of the attempt its stream holds, or its worker was lost
    AUTO_RETRY = "automatic retry"  # right after a task fail with retries left: the next attempt, scheduled
    SUSPEND = "suspend"  # SetStepSuspended: the attempt waits for something outside the workflow
    CLAIM_STEP = "claim step"  # ClaimStep: an engine takes the step to run it itself
    START_TIMEOUT = "schedule-to-start timeout"  # the sweeper: a scheduled attempt nobody claimed in time


@dataclass(frozen=True)
class Move:
    """One legal step move: from `source` to `target`, made by `via`."""

    source: StepStatus
    target: StepStatus
    via: Via
    # Whether the move starts the step's next attempt (attempt_count + 1, a new history row).
    next_attempt: bool = False


S = StepStatus
STEP_MOVES: tuple[Move, ...] = (
    Move(S.PENDING, S.SCHEDULED, Via.SET_STATUS),
    Move(S.PENDING, S.RUNNING, Via.SET_STATUS),
    Move(S.PENDING, S.SUCCEEDED, Via.SET_STATUS),
    Move(S.PENDING, S.FAILED, Via.SET_STATUS),
    Move(S.SCHEDULED, S.RUNNING, Via.SET_STATUS),
    Move(S.SCHEDULED, S.SUCCEEDED, Via.SET_STATUS),
    Move(S.SCHEDULED, S.FAILED, Via.SET_STATUS),
    Move(S.RUNNING, S.SUCCEEDED, Via.SET_STATUS),
    Move(S.RUNNING, S.FAILED, Via.SET_STATUS),
    Move(S.FAILED, S.PENDING, Via.RETRY, next_attempt=True),
    Move(S.FAILED, S.RUNNING, Via.RETRY, next_attempt=True),
    # Remote mode: a claim hands the attempt to one worker's stream, which alone may report it.
    Move(S.SCHEDULED, S.RUNNING, Via.CLAIM),
    Move(S.RUNNING, S.SUCCEEDED, Via.COMPLETE),
    # A task fail (reported, or the worker lost) fails the attempt; with retries left the step
    # moves on at once, in the same statement, to its next attempt, scheduled.
    Move(S.RUNNING, S.FAILED, Via.TASK_FAIL),
    Move(S.FAILED, S.SCHEDULED, Via.AUTO_RETRY, next_attempt=True),
    # Engine state: an attempt not finished may be suspended; whatever resumes it
    # (an approval, a signal) moves it on with the set-status calls. A worker holding it loses it.
    Move(S.PENDING, S.SUSPENDED, Via.SUSPEND),
    Move(S.SCHEDULED, S.SUSPENDED, Via.SUSPEND),
    Move(S.RUNNING, S.SUSPENDED, Via.SUSPEND),
    Move(S.SUSPENDED, S.SCHEDULED, Via.SET_STATUS),
    Move(S.SUSPENDED, S.RUNNING, Via.SET_STATUS),
    Move(S.SUSPENDED, S.SUCCEEDED, Via.SET_STATUS),
    Move(S.SUSPENDED, S.FAILED, Via.SET_STATUS),
    # ClaimStep: a step not started yet is taken to RUNNING; a failed one starts its next attempt
    # in RUNNING. A step in any other status is not claimed (returned as it is, nothing written).
    Move(S.PENDING, S.RUNNING, Via.CLAIM_STEP),
    Move(S.SCHEDULED, S.RUNNING, Via.CLAIM_STEP),
    Move(S.FAILED, S.RUNNING, Via.CLAIM_STEP, next_attempt=True),
    # A scheduled attempt not claimed within its schedule_to_start fails, without retry. (An
    # attempt that runs past its start_to_close is a task fail, retried as any other.)
    Move(S.SCHEDULED, S.FAILED, Via.START_TIMEOUT),
)

# Where every step starts (InsertStepState).
STEP_START = S.PENDING

class RunVia(enum.Enum):
    """Which part of the server makes a run move."""

    UPDATE = "update status"  # UpdateRunStatus: the workflow finishes its run
    CANCEL = "cancel"  # CancelRun / CancelRuns: an operator stops it (its workers are told)


@dataclass(frozen=True)
class RunMove:
    """One legal run move: from `source` to `target`, made by `via`."""

    source: RunStatus
    target: RunStatus
    via: RunVia


R = RunStatus
RUN_MOVES: tuple[RunMove, ...] = (
    RunMove(R.RUNNING, R.COMPLETED, RunVia.UPDATE),
    RunMove(R.RUNNING, R.FAILED, RunVia.UPDATE),
    RunMove(R.RUNNING, R.CANCELLED, RunVia.UPDATE),
    RunMove(R.RUNNING, R.CANCELLED, RunVia.CANCEL),
    # Engine state: a run paused until something outside it lets it go on. It may run
    # again or finish straight from there (Pikku completes a suspended run when it replays it).
    RunMove(R.RUNNING, R.SUSPENDED, RunVia.UPDATE),
    RunMove(R.SUSPENDED, R.RUNNING, RunVia.UPDATE),
    RunMove(R.SUSPENDED, R.COMPLETED, RunVia.UPDATE),
    RunMove(R.SUSPENDED, R.FAILED, RunVia.UPDATE),
    RunMove(R.SUSPENDED, R.CANCELLED, RunVia.UPDATE),
    RunMove(R.SUSPENDED, R.CANCELLED, RunVia.CANCEL),
)

# Where each run status may go, whoever moves it.
RUN_TRANSITIONS: dict[RunStatus, set[RunStatus]] = {
    status: {move.target for move in RUN_MOVES if move.source is status} for status in RunStatus
}

# Where every run starts (CreateRun).
RUN_START = R.RUNNING

# A move to one of these without an error given clears the run's stored error: it described
# the suspension the run has left (a finished run with an error keeps it).
RUN_STATUSES_WITHOUT_ERROR = frozenset({R.RUNNING, R.COMPLETED})

# A run in one of these takes no more run or step writes; a run in one of the others does.
TERMINAL_RUN_STATUSES = frozenset(status for status, targets in RUN_TRANSITIONS.items() if not targets)
OPEN_RUN_STATUSES = frozenset(RunStatus) - TERMINAL_RUN_STATUSES


class VersionStatus(str, enum.Enum):
    """Status of a version of a workflow's graph (UpsertWorkflowVersion), as stored."""

    DRAFT = "draft"
    ACTIVE = "active"
    DECLINED = "declined"


@dataclass(frozen=True)
class VersionMove:
    """One legal move of a workflow version's status (UpdateWorkflowVersionStatus)."""

    source: VersionStatus
    target: VersionStatus


V = VersionStatus
VERSION_MOVES: tuple[VersionMove, ...] = (
    VersionMove(V.DRAFT, V.ACTIVE),
    VersionMove(V.DRAFT, V.DECLINED),
    VersionMove(V.ACTIVE, V.DECLINED),
    VersionMove(V.DECLINED, V.ACTIVE),
)

# Where a version starts when its creator names no status.
VERSION_START = V.ACTIVE


def version_sources(target: VersionStatus) -> list[str]:
    """The statuses a version may be in to move to `target` (sorted, as stored)."""
    return sorted(move.source.value for move in VERSION_MOVES if move.target is target)


def step_sources(target: StepStatus, via: Via) -> list[str]:
    """The statuses a step may be in for `via` to move it to `target` (sorted, as stored)."""
    return sorted(move.source.value for move in STEP_MOVES if move.target is target and move.via is via)


def step_targets(via: Via) -> frozenset[StepStatus]:
    """The statuses `via` may move a step to."""
    return frozenset(move.target for move in STEP_MOVES if move.via is via)


def only_target(via: Via) -> StepStatus:
    """The one status `via` moves a step to (claim, complete, task fail, automatic retry)."""
    [target] = step_targets(via)
    return target


def run_sources(target: RunStatus, via: RunVia = RunVia.UPDATE) -> list[str]:
    """The statuses a run may be in for `via` to move it to `target` (sorted, as stored)."""
    return sorted(move.source.value for move in RUN_MOVES if move.target is target and move.via is via)


def run_target(via: RunVia) -> RunStatus:
    """The one status `via` moves a run to (cancel)."""
    [target] = {move.target for move in RUN_MOVES if move.via is via}
    return target


def open_run_statuses() -> list[str]:
    """The run statuses that still take run and step writes, as a statement parameter."""
    return sorted(status.value for status in OPEN_RUN_STATUSES)


def next_attempt_sources(target: StepStatus, via: Via) -> list[str]:
    """Of step_sources(target, via), those from which the move starts the step's next attempt."""
    return sorted(move.source.value for move in STEP_MOVES if move.target is target and move.via is via and move.next_attempt)


def run_clears_error(target: RunStatus) -> bool:
    """Whether a move of a run to `target` with no error given clears its stored error."""
    return target in RUN_STATUSES_WITHOUT_ERROR


def retry_start_statuses() -> frozenset[StepStatus]:
    """The statuses a retry attempt (CreateRetryAttempt) may start in."""
    return step_targets(Via.RETRY)


def held_by_worker() -> StepStatus:
    """The status of an attempt a worker's stream holds: where a claim leads."""
    return only_target(Via.CLAIM)
