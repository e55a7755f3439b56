"""Durable workflows (workflowstate.workflows) against the real session server: each primitive, replay, retries.

Engines run in this process here, as tasks; the tests where the point is a process that dies or
pauses start engines as processes of their own (test_workflow_fence.py, faults/test_workflow_engine_kill.py).
Step functions count their calls in files (support/workflow_effects.py), outside the server.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from support.faults_processes import child
from support.workflow_effects import calls, record_call

from workflowstate.client import AsyncWorkflowStateClient, RunStatus, StepStatus
from workflowstate.workflows import (
    ATTEMPT_LOST,
    NON_DETERMINISM,
    Workflow,
    WorkflowContext,
    WorkflowEngine,
    WorkflowFailed,
    workflow,
)

WAIT = timedelta(seconds=30)
# Short bounds, so a test that restarts an engine does not wait long for the stalled-run scan.
QUICK = {"lease_ttl": timedelta(seconds=2), "stalled_after": timedelta(seconds=0.5), "scan_interval": timedelta(seconds=0.2)}


@pytest.fixture
async def client(server_target: str) -> AsyncIterator[AsyncWorkflowStateClient]:
    async with AsyncWorkflowStateClient(server_target) as client:
        yield client


class Engines:
    """Engines running as tasks of the test's loop; each stopped (drained) at the end."""

    def __init__(self, client: AsyncWorkflowStateClient) -> None:
        self.client = client
        self.running: list[tuple[WorkflowEngine, asyncio.Task[None]]] = []

    def start(self, *workflows: Workflow, **settings: Any) -> WorkflowEngine:
        engine = WorkflowEngine(self.client, workflows, **{**QUICK, **settings})
        self.running.append((engine, asyncio.create_task(engine.run())))
        return engine

    async def stop(self, engine: WorkflowEngine) -> None:
        for each, task in self.running:
            if each is engine:
                engine.stop()
                await asyncio.wait_for(task, WAIT.total_seconds())


@pytest.fixture
async def engines(client: AsyncWorkflowStateClient) -> AsyncIterator[Engines]:
    started = Engines(client)
    yield started
    for engine, _ in started.running:
        await started.stop(engine)


def counted(folder: Path, run_id: str) -> dict[str, int]:
    """{step name: calls of its function} of one run."""
    result: dict[str, int] = {}
    for (run, step, _), times in calls(folder).items():
        if run == run_id:
            result[step] = result.get(step, 0) + times
    return result


async def wait_for_step(client: AsyncWorkflowStateClient, run_id: str, step_name: str, status: StepStatus) -> None:
    """Until the run's step has `status`, following the run's events (no sleep)."""
    async with asyncio.timeout(WAIT.total_seconds()):
        async for event in client.watch_run(run_id):
            if event.step and event.step.step_name == step_name and event.step.status is status:
                return
    raise AssertionError(f"run {run_id} ended before step {step_name} became {status.value}")


async def test_local_steps_in_sequence_and_in_parallel_give_the_run_its_output(
    engines: Engines, unique: str, tmp_path: Path
) -> None:
    def add(a: int, b: int) -> int:
        return a + b

    async def double(n: int) -> int:
        return n * 2

    @workflow(f"sum-{unique}")
    async def summing(ctx: WorkflowContext, numbers: list[int]) -> dict[str, Any]:
        total = await ctx.step("add", add, numbers[0], numbers[1])
        left, right = await asyncio.gather(ctx.step("double-left", double, total), ctx.step("double-right", add, total, total))
        return {"total": total, "left": left, "right": right}

    engine = engines.start(summing)
    run_id = await engine.start(summing, [2, 3])
    assert await engine.result(run_id, timeout=WAIT) == {"total": 5, "left": 10, "right": 10}
    steps = await engines.client.list_steps(run_id)
    assert {step.step_name: step.result for step in steps} == {"add": 5, "double-left": 10, "double-right": 10}
    assert {step.status for step in steps} == {StepStatus.SUCCEEDED}


async def test_a_start_with_a_request_id_already_used_returns_the_first_run(engines: Engines, unique: str) -> None:
    @workflow(f"echo-{unique}")
    async def echo(ctx: WorkflowContext, value: Any) -> Any:
        return value

    engine = engines.start(echo)
    first = await engine.start(echo, {"n": 1}, request_id=f"req-{unique}")
    again = await engine.start(echo, {"n": 1}, request_id=f"req-{unique}")
    assert again == first
    assert await engine.result(first, timeout=WAIT) == {"n": 1}
    runs = await engines.client.list_runs(workflow=f"echo-{unique}")
    assert [run.run_id for run in runs.runs] == [first]


