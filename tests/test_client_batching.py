"""Transparent batching in the client: calls made at the same moment travel as one Batch, each
with the result, error and retries it would have had alone; a lone call goes out as itself.

Frames are counted on the server, from its metrics: a Batch call is one `workflowstate_rpcs_total`
sample of method Batch, and its operations are counted apart in `workflowstate_batch_operations_total`.
"""

from __future__ import annotations

import asyncio
import re
import threading
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from support.metrics import metrics_address, scrape
from support.tcp_proxy import CuttableProxy
from support.waiting import NOBODY_WAITS_FOR_A_LOCK, SOMEONE_WAITS_FOR_A_LOCK, wait_in_database

from workflowstate.client import (
    AsyncWorkflowStateClient,
    Batching,
    Failure,
    Run,
    RunStatus,
    StepAttempt,
    StepState,
    StepStatus,
    Unavailable,
    WorkflowStateClient,
    WorkflowStateError,
)

MISSING = str(uuid.UUID(int=0))
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class Frames:
    """What one server process has answered so far, read from its metrics."""

    def __init__(self, server) -> None:
        self._address = metrics_address(server.log_text())

    def read(self) -> dict[str, float]:
        samples = scrape(self._address)
        calls: dict[str, float] = {}
        for (name, labels), value in samples.items():
            label = dict(labels)
            if name == "workflowstate_rpcs_total":
                calls[label["method"]] = calls.get(label["method"], 0) + value
            elif name == "workflowstate_batch_operations_total":
                key = f"batched {label['operation']} {label['code']}"
                calls[key] = calls.get(key, 0) + value
        return calls

    def since(self, before: dict[str, float]) -> dict[str, float]:
        """The calls answered since ``before`` was read, without the zeros."""
        after = self.read()
        return {key: value - before.get(key, 0) for key, value in after.items() if value - before.get(key, 0)}


@pytest.fixture
def counted(start_server):
    """A server of its own whose calls are counted."""
    server = start_server("--metrics-listen", "127.0.0.1:0")
    return server, Frames(server)


# --- the async client ------------------------------------------------------------------------


async def test_calls_of_one_loop_turn_go_as_one_batch(counted, unique) -> None:
    server, frames = counted
    async with AsyncWorkflowStateClient(server.target) as client:
        run = await client.create_run(unique, {})
        before = frames.read()
        runs = await asyncio.gather(*(client.get_run(run.run_id) for _ in range(16)))
    assert runs == [run] * 16
    assert frames.since(before) == {"Batch": 1, "batched GetRun OK": 16}


async def test_a_lone_call_goes_out_as_itself(counted, unique) -> None:
    server, frames = counted
    async with AsyncWorkflowStateClient(server.target) as client:
        before = frames.read()
        run = await client.create_run(unique, {})
        assert await client.get_run(run.run_id) == run
    assert frames.since(before) == {"CreateRun": 1, "GetRun": 1}


async def test_without_batching_every_call_is_its_own(counted, unique) -> None:
    """The control of the two tests above: the same calls, counted the same way, not batched."""
    server, frames = counted
    async with AsyncWorkflowStateClient(server.target, batching=False) as client:
        run = await client.create_run(unique, {})
        before = frames.read()
        await asyncio.gather(*(client.get_run(run.run_id) for _ in range(16)))
    assert frames.since(before) == {"GetRun": 16}


async def test_a_batch_is_cut_at_max_operations(counted, unique) -> None:
    server, frames = counted
    async with AsyncWorkflowStateClient(server.target, batching=Batching(max_operations=4)) as client:
        run = await client.create_run(unique, {})
        before = frames.read()
        await asyncio.gather(*(client.get_run(run.run_id) for _ in range(9)))
    # 4 + 4 in two batches; the ninth alone, as itself.
    assert frames.since(before) == {"Batch": 2, "batched GetRun OK": 8, "GetRun": 1}


