"""The fault tests' own PostgreSQL and the server processes they run on it.

A fault test stops, restarts or hangs PostgreSQL, so it gets one of its own (`postgres`), and starts
its servers on it with the options its scenario needs (`serve`). Those servers are killed when the
test ends, however the fault left them, and their logs must show no unexpected error: INTERNAL never
answers anything, not even under a fault. The fixtures are registered for the whole suite by
tests/conftest.py (a conftest.py in tests/faults would shadow the top-level one).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from grpc_health.v1 import health_pb2
from support.controllable_postgres import ControllablePostgres, controllable_postgres
from support.server_process import ServerProcess, assert_no_internal_errors

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@pytest.fixture
def postgres() -> Iterator[ControllablePostgres]:
    """A PostgreSQL of the test's own, to stop, restart and hang (support/controllable_postgres.py)."""
    with controllable_postgres() as started:
        yield started


@pytest.fixture
def serve(postgres: ControllablePostgres) -> Iterator[Callable[..., ServerProcess]]:
    """`serve(schema, *options)` starts a server process on the test's own PostgreSQL; every one is
    killed when the test ends, then its log is checked for unexpected errors."""
    started: list[ServerProcess] = []

    def start(schema: str, *options: str) -> ServerProcess:
        process = ServerProcess(postgres.url, schema, *options).start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()
    for process in started:
        assert_no_internal_errors(process)