async def test_a_replay_after_an_engine_restart_returns_recorded_results_without_calling_the_functions_again(
    engines: Engines, unique: str, tmp_path: Path
) -> None:
    def effect(ctx: WorkflowContext, name: str) -> str:
        record_call(tmp_path, ctx.run_id, name, ctx.attempt)
        return f"{name} done"

    @workflow(f"restart-{unique}")
    async def restarting(ctx: WorkflowContext, _: Any) -> dict[str, Any]:
        first = await ctx.step("first", effect, ctx, "first")
        now = await ctx.now()
        token = await ctx.uuid()
        await ctx.sleep(timedelta(seconds=1), name="nap")
        second = await ctx.step("second", effect, ctx, "second")
        return {"first": first, "second": second, "now": now.isoformat(), "uuid": token}

    engine = engines.start(restarting)
    run_id = await engine.start(restarting)
    await wait_for_step(engines.client, run_id, "nap", StepStatus.PENDING)
    await engines.stop(engine)  # drains: the sleep is left to the next engine
    assert (await engines.client.get_step_state(run_id, "nap")).status is StepStatus.PENDING

    successor = engines.start(restarting)
    # The nap fires within the stated bound of its time: the successor takes the run over once it
    # counts as stalled (its lease was released by the drain), on its next scan.
    wake = datetime.fromisoformat((await engines.client.get_step_state(run_id, "nap")).data["wake_time"])
    bound = max(QUICK["lease_ttl"], QUICK["stalled_after"]) + QUICK["scan_interval"]
    left = max(timedelta(0), wake - datetime.now(wake.tzinfo))
    output = await successor.result(run_id, timeout=left + bound + timedelta(seconds=5))  # 5 s: the rest of the run, on 2 busy cores
    steps = {step.step_name: step for step in await engines.client.list_steps(run_id)}
    assert output == {
        "first": "first done",
        "second": "second done",
        "now": steps["now-1"].result,
        "uuid": steps["uuid-1"].result,
    }
    assert counted(tmp_path, run_id) == {"first": 1, "second": 1}
    woke = datetime.fromisoformat(steps["nap"].result["woke_time"])
    assert woke >= datetime.fromisoformat(steps["nap"].data["wake_time"]), "the sleep did not end early"


async def test_a_failing_step_is_retried_per_its_policy_then_fails_the_run_with_its_error(
    engines: Engines, unique: str, tmp_path: Path
) -> None:
    def flaky(ctx: WorkflowContext, name: str, succeed_on: int) -> int:
        record_call(tmp_path, ctx.run_id, name, ctx.attempt)
        if ctx.attempt < succeed_on:
            raise ConnectionError(f"{name}: attempt {ctx.attempt} failed")
        return ctx.attempt

    @workflow(f"retry-{unique}")
    async def retrying(ctx: WorkflowContext, succeed_on: int) -> int:
        delay = timedelta(milliseconds=100)
        result: int = await ctx.step("flaky", flaky, ctx, "flaky", succeed_on, retries=2, retry_delay=delay, backoff=2.0)
        return result

    engine = engines.start(retrying)
    recovers = await engine.start(retrying, 3)
    assert await engine.result(recovers, timeout=WAIT) == 3
    history = await engines.client.get_run_history(recovers)
    assert [(a.attempt, a.status) for a in history] == [(1, StepStatus.FAILED), (2, StepStatus.FAILED), (3, StepStatus.SUCCEEDED)]
    assert history[0].error is not None and history[0].error.message == "flaky: attempt 1 failed"
    assert history[0].error.code == "ConnectionError"
    # The second retry waited twice the first's delay, counted from the recorded failure.
    assert history[2].create_time - history[1].update_time >= timedelta(milliseconds=200)

    gives_up = await engine.start(retrying, 4)
    with pytest.raises(WorkflowFailed) as failed:
        await engine.result(gives_up, timeout=WAIT)
    assert failed.value.status is RunStatus.FAILED
    assert failed.value.failure is not None
    assert failed.value.failure.message == "step 'flaky' failed: flaky: attempt 3 failed"
    assert failed.value.failure.code == "ConnectionError"
    assert "ConnectionError" in failed.value.failure.stack
    assert sorted(a for (run, _, a) in calls(tmp_path) if run == gives_up) == [1, 2, 3]


async def test_a_workflow_exception_fails_the_run_with_its_message_class_and_stack(engines: Engines, unique: str) -> None:
    @workflow(f"raises-{unique}")
    async def raising(ctx: WorkflowContext, _: Any) -> None:
        raise KeyError("no such order")

    engine = engines.start(raising)
    run_id = await engine.start(raising)
    with pytest.raises(WorkflowFailed):
        await engine.result(run_id, timeout=WAIT)
    run = await engines.client.get_run(run_id)
    assert run is not None and run.error is not None
    assert (run.error.message, run.error.code) == ("'no such order'", "KeyError")
    assert "raise KeyError" in run.error.stack


