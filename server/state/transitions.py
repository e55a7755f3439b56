"""The legal status transitions of steps and runs: the one table the whole server obeys.

The store never decides legality in Python after the fact: it passes the set of statuses a
change may start from (computed here) into the statement that makes the change, so the check and
the write happen atomically in the database. Setting the status a step or run already has is not
in these tables: it is a no-op that succeeds, so a retried call is safe.
"""

from __future__ import annotations

import enum


class StepStatus(str, enum.Enum):
    """Status of a step's current attempt, as stored (lower-case text)."""

    PENDING = "pending"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class RunStatus(str, enum.Enum):
    """Status of a run, as stored (lower-case text)."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Via(enum.Enum):
    """Which call performs a step transition."""

    SET_STATUS = "set status"  # SetStepScheduled / SetStepRunning / SetStepResult / SetStepError
    RETRY = "retry attempt"  # CreateRetryAttempt: a new attempt, attempt_count + 1


S = StepStatus
STEP_TRANSITIONS: dict[StepStatus, dict[StepStatus, Via]] = {
    S.PENDING: {S.SCHEDULED: Via.SET_STATUS, S.RUNNING: Via.SET_STATUS, S.SUCCEEDED: Via.SET_STATUS, S.FAILED: Via.SET_STATUS},
    S.SCHEDULED: {S.RUNNING: Via.SET_STATUS, S.SUCCEEDED: Via.SET_STATUS, S.FAILED: Via.SET_STATUS},
    S.RUNNING: {S.SUCCEEDED: Via.SET_STATUS, S.FAILED: Via.SET_STATUS},
    S.SUCCEEDED: {},
    S.FAILED: {S.PENDING: Via.RETRY, S.RUNNING: Via.RETRY},
}

R = RunStatus
RUN_TRANSITIONS: dict[RunStatus, set[RunStatus]] = {
    R.RUNNING: {R.COMPLETED, R.FAILED, R.CANCELLED},
    R.COMPLETED: set(),
    R.FAILED: set(),
    R.CANCELLED: set(),
}

# A run in one of these takes no more run or step writes.
TERMINAL_RUN_STATUSES = frozenset(status for status, targets in RUN_TRANSITIONS.items() if not targets)


def step_sources(target: StepStatus, via: Via) -> list[str]:
    """The statuses a step may be in for `via` to move it to `target`."""
    return [source.value for source, targets in STEP_TRANSITIONS.items() if targets.get(target) is via]


def run_sources(target: RunStatus) -> list[str]:
    """The statuses a run may be in to move to `target`."""
    return [source.value for source, targets in RUN_TRANSITIONS.items() if target in targets]


def retry_start_statuses() -> frozenset[StepStatus]:
    """The statuses a retry attempt may start in."""
    return frozenset(target for targets in STEP_TRANSITIONS.values() for target, via in targets.items() if via is Via.RETRY)
