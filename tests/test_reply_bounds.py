"""Every reply has a bound (--max-reply-bytes): a page ends early with its token, a Batch answers the
operations past the bound RESOURCE_EXHAUSTED without running them, any other reply past it is
RESOURCE_EXHAUSTED naming the bound; and the server's memory stays within a few bounds' worth."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration
from support.flows import error_info_of
from support.server_process import ServerProcess

from workflowstate.client import AsyncWorkflowStateClient
from workflowstate import v1 as pb
from workflowstate.v1 import workflow_state_pb2_grpc as pb_grpc

PAYLOAD_LIMIT = 64 * 1024
# The least bound the server accepts at that payload limit (one run at the limit), and a little more.
ONE_RUN_AT_THE_LIMIT = 8 * PAYLOAD_LIMIT + 1000 * (2 * 4 * 256 + 16) + 64 * 1024
REPLY_BOUND = ONE_RUN_AT_THE_LIMIT + 100_000
BOUNDED = ("--max-payload-bytes", str(PAYLOAD_LIMIT), "--max-reply-bytes", str(REPLY_BOUND))
# JSON of about 60 KB: under the payload limit, so that a few dozen of them pass the bound.
LARGE_JSON = '"' + "x" * 60_000 + '"'
EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]


@contextmanager
def _stub(server: ServerProcess) -> Iterator[pb_grpc.WorkflowStateServiceStub]:
    # Replies of any size: what is bounded here is the server's.
    with grpc.insecure_channel(server.target, options=[("grpc.max_receive_message_length", -1)]) as channel:
        yield pb_grpc.WorkflowStateServiceStub(channel)


@pytest.fixture
def bounded(start_server: Callable[..., ServerProcess]) -> Iterator[pb_grpc.WorkflowStateServiceStub]:
    """A server whose replies are bounded at REPLY_BOUND bytes."""
    with _stub(start_server(*BOUNDED)) as stub:
        yield stub


def _large_run(stub: pb_grpc.WorkflowStateServiceStub, workflow: str) -> str:
    """A completed run of about 120 KB: LARGE_JSON as its input and as its output."""
    run_id = stub.CreateRun(pb.CreateRunRequest(workflow=workflow, input_json=LARGE_JSON)).run.run_id
    stub.UpdateRunStatus(pb.UpdateRunStatusRequest(run_id=run_id, status=pb.RUN_STATUS_COMPLETED, output_json=LARGE_JSON))
    return run_id


def _names_the_bound(message: str) -> bool:
    return str(REPLY_BOUND) in message and "--max-reply-bytes" in message


def test_a_batch_of_reads_stops_adding_results_at_the_reply_bound(bounded: pb_grpc.WorkflowStateServiceStub) -> None:
    run_id = _large_run(bounded, f"wf-{uuid.uuid4().hex[:8]}")
    reads = [pb.BatchOperation(get_run=pb.GetRunRequest(run_id=run_id)) for _ in range(100)]  # about 12 MB of runs

    reply = bounded.Batch(pb.BatchRequest(operations=reads))

    assert reply.ByteSize() <= REPLY_BOUND
    answered = [result for result in reply.results if result.WhichOneof("result") == "get_run"]
    refused = [result.error for result in reply.results if result.WhichOneof("result") == "error"]
    assert len(answered) + len(refused) == len(reads)
    assert answered and all(result.get_run.run.run_id == run_id for result in answered)
    assert refused and all(error.code == EXHAUSTED and _names_the_bound(error.message) for error in refused)
    assert {error.reason for error in refused} == {"REPLY_TOO_LARGE"}


def test_a_batch_runs_no_write_past_the_reply_bound(bounded: pb_grpc.WorkflowStateServiceStub) -> None:
    """After the first write's reply, the bound has no room left for what a second's may be: the
    second and third are answered RESOURCE_EXHAUSTED, and their runs are left as they were."""
    workflow = f"wf-{uuid.uuid4().hex[:8]}"
    run_ids = [bounded.CreateRun(pb.CreateRunRequest(workflow=workflow, input_json=LARGE_JSON)).run.run_id for _ in range(3)]
    completes = [
        pb.BatchOperation(update_run_status=pb.UpdateRunStatusRequest(run_id=run_id, status=pb.RUN_STATUS_COMPLETED, output_json=LARGE_JSON))
        for run_id in run_ids
    ]

    reply = bounded.Batch(pb.BatchRequest(operations=completes))

    first, *rest = reply.results
    assert first.update_run_status.run.status == pb.RUN_STATUS_COMPLETED
    assert [(result.error.code, result.error.reason) for result in rest] == [(EXHAUSTED, "REPLY_TOO_LARGE")] * 2
    assert all(_names_the_bound(result.error.message) and "not run" in result.error.message for result in rest)
    assert [bounded.GetRun(pb.GetRunRequest(run_id=run_id)).run.status for run_id in run_ids[1:]] == [pb.RUN_STATUS_RUNNING] * 2


def test_a_full_view_page_of_runs_ends_early_and_the_pages_hold_every_run_once(bounded: pb_grpc.WorkflowStateServiceStub) -> None:
    workflow = f"wf-{uuid.uuid4().hex[:8]}"
    created = {_large_run(bounded, workflow) for _ in range(40)}  # about 5 MB in the full view

    pages: list[pb.ListRunsResponse] = []
    token = ""
    while not pages or token:
        request = pb.ListRunsRequest(filter=pb.RunFilter(workflow=workflow), view=pb.RUN_VIEW_FULL, page_size=1000, page_token=token)
        pages.append(bounded.ListRuns(request))
        token = pages[-1].next_page_token

    assert len(pages) > 1
    assert all(page.ByteSize() <= REPLY_BOUND for page in pages)
    listed = [run.run_id for page in pages for run in page.runs]
    assert sorted(listed) == sorted(created)
    assert all(run.output_json == LARGE_JSON for page in pages for run in page.runs)


def test_a_page_of_schedules_ends_early_and_the_pages_hold_every_schedule_once(bounded: pb_grpc.WorkflowStateServiceStub) -> None:
    prefix = uuid.uuid4().hex[:8]
    created = set()
    for index in range(50):  # about 3 MB of inputs
        schedule_id = f"{prefix}-{index}"
        daily = Duration(seconds=86400)
        bounded.CreateSchedule(pb.CreateScheduleRequest(schedule_id=schedule_id, workflow="daily", interval=daily, input_json=LARGE_JSON))
        created.add(schedule_id)

    pages: list[pb.ListSchedulesResponse] = []
    token = ""
    while not pages or token:
        pages.append(bounded.ListSchedules(pb.ListSchedulesRequest(page_size=1000, page_token=token)))
        token = pages[-1].next_page_token

    assert len(pages) > 1
    assert all(page.ByteSize() <= REPLY_BOUND for page in pages)
    assert sorted(schedule.schedule_id for page in pages for schedule in page.schedules) == sorted(created)


def test_a_history_past_the_reply_bound_is_resource_exhausted_naming_the_bound(bounded: pb_grpc.WorkflowStateServiceStub) -> None:
    run_id = bounded.CreateRun(pb.CreateRunRequest(workflow=f"wf-{uuid.uuid4().hex[:8]}", input_json="{}")).run.run_id
    for index in range(60):  # 60 attempts of 60 KB results: about 3.6 MB
        step = bounded.InsertStepState(pb.InsertStepStateRequest(run_id=run_id, step_name=f"s{index}", data_json="{}")).step
        bounded.SetStepRunning(pb.SetStepRunningRequest(step_id=step.step_id))
        bounded.SetStepResult(pb.SetStepResultRequest(step_id=step.step_id, result_json=LARGE_JSON))

    with pytest.raises(grpc.RpcError) as refused:
        bounded.GetRunHistory(pb.GetRunHistoryRequest(run_id=run_id))

    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error_info_of(refused.value)[0] == "REPLY_TOO_LARGE"
    # The message says what to ask for instead.
    assert _names_the_bound(refused.value.details()) and "GetStepState" in refused.value.details()


def test_the_clients_calls_batched_past_the_reply_bound_end_as_their_separate_calls(start_server: Callable[..., ServerProcess]) -> None:
    """The client sends calls made at the same moment as one Batch: those the server refuses at the
    bound (not run) go again on their own, so each caller gets its run as the separate call gives it."""
    server = start_server(*BOUNDED)
    with _stub(server) as stub:
        run_id = _large_run(stub, f"wf-{uuid.uuid4().hex[:8]}")

    async def read_together() -> list[str]:
        async with AsyncWorkflowStateClient(server.target) as client:
            runs = await asyncio.gather(*(client.get_run(run_id) for _ in range(40)))  # about 5 MB in one Batch
            return [run.run_id if run else "" for run in runs]

    assert asyncio.run(read_together()) == [run_id] * 40


def test_a_reply_bound_smaller_than_one_run_stops_the_start(start_server: Callable[..., ServerProcess]) -> None:
    with pytest.raises(RuntimeError, match=f"pass at least {ONE_RUN_AT_THE_LIMIT}"):
        start_server("--max-payload-bytes", str(PAYLOAD_LIMIT), "--max-reply-bytes", str(ONE_RUN_AT_THE_LIMIT - 1))


def _peak_memory(server: ServerProcess) -> int:
    """The server process's peak resident memory so far, in bytes (VmHWM)."""
    assert server.process
    for line in Path(f"/proc/{server.process.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/<pid>/status")


DEFAULT_REPLY_BOUND = 64 * 1024 * 1024


def test_a_batch_of_reads_of_a_large_run_keeps_the_servers_memory_within_a_few_reply_bounds(
    start_server: Callable[..., ServerProcess],
) -> None:
    """A read token's Batch of 300 GetRun on one run of 1 MiB would be a reply of 300 MiB: with the
    default bound, the server's peak memory grows by a few bounds' worth at most."""
    server = start_server()  # the default payload limit (1 MiB) and reply bound
    with _stub(server) as stub:
        run_id = stub.CreateRun(pb.CreateRunRequest(workflow="large", input_json='"' + "x" * (1024 * 1024 - 2) + '"')).run.run_id
        before = _peak_memory(server)

        reply = stub.Batch(pb.BatchRequest(operations=[pb.BatchOperation(get_run=pb.GetRunRequest(run_id=run_id))] * 300))

        # The reply, its serialized copy, gRPC's copy of that and the rows in flight: a few bounds.
        assert _peak_memory(server) - before < 6 * DEFAULT_REPLY_BOUND
        assert reply.ByteSize() <= DEFAULT_REPLY_BOUND