async def test_run_state_variables_are_set_and_read_by_the_workflow(engines: Engines, unique: str) -> None:
    @workflow(f"state-{unique}")
    async def stateful(ctx: WorkflowContext, _: Any) -> Any:
        await ctx.state.set("stage", "charged")
        return ctx.state.get("stage")

    engine = engines.start(stateful)
    run_id = await engine.start(stateful)
    assert await engine.result(run_id, timeout=WAIT) == "charged"
    assert await engines.client.get_run_state(run_id) == {"stage": "charged"}


async def test_a_child_run_completing_resumes_its_parent_with_the_childs_output(engines: Engines, unique: str) -> None:
    @workflow(f"child-{unique}")
    async def child_flow(ctx: WorkflowContext, n: int) -> int:
        await ctx.sleep(timedelta(milliseconds=200))
        return n + 1

    @workflow(f"parent-{unique}")
    async def parent_flow(ctx: WorkflowContext, n: int) -> int:
        result: int = await ctx.child("sub", f"child-{unique}", n)
        return result * 10

    engine = engines.start(parent_flow, child_flow)
    run_id = await engine.start(parent_flow, 4)
    assert await engine.result(run_id, timeout=WAIT) == 50
    sub = await engines.client.get_step_state(run_id, "sub")
    assert sub.child_run_id is not None
    child_run = await engines.client.get_run(sub.child_run_id)
    assert child_run is not None and (child_run.status, child_run.output) == (RunStatus.COMPLETED, 5)


async def test_a_replay_that_meets_a_step_the_history_lacks_fails_the_run_naming_both_steps(
    engines: Engines, unique: str
) -> None:
    def ok() -> str:
        return "ok"

    name = f"changed-{unique}"

    @workflow(name)
    async def before(ctx: WorkflowContext, _: Any) -> str:
        await ctx.step("reserve", ok)
        await ctx.sleep(timedelta(seconds=30), name="wait")
        return "done"

    @workflow(name)
    async def after(ctx: WorkflowContext, _: Any) -> str:
        await ctx.step("reserve-stock", ok)  # renamed under a running run
        await ctx.sleep(timedelta(seconds=30), name="wait")
        return "done"

    engine = engines.start(before)
    run_id = await engine.start(before)
    await wait_for_step(engines.client, run_id, "wait", StepStatus.PENDING)
    await engines.stop(engine)

    changed = engines.start(after)
    with pytest.raises(WorkflowFailed) as failed:
        await changed.result(run_id, timeout=WAIT)
    assert failed.value.failure is not None
    assert failed.value.failure.code == NON_DETERMINISM
    assert "'reserve-stock'" in failed.value.failure.message and "'reserve'" in failed.value.failure.message
    assert [step.step_name for step in await engines.client.list_steps(run_id)] == ["reserve", "wait"], "nothing new was written"


async def test_a_new_version_next_to_the_old_one_lets_running_runs_finish_on_their_own_code(
    engines: Engines, unique: str
) -> None:
    def ok(label: str) -> str:
        return label

    name = f"versioned-{unique}"

    @workflow(name)
    async def first(ctx: WorkflowContext, _: Any) -> str:
        label: str = await ctx.step("reserve", ok, "v1")
        await ctx.sleep(timedelta(milliseconds=300), name="wait")
        return label

    @workflow(name, version="2")
    async def second(ctx: WorkflowContext, _: Any) -> str:
        label: str = await ctx.step("reserve-stock", ok, "v2")
        return label

    engine = engines.start(first)
    old_run = await engine.start(first)
    await wait_for_step(engines.client, old_run, "wait", StepStatus.PENDING)
    await engines.stop(engine)

    both = engines.start(first, second)
    new_run = await both.start(second)
    assert await both.result(old_run, timeout=WAIT) == "v1"
    assert await both.result(new_run, timeout=WAIT) == "v2"


async def test_an_attempt_left_open_by_a_dead_engine_is_recorded_lost_and_run_again(
    engines: Engines, client: AsyncWorkflowStateClient, unique: str, tmp_path: Path
) -> None:
    def effect(ctx: WorkflowContext) -> int:
        record_call(tmp_path, ctx.run_id, "work", ctx.attempt)
        return ctx.attempt

    @workflow(f"lost-{unique}")
    async def lost(ctx: WorkflowContext, _: Any) -> int:
        attempt: int = await ctx.step("work", effect, ctx)
        return attempt

    # What a dead engine leaves: the step's attempt 1 inserted, no outcome.
    run = await client.create_run(f"lost-{unique}", None)
    await client.insert_step_state(run.run_id, "work", None, None)
    engine = engines.start(lost)
    assert await engine.result(run.run_id, timeout=WAIT) == 2
    history = await client.get_run_history(run.run_id)
    assert [(a.attempt, a.status) for a in history] == [(1, StepStatus.FAILED), (2, StepStatus.SUCCEEDED)]
    assert history[0].error is not None and history[0].error.code == ATTEMPT_LOST
    assert calls(tmp_path) == {(run.run_id, "work", 2): 1}