async def test_a_call_bigger_than_max_bytes_goes_alone(counted, unique) -> None:
    server, frames = counted
    async with AsyncWorkflowStateClient(server.target, batching=Batching(max_bytes=1000)) as client:
        before = frames.read()
        await asyncio.gather(
            client.create_run(unique, "x" * 2000),
            client.create_run(unique, {}),
            client.create_run(unique, {}),
        )
    assert frames.since(before) == {"Batch": 1, "batched CreateRun OK": 2, "CreateRun": 1}


def test_batching_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="max_operations must be at least 1, got 0"):
        Batching(max_operations=0)
    with pytest.raises(ValueError, match="window must not be negative"):
        Batching(window=timedelta(seconds=-1))


async def test_calls_within_the_window_share_a_batch(counted, unique) -> None:
    server, frames = counted
    async with AsyncWorkflowStateClient(server.target, batching=Batching(window=timedelta(milliseconds=200))) as client:
        run = await client.create_run(unique, {})
        before = frames.read()
        first = asyncio.ensure_future(client.get_run(run.run_id))
        # A later loop turn, well inside the window.
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        second = asyncio.ensure_future(client.get_run(run.run_id))
        assert await first == await second == run
    assert frames.since(before) == {"Batch": 1, "batched GetRun OK": 2}


# --- the same results and errors as separate calls --------------------------------------------


def _describe(outcome: Any) -> Any:
    """An outcome without what differs between two runs of the same case (ids, times)."""
    if isinstance(outcome, WorkflowStateError):
        metadata = {key: UUID.sub("<id>", value) for key, value in outcome.metadata.items()}
        return (type(outcome).__name__, outcome.status.name, UUID.sub("<id>", outcome.message), outcome.reason, metadata)
    if isinstance(outcome, Run):
        return ("Run", outcome.workflow, outcome.status.name, outcome.output, outcome.error and outcome.error.message)
    if isinstance(outcome, StepState):
        return ("Step", outcome.step_name, outcome.status.name, outcome.attempt_count, outcome.result, outcome.error and outcome.error.message)
    if isinstance(outcome, StepAttempt):
        return ("Attempt", outcome.step_name, outcome.attempt, outcome.status.name, outcome.result)
    if isinstance(outcome, list):
        return [_describe(item) for item in outcome]
    return outcome


async def _cases(client: AsyncWorkflowStateClient, workflow: str) -> list[Callable[[], Awaitable[Any]]]:
    """Set up each case one by one; return the calls to make, all at once.

    The calls run in no set order, so no call reads or writes what another one writes: the reads
    are of a run of their own, ``read``, and each write has a step of its own.
    """
    read = await client.create_run(workflow, {"n": 0})
    await client.set_step_result((await client.insert_step_state(read.run_id, "a", "r", [1])).step_id, "done")
    run = await client.create_run(workflow, {"n": 1})
    finished = await client.update_run_status((await client.create_run(workflow)).run_id, RunStatus.CANCELLED)
    step = await client.insert_step_state(run.run_id, "a", "r", {"x": 1}, retries=2)
    running = await client.insert_step_state(run.run_id, "b", "r")
    await client.set_step_running(running.step_id)
    also_running = await client.insert_step_state(run.run_id, "g", "r")
    await client.set_step_running(also_running.step_id)
    succeeded = await client.insert_step_state(run.run_id, "c", "r")
    await client.set_step_result(succeeded.step_id, {"ok": 1})
    failed = await client.insert_step_state(run.run_id, "d", "r")
    await client.set_step_error(failed.step_id, Failure("boom"))
    fenced = await client.insert_step_state(run.run_id, "h", "r")
    other = await client.create_run(workflow)
    return [
        lambda: client.create_run(workflow, {"n": 2}),
        lambda: client.create_run("", {}),
        lambda: client.get_run(read.run_id),
        lambda: client.get_run(MISSING),
        lambda: client.get_run("not-a-uuid"),
        lambda: client.get_run_history(read.run_id),
        lambda: client.get_run_history(MISSING),
        lambda: client.update_run_status(other.run_id, RunStatus.COMPLETED, output={"done": True}),
        lambda: client.update_run_status(finished.run_id, RunStatus.COMPLETED),
        lambda: client.insert_step_state(run.run_id, "a", "r"),
        lambda: client.insert_step_state(run.run_id, "e", "r", retries=-1),
        lambda: client.insert_step_state(run.run_id, "f", "r", {"y": 2}),
        lambda: client.get_step_state(read.run_id, "a"),
        lambda: client.get_step_state(read.run_id, "nope"),
        lambda: client.set_step_scheduled(step.step_id, delay=timedelta(seconds=60)),
        lambda: client.set_step_running(succeeded.step_id),
        lambda: client.set_step_result(running.step_id, [1, 2]),
        lambda: client.set_step_result(succeeded.step_id, {"other": 1}),
        lambda: client.set_step_error(MISSING, Failure("x")),
        lambda: client.create_retry_attempt(failed.step_id, StepStatus.RUNNING),
        lambda: client.create_retry_attempt(also_running.step_id),
        lambda: client.set_step_running(fenced.step_id, fencing_token=1, lease_key="nobody-holds-this"),
        lambda: client.get_lease("nobody-holds-this-either"),
    ]


