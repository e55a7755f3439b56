"""Prometheus metrics of a workflow engine (prometheus_client), served over HTTP at /metrics.

Imported only when asked for (``workflowstate engine --metrics-listen``, or by a program that
passes ``PrometheusEngineMetrics()`` as the engine's ``metrics``): prometheus_client is installed
with the server, not with the client's base install. The registry is this object's own, not
prometheus_client's global one, so engines in one process never share counters.

Labels are workflow and step names (and small fixed sets of outcomes), never run ids: see _metrics.
"""

from __future__ import annotations

import logging
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, start_http_server
from prometheus_client.process_collector import ProcessCollector

from ._metrics import AttemptOutcome, CallOutcome, DriveEnd, TakenBy, TimerKind

log = logging.getLogger("workflowstate.workflows")

# No "<name>_created" series next to each counter: a process start time says the same.
disable_created_metrics()  # type: ignore[no-untyped-call]  # prometheus_client leaves it unannotated

# A step function runs for anything from a millisecond (a lookup) to minutes (a report).
STEP_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class PrometheusEngineMetrics:
    """An :class:`EngineMetrics` counting into a registry of its own, every metric named ``workflowstate_engine_*``."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self._runs_taken = Counter(
            "workflowstate_engine_runs_taken",
            "Runs a drive of this engine took under the run's lease and went on with, by workflow and what made it take "
            "the run (started: engine.start; created: a run-created event; step_outcome: a remote step's outcome for a "
            "run no engine held; stalled_scan: the stalled-run scan resumed a dead engine's run)",
            ["workflow", "taken_by"],
            registry=self.registry,
        )
        self._driving = Gauge(
            "workflowstate_engine_runs_driving", "Runs this engine drives now, by workflow", ["workflow"], registry=self.registry
        )
        self._drives_ended = Counter(
            "workflowstate_engine_drives_ended",
            "Drives of this engine that let their run go, by workflow and outcome (completed or failed: the run "
            "finished; stopped: the engine drains, the lease was lost or the run was finished elsewhere, and the "
            "next drive goes on; refused: a write was refused)",
            ["workflow", "outcome"],
            registry=self.registry,
        )
        self._step_attempts = Counter(
            "workflowstate_engine_step_attempts",
            "Local step attempts this engine recorded, by workflow, step and outcome (succeeded; retried: failed and "
            "tried again; failed: failed with no retry left; lost: its engine stopped before recording it)",
            ["workflow", "step", "outcome"],
            registry=self.registry,
        )
        self._step_durations = Histogram(
            "workflowstate_engine_step_duration_seconds",
            "Run time of a local step's function, per attempt recorded, by workflow and step",
            ["workflow", "step"],
            buckets=STEP_DURATION_BUCKETS,
            registry=self.registry,
        )
        self._calls_scheduled = Counter(
            "workflowstate_engine_calls_scheduled",
            "Remote steps (ctx.call) this engine scheduled for the Workers, by workflow and step",
            ["workflow", "step"],
            registry=self.registry,
        )
        self._calls_answered = Counter(
            "workflowstate_engine_calls_answered",
            "Remote steps this engine waited for that reached their final outcome, by workflow, step and outcome",
            ["workflow", "step", "outcome"],
            registry=self.registry,
        )
        self._timers_due = Counter(
            "workflowstate_engine_timers_due",
            "Durable timers this engine waited for that fell due, by workflow and kind (sleep; retry_delay: the wait "
            "before a local step's retry)",
            ["workflow", "kind"],
            registry=self.registry,
        )
        self._fence_refusals = Counter(
            "workflowstate_engine_fence_refusals",
            "Writes of this engine refused for a stale fencing token (another engine took the run's lease), by workflow",
            ["workflow"],
            registry=self.registry,
        )

    def run_taken(self, workflow: str, taken_by: TakenBy) -> None:
        self._runs_taken.labels(workflow, taken_by).inc()
        self._driving.labels(workflow).inc()

    def drive_ended(self, workflow: str, outcome: DriveEnd) -> None:
        self._drives_ended.labels(workflow, outcome).inc()
        self._driving.labels(workflow).dec()

    def step_attempt(self, workflow: str, step: str, outcome: AttemptOutcome, seconds: float | None) -> None:
        self._step_attempts.labels(workflow, step, outcome).inc()
        if seconds is not None:
            self._step_durations.labels(workflow, step).observe(seconds)

    def call_scheduled(self, workflow: str, step: str) -> None:
        self._calls_scheduled.labels(workflow, step).inc()

    def call_answered(self, workflow: str, step: str, outcome: CallOutcome) -> None:
        self._calls_answered.labels(workflow, step, outcome).inc()

    def timer_due(self, workflow: str, kind: TimerKind) -> None:
        self._timers_due.labels(workflow, kind).inc()

    def fence_refused(self, workflow: str) -> None:
        self._fence_refusals.labels(workflow).inc()

    def serve(self, listen: str) -> str:
        """Serve /metrics over HTTP on host:port (port 0 picks one) in a daemon thread; return the address."""
        host, _, port = listen.rpartition(":")
        server: Any
        server, _ = start_http_server(int(port), addr=host or "0.0.0.0", registry=self.registry)
        address = f"{host}:{server.server_port}"
        log.info("metrics served at http://%s/metrics", address, extra={"address": address, "path": "/metrics"})
        return address


__all__ = ["PrometheusEngineMetrics"]
