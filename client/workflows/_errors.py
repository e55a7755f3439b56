"""The exceptions a workflow and its caller see."""

from __future__ import annotations

from workflowstate.client import Failure, RunStatus

ATTEMPT_LOST = "AttemptLost"
"""The error code of an attempt whose engine stopped before recording its outcome (it may have run)."""

NON_DETERMINISM = "NonDeterminism"
"""The error code of a run failed because its replay no longer matches its history."""


class StepFailed(Exception):
    """A step failed for good (its retries used up); raised by ``ctx.step`` / ``ctx.call`` / ``ctx.child``.

    Uncaught, it fails the run with the step's own failure (message, code and stack).
    """

    def __init__(self, step_name: str, failure: Failure) -> None:
        super().__init__(f"step {step_name!r} failed: {failure.message}")
        self.step_name = step_name
        self.failure = failure


class NonDeterminismError(Exception):
    """The workflow's replay asked for a step the run's history does not have, where it has another."""

    def __init__(self, new_step: str, recorded_step: str) -> None:
        super().__init__(
            f"the workflow asked for step {new_step!r}, which the run's history does not have, where the history "
            f"has step {recorded_step!r} not replayed: the workflow's code changed under a running run "
            "(register the new code under a new version for new runs)"
        )
        self.new_step = new_step
        self.recorded_step = recorded_step


class WorkflowFailed(Exception):
    """The run ended FAILED or CANCELLED; raised by ``engine.result``."""

    def __init__(self, run_id: str, status: RunStatus, failure: Failure | None) -> None:
        reason = failure.message if failure else "no error recorded"
        super().__init__(f"run {run_id} ended {status.value}: {reason}")
        self.run_id = run_id
        self.status = status
        self.failure = failure


class Interrupted(BaseException):
    """The drive of a run stops here: the engine drains, or lost the run's lease.

    A BaseException, as asyncio.CancelledError is, so a workflow's ``except Exception`` does not
    swallow it. The run's history is whole; the next drive replays it and goes on.
    """