async def _outcomes(client: AsyncWorkflowStateClient, workflow: str) -> list[Any]:
    calls = await _cases(client, workflow)
    outcomes = await asyncio.gather(*(call() for call in calls), return_exceptions=True)
    return [_describe(outcome) for outcome in outcomes]


@pytest.mark.parametrize("grouping", ["alone", "grouped"])
async def test_batched_calls_give_what_separate_calls_give(start_server, grouping: str) -> None:
    # Grouped: the server holds operations of a kind until 4 wait (or a moment passed), so the
    # concurrent calls of one kind share statements on the server too.
    forced = ("--test-group-hold", "4", "--test-group-hold-seconds", "0.05") if grouping == "grouped" else ()
    server = start_server("--metrics-listen", "127.0.0.1:0", *forced)
    frames = Frames(server)
    workflow = f"same-{uuid.uuid4().hex[:8]}"
    async with AsyncWorkflowStateClient(server.target, batching=False) as client:
        alone = await _outcomes(client, workflow)
    before = frames.read()
    async with AsyncWorkflowStateClient(server.target) as client:
        batched = await _outcomes(client, workflow)
    assert batched == alone
    # Failures and successes side by side in the batch, each on its own call.
    errors = [outcome for outcome in batched if isinstance(outcome, tuple) and outcome[0] not in {"Run", "Step"}]
    assert len(errors) == 12, errors
    # Each names its reason, batched as alone.
    assert all(error[3] for error in errors), errors
    assert frames.since(before)["Batch"] >= 1
    if grouping == "grouped":
        samples = scrape(metrics_address(server.log_text()))
        shared = samples[("workflowstate_db_group_size_count", (("statement", "get_run"),))] < samples[
            ("workflowstate_db_group_size_sum", (("statement", "get_run"),))
        ]
        assert shared, "the concurrent GetRun calls did not share a statement"


# --- retries --------------------------------------------------------------------------------


@pytest.fixture
def proxy(database_url: str) -> Iterator[CuttableProxy]:
    cuttable = CuttableProxy(database_url).start()
    yield cuttable
    cuttable.close()


