"""Fixtures: one real PostgreSQL for the session and a real server process on a real port.

Tests that need their own server (restarts, outages, odd schemas) start one with `start_server`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import psycopg
import pytest
from support.postgres import test_database
from support.server_process import ServerProcess, assert_no_internal_errors, left_behind
from support.tiers import module_runs_node, tier_of

from workflowstate.v1 import workflow_state_pb2_grpc as pb_grpc

# The folder of the test suite: a test's tier starts from its path below it.
TESTS = Path(__file__).parent

# The fault tests' own PostgreSQL and servers (`postgres`, `serve`): fixtures kept beside the rest of
# their support, registered here for the whole suite.
pytest_plugins = ("support.faults_servers",)

# Quick health reaction and short pool waits keep the outage tests short; nothing is timed.
FAST_SERVER_ARGS = ("--health-interval", "0.2", "--pool-timeout", "1", "--grace-period", "10", "--log-level", "debug")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Each test gets the marker of its tier (support/tiers.py), so `-m unit` or `-m "unit or store"`
    is a fast run. The unit tests (no server, no database, under 2 s) run first, so a broken core
    fails in seconds, then the store and docs tiers; then the rest in their usual order, then the packages built
    and installed (minutes of pip and npm), the fault suite last."""
    order = {"unit": 0, "store": 1, "docs": 1, "packaging": 3, "faults": 4}
    tiers: dict[pytest.Item, str] = {}
    for item in items:
        folders = item.path.relative_to(TESTS).parts[:-1]
        tiers[item] = tier_of(folders, item.fixturenames, module_runs_node(item.path))
        item.add_marker(tiers[item])
    items.sort(key=lambda item: order.get(tiers[item], 2))


# Seconds a stopped server's processes get to end: a worker whose parent was killed stops
# gracefully, within the grace period of FAST_SERVER_ARGS.
LEFT_BEHIND_BOUND = 15.0


@pytest.fixture(scope="session", autouse=True)
def no_server_process_left_behind() -> Iterator[None]:
    """The test suite leaves no process behind: every server process (and every process a server
    started) must have ended when the session does. Those left are killed, and the session fails."""
    yield
    left = left_behind(LEFT_BEHIND_BOUND)
    commands = [f"{process.pid}: {process.command()}" for process in left]
    for process in left:
        process.kill()
    assert not left, f"{len(left)} server processes outlived the tests (killed now):\n" + "\n".join(commands)


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    with test_database() as (url, source):
        print(f"\ntests use PostgreSQL from {source}")
        yield url


@pytest.fixture(scope="session")
def server(database_url: str) -> Iterator[ServerProcess]:
    process = ServerProcess(database_url, "workflows_test", *FAST_SERVER_ARGS).start()
    yield process
    assert process.stop() == 0, process.log_text()[-4000:]
    assert_no_internal_errors(process)


@pytest.fixture(scope="session")
def server_target(server: ServerProcess) -> str:
    return server.target


@pytest.fixture(scope="session")
def stub(server_target: str) -> Iterator[pb_grpc.WorkflowStateServiceStub]:
    """The raw generated stub, for tests of the wire contract (bad input, exact codes)."""
    with grpc.insecure_channel(server_target) as channel:
        yield pb_grpc.WorkflowStateServiceStub(channel)


@pytest.fixture(scope="session")
def db(database_url: str) -> Iterator[psycopg.Connection]:
    """A direct connection, to look at what the server stored (and to hold locks)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def start_server(database_url: str) -> Iterator[Callable[..., ServerProcess]]:
    """Start extra server processes; each is stopped (or killed) when the test ends."""
    started: list[ServerProcess] = []

    def start(*extra_args: str, schema: str | None = None, url: str | None = None) -> ServerProcess:
        process = ServerProcess(url or database_url, schema or f"t_{uuid.uuid4().hex[:10]}", *FAST_SERVER_ARGS, *extra_args)
        started.append(process.start())
        return process

    yield start
    for process in started:
        process.kill()
        assert_no_internal_errors(process)


@pytest.fixture
def rpc() -> str:
    """An rpc name no other test schedules, so workers of different tests never meet."""
    return f"rpc-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def unique() -> str:
    """A name no other test uses."""
    return uuid.uuid4().hex[:12]
