"""A run's steps and attempts laid out on one time axis, for the run page.

Each attempt is a bar from its start to its last change (to now while it is not over), placed
between the run's creation and its end (or now). The history keeps no worker per attempt: the
worker shown is the step's, for its current attempt only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from workflowstate.client import Run, RunStatus, StepAttempt, StepState, StepStatus, UndecodableJson

_OVER = {StepStatus.SUCCEEDED, StepStatus.FAILED}
# A bar never narrower than this share of the axis, so an instant attempt stays visible and clickable.
_MIN_WIDTH_PERCENT = 0.8


@dataclass(frozen=True)
class AttemptBar:
    attempt: StepAttempt
    worker_id: str | None
    duration: timedelta
    left_percent: float
    width_percent: float
    result_json: str | None

    @property
    def over(self) -> bool:
        return self.attempt.status in _OVER


@dataclass(frozen=True)
class StepLine:
    step: StepState
    attempts: list[AttemptBar]

    @property
    def retryable(self) -> bool:
        """Whether the dashboard offers "retry": the step failed for good (no attempt is coming)."""
        return self.step.status is StepStatus.FAILED


@dataclass(frozen=True)
class Timeline:
    start: datetime
    end: datetime
    steps: list[StepLine]


def build_timeline(run: Run, steps: list[StepState], history: list[StepAttempt], now: datetime) -> Timeline:
    start = run.create_time
    end = run.update_time if run.status not in (RunStatus.RUNNING, RunStatus.SUSPENDED) else now
    for attempt in history:
        end = max(end, attempt.update_time if attempt.status in _OVER else now)
    span = max((end - start).total_seconds(), 1e-3)
    by_step: dict[str, list[StepAttempt]] = {}
    for attempt in history:
        by_step.setdefault(attempt.step_id, []).append(attempt)
    lines = []
    for step in steps:
        bars = []
        for attempt in sorted(by_step.get(step.step_id, []), key=lambda a: a.attempt):
            finish = attempt.update_time if attempt.status in _OVER else now
            left = 100.0 * (attempt.create_time - start).total_seconds() / span
            width = 100.0 * (finish - attempt.create_time).total_seconds() / span
            left = min(max(left, 0.0), 100.0 - _MIN_WIDTH_PERCENT)
            bars.append(
                AttemptBar(
                    attempt=attempt,
                    worker_id=step.worker_id if attempt.attempt == step.attempt_count else None,
                    duration=finish - attempt.create_time,
                    left_percent=round(left, 2),
                    width_percent=round(min(max(width, _MIN_WIDTH_PERCENT), 100.0 - left), 2),
                    result_json=_json(attempt.result) if attempt.status is StepStatus.SUCCEEDED else None,
                )
            )
        lines.append(StepLine(step, bars))
    return Timeline(start, end, lines)


# How much of a value's JSON text the page shows when the dashboard cannot decode it.
_UNDECODABLE_SHOWN = 2000


def _json(value: Any) -> str:
    if isinstance(value, UndecodableJson):
        shown = value.text if len(value.text) <= _UNDECODABLE_SHOWN else value.text[:_UNDECODABLE_SHOWN] + "…"
        return f"{value}\n\n{shown}"
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)


def format_duration(span: timedelta) -> str:
    seconds = max(span.total_seconds(), 0.0)
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"
