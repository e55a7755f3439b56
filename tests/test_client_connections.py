"""One client over several server processes: `connections=N` opens N TCP connections, which the
kernel spreads over the processes of `serve --workers`, and calls take them in turn."""

from __future__ import annotations

import json

import pytest
from support.metrics import scrape

from workflowstate.client import AsyncWorkflowStateClient, WorkflowStateClient

CALLS = 48


def _get_runs_per_worker(server) -> list[float]:
    """GetRun calls each worker process answered, from its own metrics."""
    addresses = {json.loads(line)["address"] for line in server.log_text().splitlines() if '"msg": "metrics served"' in line}
    assert len(addresses) == 2
    key = ("workflowstate_rpcs_total", (("code", "OK"), ("method", "GetRun")))
    return sorted(scrape(address).get(key, 0) for address in addresses)


def test_several_connections_reach_every_server_process(start_server, unique) -> None:
    server = start_server("--workers", "2", "--metrics-listen", "127.0.0.1:0", schema=f"conn_{unique}")
    # 16 connections: all on one of 2 processes has a chance of 2 in 65536.
    with WorkflowStateClient(server.target, connections=16) as client:
        run = client.create_run(unique, {})
        for _ in range(CALLS):
            assert client.get_run(run.run_id) == run
    per_worker = _get_runs_per_worker(server)
    assert sum(per_worker) == CALLS and per_worker[0] > 0, per_worker


def test_one_connection_stays_on_one_server_process(start_server, unique) -> None:
    """What the test above rules out: the default single connection lands on one process."""
    server = start_server("--workers", "2", "--metrics-listen", "127.0.0.1:0", schema=f"conn_{unique}")
    with WorkflowStateClient(server.target) as client:
        run = client.create_run(unique, {})
        for _ in range(CALLS):
            client.get_run(run.run_id)
    assert _get_runs_per_worker(server) == [0, CALLS]


async def test_the_async_client_answers_over_several_connections(server_target, unique) -> None:
    async with AsyncWorkflowStateClient(server_target, connections=3) as client:
        run = await client.create_run(unique, {})
        assert [await client.get_run(run.run_id) for _ in range(6)] == [run] * 6


def test_connections_must_be_positive(server_target) -> None:
    with pytest.raises(ValueError, match="connections must be at least 1, got 0"):
        WorkflowStateClient(server_target, connections=0)
