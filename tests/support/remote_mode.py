"""Helpers of the remote-mode client tests (workers, watch_run): servers on a fixed port, steps, waits."""

from __future__ import annotations

import socket
from collections.abc import Callable
from datetime import timedelta

import psycopg
from support.server_process import ServerProcess
from support.waiting import wait_in_database

from workflowstate.client import StepState, WorkflowStateClient

# A restarted server is found again within about a second, whatever gRPC's channel backoff
# reached while it was away (its default grows to two minutes).
FAST_RECONNECT = (("grpc.initial_reconnect_backoff_ms", 100), ("grpc.max_reconnect_backoff_ms", 1000))


def free_port() -> int:
    """A port nobody listens on now, for a server that must come back on the same address."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def restart(start_server: Callable[..., ServerProcess], old: ServerProcess | None, port: int, schema: str) -> ServerProcess:
    """Stop `old` gracefully (if given) and start a server on the same port, database and schema."""
    if old is not None:
        assert old.stop() == 0, old.log_text()[-4000:]
    return start_server("--listen", f"127.0.0.1:{port}", "--dispatch-poll-interval", "0.2", schema=schema)


def scheduled_steps(
    client: WorkflowStateClient, run_id: str, rpc_name: str, count: int, *, retries: int | None = None, prefix: str = "step"
) -> list[StepState]:
    """`count` steps of the run for `rpc_name`, data {"n": i}, each scheduled (due at once)."""
    steps = []
    for i in range(count):
        step = client.insert_step_state(
            run_id, f"{prefix}-{i}", rpc_name, {"n": i}, retries=retries, retry_delay=timedelta(0) if retries else None
        )
        steps.append(client.set_step_scheduled(step.step_id))
    return steps


def wait_for_steps(db: psycopg.Connection, schema: str, run_id: str, status: str, count: int, *, timeout: float = 60.0) -> None:
    """Return once `count` steps of the run have `status` (awaited inside PostgreSQL, bounded)."""
    wait_in_database(
        db, f"(SELECT count(*) FROM {schema}.steps WHERE run_id = {{}} AND status = {{}}) >= {{}}", (run_id, status, count), timeout=timeout
    )
