"""A run cancelled while a Worker runs one of its steps: the handler sees ``task.cancelled`` (an async
handler is cancelled), its report is refused with nothing written, and its slot takes the next task."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta

import psycopg
import pytest
from support.remote_mode import wait_for_steps

from workflowstate.client import (
    AsyncWorker,
    AsyncWorkflowStateClient,
    FailedPrecondition,
    NotFound,
    RunStatus,
    StepStatus,
    StepTask,
    Worker,
    WorkflowStateClient,
)

SCHEMA = "workflows_test"
WAIT = 30.0


async def test_an_async_handler_is_cancelled_and_its_slot_freed(server_target: str, db: psycopg.Connection, rpc: str, unique: str) -> None:
    async with AsyncWorkflowStateClient(server_target) as client:
        doomed = await client.create_run(f"wf-{unique}")
        step = await client.insert_step_state(doomed.run_id, "long", rpc)
        started, handled = asyncio.Event(), asyncio.Event()
        seen: dict[str, object] = {}

        async def handler(task: StepTask) -> str:
            if task.run_id != doomed.run_id:
                handled.set()
                return "next"
            started.set()
            try:
                await asyncio.Event().wait()  # never set: only the cancel ends it
            except asyncio.CancelledError:
                seen["reason"] = task.cancelled.reason
                seen["flag"] = task.cancelled.is_set()
                raise
            return "never"

        worker = AsyncWorker(client, {rpc: handler}, max_in_flight=1)
        runner = asyncio.create_task(worker.run())
        await client.set_step_scheduled(step.step_id)
        await asyncio.wait_for(started.wait(), WAIT)

        cancelled = await client.cancel_run(doomed.run_id, reason="stop it")
        assert cancelled.status is RunStatus.CANCELLED and cancelled.error is not None and cancelled.error.message == "stop it"

        # With max_in_flight 1, the next run's step is handled only once the cancelled task's slot is free.
        other = await client.create_run(f"wf-{unique}")
        nxt = await client.insert_step_state(other.run_id, "next", rpc)
        await client.set_step_scheduled(nxt.step_id)
        await asyncio.wait_for(handled.wait(), WAIT)
        await asyncio.to_thread(wait_for_steps, db, SCHEMA, other.run_id, "succeeded", 1)
        assert await worker.stop(timedelta(seconds=WAIT))
        await asyncio.wait_for(runner, WAIT)

        assert seen == {"reason": "stop it", "flag": True}
        state = await client.get_step_state(doomed.run_id, "long")
        assert state.status is StepStatus.RUNNING and state.result is None and state.error is None, "nothing written"
        history = await client.get_run_history(doomed.run_id)
        assert [(a.attempt, a.status) for a in history] == [(1, StepStatus.RUNNING)]


def test_a_sync_handler_sees_task_cancelled_and_its_result_is_refused(server_target: str, db: psycopg.Connection, rpc: str, unique: str) -> None:
    with WorkflowStateClient(server_target) as client:
        doomed = client.create_run(f"wf-{unique}")
        step = client.insert_step_state(doomed.run_id, "long", rpc)
        started, handled = threading.Event(), threading.Event()
        reasons: list[str | None] = []

        def handler(task: StepTask) -> str:
            if task.run_id != doomed.run_id:
                handled.set()
                return "next"
            started.set()
            assert task.cancelled.wait(WAIT), "the cancel reaches the handler"
            reasons.append(task.cancelled.reason)
            return "finished anyway"  # refused by the server: the run is over

        worker = Worker(client, {rpc: handler}, max_in_flight=1)
        thread = threading.Thread(target=worker.run)
        thread.start()
        try:
            client.set_step_scheduled(step.step_id)
            assert started.wait(WAIT)
            client.cancel_run(doomed.run_id)
            other = client.create_run(f"wf-{unique}")
            nxt = client.insert_step_state(other.run_id, "next", rpc)
            client.set_step_scheduled(nxt.step_id)
            assert handled.wait(WAIT), "the slot of the cancelled task took the next one"
            wait_for_steps(db, SCHEMA, other.run_id, "succeeded", 1)
        finally:
            assert worker.stop(timedelta(seconds=WAIT))
            thread.join(WAIT)
        assert reasons == ["cancelled"]
        state = client.get_step_state(doomed.run_id, "long")
        assert state.status is StepStatus.RUNNING and state.result is None, "the late result was not written"


def test_the_clients_cancel_runs_in_bulk_and_say_why_not(server_target: str, unique: str) -> None:
    workflow = f"wf-bulk-{unique}"
    with WorkflowStateClient(server_target) as client:
        runs = [client.create_run(workflow, i) for i in range(3)]
        assert client.cancel_runs(workflow=workflow, max_runs=2, reason="r") == [run.run_id for run in runs[:2]]
        assert client.cancel_runs(workflow=workflow) == [runs[2].run_id]
        assert client.cancel_run(runs[0].run_id).status is RunStatus.CANCELLED, "again: a no-op"
        done = client.create_run(workflow)
        client.update_run_status(done.run_id, RunStatus.COMPLETED)
        with pytest.raises(FailedPrecondition) as finished:
            client.cancel_run(done.run_id)
        assert (finished.value.reason, finished.value.metadata["prior_status"]) == ("FINISHED_RUN", "COMPLETED")
        with pytest.raises(NotFound) as unknown_run:
            client.cancel_run("00000000-0000-0000-0000-000000000000")
        assert unknown_run.value.reason == "MISSING"
