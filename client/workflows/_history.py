"""A run's history as one replay reads it: each step's record found by the step's name.

Step names identify steps: the workflow's code asks for ``"reserve"``, the history has (or has
not) a step ``"reserve"``. The history keeps which recorded steps this replay reached, so the
drive can tell new work (every recorded step reached: the replay went past the end of the
history) from changed code (a recorded step never reached while the code asks for a step the
history lacks).
"""

from __future__ import annotations

from collections import Counter

from workflowstate.client import StepAttempt, StepState, StepStatus

from ._errors import ATTEMPT_LOST


class History:
    """The steps of one run at the start of a drive, and what the drive did to them since."""

    def __init__(self, steps: list[StepState], attempts: list[StepAttempt]) -> None:
        # list_steps returns the steps in the order they were inserted; dicts keep that order.
        self._steps = {step.step_name: step for step in steps}
        self._recorded = tuple(self._steps)
        self._reached: set[str] = set()
        # The attempts that may have run without recording an outcome: a replay records them
        # as lost before the next attempt.
        self._lost: Counter[str] = Counter(
            attempt.step_name for attempt in attempts if attempt.error is not None and attempt.error.code == ATTEMPT_LOST
        )
        # (step name, attempt) made by this drive: anything else still open was left by an
        # earlier drive, which may have called the function.
        self._made_here: set[tuple[str, int]] = set()

    def reach(self, step_name: str) -> StepState | None:
        """The step's record, if the history has it, marked as reached by this replay.

        A second use of one name in a run is a programming error: its record would answer for
        two different calls.
        """
        if step_name in self._reached:
            raise ValueError(f"step name {step_name!r} is used twice in one run; each step needs its own name")
        self._reached.add(step_name)
        return self._steps.get(step_name)

    @property
    def reached_count(self) -> int:
        """How many step names this replay asked for so far."""
        return len(self._reached)

    def first_unreached(self) -> str | None:
        """The oldest recorded step this replay has not asked for; ``None`` when it reached them all."""
        return next((name for name in self._recorded if name not in self._reached), None)

    def made(self, step: StepState) -> StepState:
        """Keep ``step`` as its latest record, an attempt this drive made (inserted or retried)."""
        self._made_here.add((step.step_name, step.attempt_count))
        return self.update(step)

    def update(self, step: StepState) -> StepState:
        """Keep ``step`` as its latest record."""
        self._steps[step.step_name] = step
        return step

    def left_open_by_another_drive(self, step: StepState) -> bool:
        """Whether the step's open attempt (PENDING or RUNNING) comes from an earlier drive, which may have run it."""
        open_status = step.status in (StepStatus.PENDING, StepStatus.RUNNING)
        return open_status and (step.step_name, step.attempt_count) not in self._made_here

    def count_lost(self, step_name: str) -> None:
        """One more of the step's attempts was recorded as lost."""
        self._lost[step_name] += 1

    def failures_raised(self, step: StepState) -> int:
        """How many of the step's attempts failed by the function's own exception (lost ones left out)."""
        failed_attempts: int = step.attempt_count if step.status is StepStatus.FAILED else step.attempt_count - 1
        return failed_attempts - self._lost[step.step_name]
