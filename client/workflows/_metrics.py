"""``EngineMetrics``: what an engine reports as it drives runs, for whoever counts it.

The engine calls these at the moments they name; the default, :data:`NO_METRICS`, does nothing,
so the base install (grpcio and protobuf) needs no metrics library. ``workflowstate.workflows.prometheus``
implements them with prometheus_client (the ``workflowstate engine --metrics-listen`` command uses it).

Every call names the workflow, and the step where there is one, by the names the code gives them:
a bounded set, fit for metric labels. Never a run's id: runs are unbounded, and one series per run
would grow a metrics store without end (the logs name the run).
"""

from __future__ import annotations

from typing import Literal, Protocol

TakenBy = Literal["started", "created", "step_outcome", "stalled_scan"]
"""What made an engine take a run: its own ``engine.start``, a run-created event, a remote step's
outcome for a run no engine held, or the stalled-run scan (the run's engine died)."""

DriveEnd = Literal["completed", "failed", "stopped", "refused"]
"""How a drive ended: the run completed or failed; the drive stopped (the engine drains, the lease
was lost, the run was finished elsewhere) and the run goes on with the next drive; or a write was refused."""

AttemptOutcome = Literal["succeeded", "retried", "failed", "lost"]
"""A local step attempt's recorded outcome: succeeded; failed and tried again; failed for good (no
retry left); lost (its engine stopped before recording an outcome; recorded by the next drive)."""

CallOutcome = Literal["succeeded", "failed"]
"""The final outcome of a remote step (the server retried its attempts before)."""

TimerKind = Literal["sleep", "retry_delay"]
"""A durable sleep (``ctx.sleep``, ``ctx.sleep_until``), or the wait before a local step's retry."""


class EngineMetrics(Protocol):
    """What a :class:`WorkflowEngine` reports; pass one as ``WorkflowEngine(..., metrics=...)``.

    Each method is called in the engine's event loop and must return at once.
    """

    def run_taken(self, workflow: str, taken_by: TakenBy) -> None:
        """A drive holds the run's lease and goes on with the run (it was RUNNING)."""

    def drive_ended(self, workflow: str, outcome: DriveEnd) -> None:
        """A drive that took a run (``run_taken``) let it go."""

    def step_attempt(self, workflow: str, step: str, outcome: AttemptOutcome, seconds: float | None) -> None:
        """A local step's attempt was recorded by this engine; ``seconds`` is its function's run time (``None`` when lost)."""

    def call_scheduled(self, workflow: str, step: str) -> None:
        """A remote step (``ctx.call``) was scheduled for the Workers."""

    def call_answered(self, workflow: str, step: str, outcome: CallOutcome) -> None:
        """A remote step this engine waited for reached its final outcome."""

    def timer_due(self, workflow: str, kind: TimerKind) -> None:
        """A durable timer this engine waited for fell due."""

    def fence_refused(self, workflow: str) -> None:
        """A write of a drive was refused for a stale fencing token: another engine took the run's lease."""


class _NoMetrics:
    """Reports nothing."""

    def run_taken(self, workflow: str, taken_by: TakenBy) -> None:
        pass

    def drive_ended(self, workflow: str, outcome: DriveEnd) -> None:
        pass

    def step_attempt(self, workflow: str, step: str, outcome: AttemptOutcome, seconds: float | None) -> None:
        pass

    def call_scheduled(self, workflow: str, step: str) -> None:
        pass

    def call_answered(self, workflow: str, step: str, outcome: CallOutcome) -> None:
        pass

    def timer_due(self, workflow: str, kind: TimerKind) -> None:
        pass

    def fence_refused(self, workflow: str) -> None:
        pass


NO_METRICS: EngineMetrics = _NoMetrics()
"""The engine's default: nothing is counted."""
