"""Prometheus metrics of one server process, served over HTTP when --metrics-listen is given.

Counted where things happen: every RPC's outcome and, for unary RPCs, its duration (servicer.rpc);
open streams by method; operations per grouped statement (db/coalescer.py); attempts handed to workers and attempts failed because their worker was
lost (dispatch); runs erased by the retention policies (retention); restarts of background tasks after an unexpected error, and which of them run
(the supervisor, through callbacks app.py gives it); the connection pool and the database's health are read when scraped. The
registry is the server's own, not prometheus_client's global one, so servers in one process (the
tests start several) never share counters.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import grpc
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

log = logging.getLogger("workflowstate.server.metrics")

# No "<name>_created" series next to each counter: a process start time says the same.
disable_created_metrics()  # type: ignore[no-untyped-call]  # prometheus_client leaves it unannotated

# Operations in one grouped statement (db/coalescer.py): 1 when idle, up to --group-max-operations.
GROUP_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)

# Unary calls take about a millisecond; a slow database or lock wait stretches them to seconds.
DURATION_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _PoolCollector(Collector):
    """The connection pool's numbers (psycopg_pool's get_stats()), read at each scrape."""

    def __init__(self, stats: Callable[[], dict[str, int]]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[GaugeMetricFamily]:
        stats = self._stats()
        for key, help_text in (
            ("pool_size", "Connections the pool holds, in use or idle"),
            ("pool_available", "Idle connections in the pool"),
            ("requests_waiting", "Calls waiting for a connection"),
        ):
            yield GaugeMetricFamily(f"workflowstate_db_{key}", help_text, value=stats.get(key, 0))


class Metrics:
    """The server's metrics; cheap enough to keep up to date whether or not they are served."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self._rpcs = Counter(
            "workflowstate_rpcs", "RPCs finished, by method and status code", ["method", "code"], registry=self.registry
        )
        self._durations = Histogram(
            "workflowstate_rpc_duration_seconds", "Time to answer a unary RPC", ["method"], buckets=DURATION_BUCKETS, registry=self.registry
        )
        self._batch_operations = Counter(
            "workflowstate_batch_operations",
            "Operations run inside Batch calls, by operation (the unary RPC's name) and status code",
            ["operation", "code"],
            registry=self.registry,
        )
        self._group_sizes = Histogram(
            "workflowstate_db_group_size",
            "Operations in one run of a grouped statement, by statement: its _count is statements run, its _sum operations, "
            "so _sum / _count is operations per statement",
            ["statement"],
            buckets=GROUP_SIZE_BUCKETS,
            registry=self.registry,
        )
        self._open_streams = Gauge("workflowstate_open_streams", "Streams open now, by method", ["method"], registry=self.registry)
        self.tasks_dispatched = Counter(
            "workflowstate_tasks_dispatched", "Step attempts handed to workers over StreamStepTasks", registry=self.registry
        )
        self.tasks_lost = Counter(
            "workflowstate_tasks_lost", "Step attempts failed because their worker was lost", registry=self.registry
        )
        self.runs_deleted_by_retention = Counter(
            "workflowstate_runs_deleted_by_retention",
            "Runs erased (with their steps, attempts and events) by the retention policies, by this server",
            registry=self.registry,
        )
        self.runs_created_by_schedules = Counter(
            "workflowstate_runs_created_by_schedules",
            "Runs created by this server for the occurrences of schedules",
            registry=self.registry,
        )
        self._event_reads = Counter(
            "workflowstate_event_reads",
            "Reads of run events for WatchRun and StreamRunEvents readers, by reader: a run's feed (one read for all "
            "of the run's WatchRun streams on this server), a WatchRun stream reading on its own (its start, or "
            "after it fell behind), or a StreamRunEvents stream",
            ["reader"],
            registry=self.registry,
        )
        self.event_watchers_fell_behind = Counter(
            "workflowstate_event_watchers_fell_behind",
            "Times a WatchRun stream whose client read slower than its run changed had more events waiting than "
            "its bound and went back to reading on its own",
            registry=self.registry,
        )
        self.database_serving = Gauge(
            "workflowstate_database_serving", "1 while the database answers the health probe, else 0", registry=self.registry
        )
        self._background_restarts = Counter(
            "workflowstate_background_restarts",
            "Background tasks restarted after an unexpected error, by task",
            ["task"],
            registry=self.registry,
        )
        self._background_running = Gauge(
            "workflowstate_background_tasks_running",
            "1 while a background task runs, 0 while it waits to restart or after it stopped, by task",
            ["task"],
            registry=self.registry,
        )
        # Children looked up once per label set: labels() is the costly part of an update.
        self._children: dict[tuple[Any, ...], Any] = {}

    def watch_pool(self, stats: Callable[[], dict[str, int]]) -> None:
        self.registry.register(_PoolCollector(stats))

    def rpc_finished(self, method: str, code: grpc.StatusCode, seconds: float | None) -> None:
        """Count one RPC; seconds is its duration (None for streams, whose length says nothing)."""
        self._child(self._rpcs, method, code.name).inc()
        if seconds is not None:
            self._child(self._durations, method).observe(seconds)

    def batch_operation_finished(self, operation: str, code: grpc.StatusCode) -> None:
        """Count one operation of a Batch call (the Batch call itself counts once, in rpc_finished)."""
        self._child(self._batch_operations, operation, code.name).inc()

    def event_read(self, reader: str) -> None:
        self._child(self._event_reads, reader).inc()

    def group_ran(self, statement: str, operations: int) -> None:
        """Count one run of a grouped statement holding `operations` operations."""
        self._child(self._group_sizes, statement).observe(operations)

    def stream_opened(self, method: str) -> None:
        self._child(self._open_streams, method).inc()

    def stream_closed(self, method: str) -> None:
        self._child(self._open_streams, method).dec()

    def background_restarted(self, task: str) -> None:
        self._child(self._background_restarts, task).inc()

    def background_running(self, task: str, running: bool) -> None:
        self._child(self._background_running, task).set(1 if running else 0)

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def serve(self, listen: str) -> str:
        """Serve /metrics over HTTP on host:port (port 0 picks one); return the address."""
        host, _, port = listen.rpartition(":")
        server, _ = start_http_server(int(port), addr=host or "0.0.0.0", registry=self.registry)
        address = f"{host}:{server.server_port}"
        log.info("metrics served", extra={"address": address, "path": "/metrics"})
        return address


__all__ = ["Metrics"]