async def test_a_remote_step_runs_on_a_python_worker_in_another_process(
    engines: Engines, server_target: str, unique: str, rpc: str, tmp_path: Path
) -> None:
    @workflow(f"remote-{unique}")
    async def remote(ctx: WorkflowContext, amount: int) -> Any:
        return await ctx.call("charge", rpc, {"amount": amount}, retries=2, retry_delay=timedelta(0))

    with child("workflow_worker_process.py", server_target, rpc, str(tmp_path)) as worker:
        assert worker.stdout is not None and worker.stdout.readline().strip() == "subscribed"
        engine = engines.start(remote)
        run_id = await engine.start(remote, 25)
        output = await engine.result(run_id, timeout=WAIT)
    assert output == {"charged": 25, "attempt": 2}, "the worker fails attempt 1 on purpose; the server retried it"
    assert counted(tmp_path, run_id) == {"charge": 2}
    step = await engines.client.get_step_state(run_id, "charge")
    assert (step.rpc_name, step.attempt_count, step.status) == (rpc, 2, StepStatus.SUCCEEDED)



async def test_a_run_cancelled_while_its_engine_waits_is_let_go_at_once(
    engines: Engines, client: AsyncWorkflowStateClient, unique: str
) -> None:
    @workflow(f"cancelled-{unique}")
    async def waits(ctx: WorkflowContext, _: Any) -> None:
        await ctx.sleep(timedelta(hours=1), name="long")

    engine = engines.start(waits)
    run_id = await engine.start(waits)
    await wait_for_step(client, run_id, "long", StepStatus.PENDING)
    assert await client.get_lease(f"run:{run_id}") is not None, "the engine holds the sleeping run"
    await client.cancel_run(run_id, reason="customer changed their mind")
    async with asyncio.timeout(WAIT.total_seconds()):
        while await client.get_lease(f"run:{run_id}") is not None:  # released by the drive, awaited by polling the lease
            await asyncio.sleep(0.05)
    with pytest.raises(WorkflowFailed) as failed:
        await engine.result(run_id, timeout=WAIT)
    assert failed.value.status is RunStatus.CANCELLED
    assert (await client.get_step_state(run_id, "long")).status is StepStatus.PENDING


async def test_a_replay_of_parallel_branches_lets_each_catch_up_before_a_new_step_counts_as_a_change(
    engines: Engines, client: AsyncWorkflowStateClient, unique: str, tmp_path: Path
) -> None:
    def effect(ctx: WorkflowContext, name: str) -> str:
        record_call(tmp_path, ctx.run_id, name, ctx.attempt)
        return name

    async def branch(ctx: WorkflowContext, first: str, then: str) -> list[str]:
        return [await ctx.step(first, effect, ctx, first), await ctx.step(then, effect, ctx, then)]

    @workflow(f"parallel-{unique}")
    async def parallel(ctx: WorkflowContext, _: Any) -> list[list[str]]:
        return list(await asyncio.gather(branch(ctx, "x1", "x2"), branch(ctx, "y0", "y1")))

    # The history a first drive left: branch y ran ahead, branch x had done its first step only.
    run = await client.create_run(f"parallel-{unique}", None)
    for name in ("x1", "y0", "y1"):
        step = await client.insert_step_state(run.run_id, name, None, None)
        await client.set_step_result(step.step_id, name)
    engine = engines.start(parallel)
    assert await engine.result(run.run_id, timeout=WAIT) == [["x1", "x2"], ["y0", "y1"]]
    assert counted(tmp_path, run.run_id) == {"x2": 1}, "the recorded steps were not run again"


async def test_sleep_until_waits_for_its_time_and_ctx_attempt_is_only_known_in_a_step(engines: Engines, unique: str) -> None:
    @workflow(f"until-{unique}")
    async def until(ctx: WorkflowContext, _: Any) -> str:
        wake = await ctx.now() + timedelta(milliseconds=300)
        await ctx.sleep_until(wake, name="until")
        with pytest.raises(RuntimeError, match="only known inside a step"):
            _ = ctx.attempt
        return wake.isoformat()

    engine = engines.start(until)
    run_id = await engine.start(until)
    wake = datetime.fromisoformat(await engine.result(run_id, timeout=WAIT))
    nap = await engines.client.get_step_state(run_id, "until")
    assert datetime.fromisoformat(nap.data["wake_time"]) == wake
    assert datetime.fromisoformat(nap.result["woke_time"]) >= wake