@pytest.mark.parametrize("retry", [True, False])
async def test_batched_operations_are_retried_as_their_separate_calls_would_be(start_server, proxy, unique, retry) -> None:
    server = start_server("--metrics-listen", "127.0.0.1:0", url=proxy.url)
    frames = Frames(server)
    async with AsyncWorkflowStateClient(server.target, retry=retry) as client:
        run = await client.create_run(unique, {})
        proxy.cut()
        outcomes = await asyncio.gather(
            client.get_run(run.run_id),
            client.get_run(run.run_id),
            client.insert_step_state(run.run_id, "a", "r"),
            return_exceptions=True,
        )
        proxy.restore()
    assert [type(outcome) for outcome in outcomes] == [Unavailable] * 3, outcomes
    counts = frames.read()
    # GetRun is safe to repeat: 5 attempts each, as gRPC's policy would make; InsertStepState is
    # not (a repeat could find its own step): sent once.
    attempts = 5 if retry else 1
    assert counts.get("batched GetRun UNAVAILABLE") == 2 * attempts
    assert counts.get("batched InsertStepState UNAVAILABLE") == 1


# --- cancelling -----------------------------------------------------------------------------


async def test_cancelling_a_lone_call_cancels_it_on_the_server(server_target, db, unique) -> None:
    async with AsyncWorkflowStateClient(server_target) as client:
        run = await client.create_run(unique, {})
        with db.transaction():
            db.execute("SELECT FROM workflows_test.runs WHERE run_id = %s FOR UPDATE", (run.run_id,))
            call = asyncio.ensure_future(client.update_run_status(run.run_id, RunStatus.COMPLETED))
            await asyncio.to_thread(wait_in_database, db, SOMEONE_WAITS_FOR_A_LOCK)
            call.cancel()
            await asyncio.to_thread(wait_in_database, db, NOBODY_WAITS_FOR_A_LOCK)
        assert (await client.get_run(run.run_id)).status is RunStatus.RUNNING


# --- the blocking client --------------------------------------------------------------------

THREADS, CALLS_EACH = 16, 20


def _calls_from_threads(client: WorkflowStateClient, run_id: str) -> list[Run | None]:
    start = threading.Barrier(THREADS)
    results: list[Run | None] = []

    def caller() -> None:
        start.wait()
        for _ in range(CALLS_EACH):
            results.append(client.get_run(run_id))

    threads = [threading.Thread(target=caller) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_calls_of_several_threads_share_batches(counted, unique) -> None:
    server, frames = counted
    with WorkflowStateClient(server.target) as client:
        run = client.create_run(unique, {})
        before = frames.read()
        assert _calls_from_threads(client, run.run_id) == [run] * THREADS * CALLS_EACH
    calls = frames.since(before)
    assert calls.get("batched GetRun OK", 0) + calls.get("GetRun", 0) == THREADS * CALLS_EACH
    # Sixteen threads calling at once: most calls find another on its way and join the next batch.
    assert calls["Batch"] + calls.get("GetRun", 0) < THREADS * CALLS_EACH / 2, calls


def test_threads_without_batching_send_every_call(counted, unique) -> None:
    """The control of the test above."""
    server, frames = counted
    with WorkflowStateClient(server.target, batching=False) as client:
        run = client.create_run(unique, {})
        before = frames.read()
        _calls_from_threads(client, run.run_id)
    assert frames.since(before) == {"GetRun": THREADS * CALLS_EACH}


def test_a_lone_blocking_call_goes_out_as_itself(counted, unique) -> None:
    server, frames = counted
    with WorkflowStateClient(server.target) as client:
        before = frames.read()
        run = client.create_run(unique, {})
        assert client.get_run(run.run_id) == run
        assert client.get_run(MISSING) is None
    assert frames.since(before) == {"CreateRun": 1, "GetRun": 2}


async def test_a_turn_of_calls_is_spread_over_the_connections(counted, unique) -> None:
    server, frames = counted
    async with AsyncWorkflowStateClient(server.target, connections=4) as client:
        run = await client.create_run(unique, {})
        before = frames.read()
        await asyncio.gather(*(client.get_run(run.run_id) for _ in range(16)))
    # One batch per connection, so each server process behind them has its share.
    assert frames.since(before) == {"Batch": 4, "batched GetRun OK": 16}
