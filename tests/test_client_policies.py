"""The Python SDK's side of the dispatch policies: keyword options, StepState.options,
the dispatch defaults methods of both clients, and a Worker's task.timeout_time / deadline."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import timedelta

import psycopg
import pytest
from support.waiting import wait_in_database

from workflowstate.client import (
    AsyncWorkflowStateClient,
    InvalidArgument,
    NotFound,
    StepOptions,
    StepStatus,
    StepTask,
    Worker,
    WorkflowStateClient,
)

SCHEMA = "workflows_test"


@pytest.fixture
def client(server_target: str) -> Iterator[WorkflowStateClient]:
    with WorkflowStateClient(server_target) as client:
        yield client


def test_keyword_options_are_stored_and_scheduling_replaces_those_given(client: WorkflowStateClient, rpc: str) -> None:
    run = client.create_run(f"wf-{rpc}", {})
    step = client.insert_step_state(
        run.run_id, "s", rpc, {}, retries=2, retry_delay=timedelta(seconds=1), backoff_coefficient=3.0,
        max_retry_delay=timedelta(seconds=20), jitter=0.1, start_to_close=timedelta(minutes=1),
        schedule_to_start=timedelta(minutes=5), priority=4, concurrency_key="customer-7",
    )
    assert step.options == StepOptions(
        2, timedelta(seconds=1), 3.0, timedelta(seconds=20), 0.1, timedelta(minutes=1), timedelta(minutes=5), 4, "customer-7"
    )
    scheduled = client.set_step_scheduled(step.step_id, delay=timedelta(hours=1), options=StepOptions(priority=9))
    assert (scheduled.status, scheduled.options.priority, scheduled.options.concurrency_key) == (StepStatus.SCHEDULED, 9, "customer-7")
    with pytest.raises(InvalidArgument, match="options.jitter must be from 0 to 1"):
        client.insert_step_state(run.run_id, "bad", rpc, jitter=2.0)


def test_dispatch_defaults_on_both_clients(client: WorkflowStateClient, server_target: str, rpc: str) -> None:
    stored = client.set_dispatch_defaults(
        rpc, options=StepOptions(retries=1, priority=3), concurrency_limit=2, rate_limit=50, rate_period=timedelta(seconds=10)
    )
    assert (stored.rpc_name, stored.options.retries, stored.concurrency_limit, stored.rate_period) == (rpc, 1, 2, timedelta(seconds=10))
    run = client.create_run(f"wf-{rpc}", {})
    assert client.insert_step_state(run.run_id, "s", rpc).options.priority == 3

    async def from_async() -> list[str]:
        async with AsyncWorkflowStateClient(server_target) as async_client:
            names = [d.rpc_name for d in await async_client.list_dispatch_defaults()]
            await async_client.delete_dispatch_defaults(rpc)
            return names

    assert rpc in asyncio.run(from_async())
    assert rpc not in [d.rpc_name for d in client.list_dispatch_defaults()]
    with pytest.raises(NotFound) as no_defaults:
        client.delete_dispatch_defaults(rpc)
    assert no_defaults.value.reason == "NOT_FOUND"
    with pytest.raises(InvalidArgument, match="defaults.concurrency_limit must be at least 1"):
        client.set_dispatch_defaults(rpc, concurrency_limit=0)


def test_a_worker_task_carries_its_timeout(client: WorkflowStateClient, db: psycopg.Connection, rpc: str) -> None:
    run = client.create_run(f"wf-{rpc}", {})
    step = client.insert_step_state(run.run_id, "timed", rpc, {}, start_to_close=timedelta(minutes=2))
    untimed = client.insert_step_state(run.run_id, "untimed", rpc, {})
    tasks: list[StepTask] = []
    both = threading.Event()

    def handler(task: StepTask) -> dict[str, bool]:
        tasks.append(task)
        if len(tasks) == 2:
            both.set()
        return {"ok": True}

    worker = Worker(client, {rpc: handler}, max_in_flight=2, task_lease=timedelta(minutes=5))
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        client.set_step_scheduled(step.step_id)
        client.set_step_scheduled(untimed.step_id)
        assert both.wait(30)
        wait_in_database(db, f"(SELECT count(*) FROM {SCHEMA}.steps WHERE run_id = {{}} AND status = 'succeeded') = 2", (run.run_id,))
    finally:
        worker.stop(timedelta(seconds=30))
        thread.join(30)
    by_name = {task.step_name: task for task in tasks}
    running_time = client.get_step_state(run.run_id, "timed").running_time
    assert running_time is not None
    assert by_name["timed"].timeout_time == running_time + timedelta(minutes=2)
    assert by_name["timed"].deadline == by_name["timed"].timeout_time, "a 5 minute task lease stops at the 2 minute timeout"
    assert by_name["untimed"].timeout_time is None


def test_a_worker_is_told_when_its_task_times_out(client: WorkflowStateClient, db: psycopg.Connection, rpc: str) -> None:
    run = client.create_run(f"wf-{rpc}", {})
    step = client.insert_step_state(run.run_id, "slow", rpc, {}, start_to_close=timedelta(milliseconds=300))
    reasons: list[str | None] = []

    def slow(task: StepTask) -> dict[str, bool]:
        assert task.cancelled.wait(30), "never told of the timeout"
        reasons.append(task.cancelled.reason)
        return {"late": True}  # refused: the attempt is over

    worker = Worker(client, {rpc: slow}, max_in_flight=1)
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        client.set_step_scheduled(step.step_id)
        wait_in_database(db, f"(SELECT status FROM {SCHEMA}.steps WHERE step_id = {{}}) = 'failed'", (step.step_id,))
    finally:
        worker.stop(timedelta(seconds=30))
        thread.join(30)
    assert reasons == ["timed out: the attempt ran longer than its start_to_close of 0.3s"]
    failed = client.get_step_state(run.run_id, "slow")
    assert failed.error is not None and failed.error.code == "START_TO_CLOSE_TIMEOUT" and failed.result is None
