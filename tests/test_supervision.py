"""Background tasks never die silently: the supervisor logs, counts and restarts a failed loop.

First the supervisor alone (no server), then a real server whose lost-task sweeper meets an
unexpected database error (a column it reads renamed under it) and comes back afterwards."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from datetime import timedelta

import grpc
import psycopg
import pytest
from psycopg import sql
from support.flows import history_of, scheduled_steps
from support.metrics import metrics_address, scrape
from support.polling import wait_until
from support.task_stream import TaskStream

from workflowstate.server.core.supervisor import RestartPolicy, Supervisor
from workflowstate.v1 import workflow_state_pb2_grpc as pb_grpc

SUPERVISOR_LOG = "workflowstate.server.supervisor"


class _Flaky:
    """A loop that fails `failures` times, then runs until cancelled; records each start."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.starts = 0
        self.running = asyncio.Event()

    async def __call__(self) -> None:
        self.starts += 1
        if self.starts <= self.failures:
            raise RuntimeError(f"failure {self.starts}")
        self.running.set()
        await asyncio.Event().wait()


def _restart_delays(caplog: pytest.LogCaptureFixture) -> list[float]:
    return [record.restart_in_s for record in caplog.records if record.name == SUPERVISOR_LOG]  # type: ignore[attr-defined]


async def test_a_failed_loop_is_logged_with_its_name_and_restarted_with_growing_capped_delays(caplog) -> None:
    restarts: list[str] = []
    running: list[tuple[str, bool]] = []
    supervisor = Supervisor(
        RestartPolicy(first_delay=0.001, max_delay=0.004, healthy_after=60),
        on_restart=restarts.append,
        on_running=lambda name, up: running.append((name, up)),
    )
    loop = _Flaky(failures=4)
    with caplog.at_level(logging.ERROR, logger=SUPERVISOR_LOG):
        task = supervisor.start("flaky-loop", loop)
        async with asyncio.timeout(10):
            await loop.running.wait()
    assert loop.starts == 5 and restarts == ["flaky-loop"] * 4
    assert _restart_delays(caplog) == [0.001, 0.002, 0.004, 0.004], "doubling from the first delay, capped"
    failures = [record for record in caplog.records if record.name == SUPERVISOR_LOG]
    assert all(record.task == "flaky-loop" and record.exc_info for record in failures)  # type: ignore[attr-defined]
    assert "failure 1" in caplog.text, "the stack and the error are logged"
    assert running[-1] == ("flaky-loop", True)

    task.cancel()
    await asyncio.wait([task], timeout=10)
    assert task.cancelled(), "a cancel stops the supervised loop; it is not restarted"
    assert loop.starts == 5 and running[-1] == ("flaky-loop", False)


async def test_a_loop_that_ran_healthily_restarts_after_the_first_delay_again(caplog) -> None:
    now = [0.0]
    supervisor = Supervisor(RestartPolicy(first_delay=0.001, max_delay=1, healthy_after=30), clock=lambda: now[0])
    starts = 0
    settled = asyncio.Event()

    async def loop() -> None:
        nonlocal starts
        starts += 1
        if starts == 3:
            now[0] += 31  # the third run lasts past healthy_after before failing
        if starts <= 3:
            raise RuntimeError("boom")
        settled.set()
        await asyncio.Event().wait()

    with caplog.at_level(logging.ERROR, logger=SUPERVISOR_LOG):
        task = supervisor.start("healthy-then-failing", loop)
        async with asyncio.timeout(10):
            await settled.wait()
    task.cancel()
    await asyncio.wait([task], timeout=10)
    assert _restart_delays(caplog) == [0.001, 0.002, 0.001]


async def test_a_loop_that_returns_is_done_and_not_restarted() -> None:
    restarts: list[str] = []
    supervisor = Supervisor(on_restart=restarts.append)
    calls = 0

    async def once() -> None:
        nonlocal calls
        calls += 1

    task = supervisor.start("once", once)
    await asyncio.wait([task], timeout=10)
    assert task.done() and not task.cancelled() and task.exception() is None
    assert (calls, restarts) == (1, [])


def _rename_column(database_url: str, schema: str, old: str, new: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER TABLE {}.steps RENAME COLUMN {} TO {}").format(sql.Identifier(schema), sql.Identifier(old), sql.Identifier(new)))


def _failures_logged(log_text: str, task: str) -> list[dict]:
    lines = [json.loads(line) for line in log_text.splitlines() if line.startswith("{")]
    return [line for line in lines if line["msg"] == "background task failed; restarting it" and line["task"] == task]


def test_the_sweeper_survives_an_unexpected_database_error_and_retries_lost_workers_attempts_afterwards(
    start_server, database_url
) -> None:
    schema = f"t_{uuid.uuid4().hex[:10]}"
    rpc = f"rpc-{uuid.uuid4().hex[:10]}"
    # The doomed server hands out the task and dies: only the survivor's sweeper can fail it.
    doomed = start_server(schema=schema)
    survivor = start_server("--dispatch-poll-interval", "0.2", "--metrics-listen", "127.0.0.1:0", schema=schema)
    metrics = metrics_address(survivor.log_text())
    restarts_key = ("workflowstate_background_restarts_total", (("task", "task-sweeper"),))
    running_key = ("workflowstate_background_tasks_running", (("task", "task-sweeper"),))
    assert scrape(metrics).get(restarts_key, 0) == 0 and scrape(metrics)[running_key] == 1
    with grpc.insecure_channel(doomed.target) as doomed_channel, grpc.insecure_channel(survivor.target) as survivor_channel:
        survivor_stub = pb_grpc.WorkflowStateServiceStub(survivor_channel)
        worker = TaskStream(pb_grpc.WorkflowStateServiceStub(doomed_channel))
        worker.subscribe([rpc], task_lease=timedelta(seconds=1))
        [step] = scheduled_steps(survivor_stub, rpc, 1, retries=1)
        worker.expect("task")
        doomed.kill()

        # The sweeper's statement now fails with an error no loop expects (undefined column).
        _rename_column(database_url, schema, "task_expire_time", "task_expire_time_away")
        try:
            wait_until(lambda: len(_failures_logged(survivor.log_text(), "task-sweeper")) >= 1, "the sweeper's failure is logged")
            wait_until(lambda: scrape(metrics).get(restarts_key, 0) >= 1, "the restart is counted")
            failure = _failures_logged(survivor.log_text(), "task-sweeper")[0]
            assert "task_expire_time" in failure["exception"] and "Traceback" in failure["exception"]
        finally:
            _rename_column(database_url, schema, "task_expire_time_away", "task_expire_time")

        # The sweeper came back: the lost worker's attempt fails as lost and its retry is handed out.
        other = TaskStream(survivor_stub)
        other.subscribe([rpc], worker_id="other")
        retry = other.expect("task", timeout=60)
        assert (retry.step_id, retry.attempt) == (step.step_id, 2)
        lost = history_of(survivor_stub, step.run_id, step.step_name)[0]
        assert lost.error.message.startswith("worker lost: no heartbeat")
        assert scrape(metrics)[running_key] == 1
        other.cancel()
