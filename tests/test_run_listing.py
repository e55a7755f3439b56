"""ListRuns over the wire: filters, views, page sizes, and page tokens that stay true while runs are
created (AIP-158), through the raw stub (exact codes) and the client."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone

import grpc
import pytest
from support.flows import new_run, status_of

from workflowstate.client import AsyncWorkflowStateClient, InvalidArgument, RunStatus, WorkflowStateClient
from workflowstate import v1 as pb


def unique_workflow(prefix: str = "listing") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def run_ids(stub, **request) -> list[str]:
    """Every run id of a walk over all the pages of one ListRuns query."""
    ids, token = [], ""
    while True:
        reply = stub.ListRuns(pb.ListRunsRequest(page_token=token, **request))
        ids += [run.run_id for run in reply.runs]
        token = reply.next_page_token
        if not token:
            return ids


@pytest.mark.parametrize("oldest_first", [False, True], ids=["newest-first", "oldest-first"])
async def test_a_walk_over_2500_runs_sees_each_run_that_existed_once_while_another_client_creates_more(
    server_target: str, oldest_first: bool
) -> None:
    workflow = unique_workflow("walk")
    async with AsyncWorkflowStateClient(server_target) as writer, AsyncWorkflowStateClient(server_target) as reader:
        # Batched by the client: 2,500 concurrent calls go as a few dozen Batch calls.
        existing = await asyncio.gather(*(writer.create_run(workflow, {"i": i}) for i in range(2500)))
        before = {run.run_id for run in existing}
        created_during: list[str] = []

        seen: list[str] = []
        token: str | None = None
        pages = 0
        while True:
            page = await reader.list_runs(workflow=workflow, oldest_first=oldest_first, page_size=97, page_token=token)
            seen += [run.run_id for run in page.runs]
            pages += 1
            # Between every two pages the other client creates runs of the same workflow: the walk
            # goes on across inserts at its start (newest first) or at its end (oldest first).
            created_during += [run.run_id for run in await asyncio.gather(*(writer.create_run(workflow, None) for _ in range(7)))]
            token = page.next_page_token
            if token is None:
                break

    counts = Counter(seen)
    assert not [run_id for run_id, count in counts.items() if count > 1], "no run is seen twice"
    assert before <= set(seen), f"{len(before - set(seen))} runs that existed before the walk were missed"
    assert set(seen) <= before | set(created_during)
    assert pages >= 2500 // 97
    if not oldest_first:
        assert set(seen) == before, "newest first, runs created during the walk sort before its position"


async def test_the_order_is_create_time_then_run_id_in_both_directions(server_target: str) -> None:
    workflow = unique_workflow()
    async with AsyncWorkflowStateClient(server_target) as client:
        await asyncio.gather(*(client.create_run(workflow, i) for i in range(30)))
        newest = [run async for run in client.iter_runs(workflow=workflow, page_size=4)]
        oldest = [run async for run in client.iter_runs(workflow=workflow, page_size=4, oldest_first=True)]
    keys = [(run.create_time, uuid.UUID(run.run_id)) for run in oldest]
    assert keys == sorted(keys) and len(keys) == 30
    assert [run.run_id for run in newest] == [run.run_id for run in reversed(oldest)]


def test_filters_keep_only_the_runs_that_match(stub) -> None:
    workflow = unique_workflow()
    runs = [new_run(stub, workflow) for _ in range(4)]
    other = new_run(stub, unique_workflow())
    stub.UpdateRunStatus(pb.UpdateRunStatusRequest(run_id=runs[0].run_id, status=pb.RUN_STATUS_FAILED, error=pb.Failure(message="x")))
    stub.UpdateRunStatus(pb.UpdateRunStatusRequest(run_id=runs[1].run_id, status=pb.RUN_STATUS_COMPLETED))
    ids = [run.run_id for run in runs]

    assert set(run_ids(stub, filter=pb.RunFilter(workflow=workflow))) == set(ids)
    assert other.run_id not in run_ids(stub, filter=pb.RunFilter(workflow=workflow))
    failed_or_done = pb.RunFilter(workflow=workflow, statuses=[pb.RUN_STATUS_FAILED, pb.RUN_STATUS_COMPLETED])
    assert set(run_ids(stub, filter=failed_or_done)) == set(ids[:2])
    running = pb.RunFilter(workflow=workflow, statuses=[pb.RUN_STATUS_RUNNING])
    assert set(run_ids(stub, filter=running)) == set(ids[2:])

    # Half-open ranges: after includes its instant, before excludes it.
    third = runs[2].create_time
    assert set(run_ids(stub, filter=pb.RunFilter(workflow=workflow, created_after=third))) == set(ids[2:])
    assert set(run_ids(stub, filter=pb.RunFilter(workflow=workflow, created_before=third))) == set(ids[:2])
    finished = stub.GetRun(pb.GetRunRequest(run_id=ids[1])).run.update_time
    assert set(run_ids(stub, filter=pb.RunFilter(workflow=workflow, updated_after=finished))) == {ids[1]}
    updated_before = pb.RunFilter(workflow=workflow, updated_before=finished)
    assert set(run_ids(stub, filter=updated_before)) == set(ids) - {ids[1]}


def test_the_basic_view_leaves_the_payloads_out_and_the_full_view_has_them(stub) -> None:
    workflow = unique_workflow()
    run = new_run(stub, workflow, input_json='{"big": "input"}')
    failure = pb.Failure(message="declined", stack="Traceback ...", code="E1")
    stub.UpdateRunStatus(pb.UpdateRunStatusRequest(run_id=run.run_id, status=pb.RUN_STATUS_FAILED, output_json='{"o": 1}', error=failure))

    [basic] = stub.ListRuns(pb.ListRunsRequest(filter=pb.RunFilter(workflow=workflow))).runs
    assert basic.input_json == "" and not basic.HasField("output_json")
    assert (basic.error.message, basic.error.code, basic.error.stack) == ("declined", "E1", "")
    assert basic.status == pb.RUN_STATUS_FAILED and basic.workflow == workflow

    [full] = stub.ListRuns(pb.ListRunsRequest(filter=pb.RunFilter(workflow=workflow), view=pb.RUN_VIEW_FULL)).runs
    assert full == stub.GetRun(pb.GetRunRequest(run_id=run.run_id)).run


def test_page_size_zero_means_50_and_the_last_page_has_no_token(stub) -> None:
    workflow = unique_workflow()
    for _ in range(51):
        new_run(stub, workflow)
    first = stub.ListRuns(pb.ListRunsRequest(filter=pb.RunFilter(workflow=workflow)))
    assert len(first.runs) == 50 and first.next_page_token
    second = stub.ListRuns(pb.ListRunsRequest(filter=pb.RunFilter(workflow=workflow), page_token=first.next_page_token, page_size=1000))
    assert len(second.runs) == 1 and second.next_page_token == ""
    exact = stub.ListRuns(pb.ListRunsRequest(filter=pb.RunFilter(workflow=workflow), page_size=51))
    assert len(exact.runs) == 51 and exact.next_page_token == "", "no token when nothing follows"
    empty = stub.ListRuns(pb.ListRunsRequest(filter=pb.RunFilter(workflow=unique_workflow())))
    assert list(empty.runs) == [] and empty.next_page_token == ""


def test_a_token_may_come_back_with_another_page_size_and_view(stub) -> None:
    workflow = unique_workflow()
    for _ in range(3):
        new_run(stub, workflow)
    first = stub.ListRuns(pb.ListRunsRequest(filter=pb.RunFilter(workflow=workflow), page_size=1))
    rest = stub.ListRuns(
        pb.ListRunsRequest(filter=pb.RunFilter(workflow=workflow), page_size=5, view=pb.RUN_VIEW_FULL, page_token=first.next_page_token)
    )
    assert len(rest.runs) == 2 and rest.runs[0].input_json


def _token(stub, workflow: str, **request) -> str:
    reply = stub.ListRuns(pb.ListRunsRequest(filter=pb.RunFilter(workflow=workflow), page_size=1, **request))
    assert reply.next_page_token
    return reply.next_page_token


@pytest.mark.parametrize(
    "change",
    [
        {"filter": pb.RunFilter(workflow="another")},
        {"order_by": pb.RUN_ORDER_CREATE_TIME_ASC},
        {"filter": "statuses"},
        {"filter": "created_after"},
    ],
    ids=["workflow", "order", "statuses", "created_after"],
)
def test_a_token_sent_with_another_query_is_invalid_argument_naming_page_token(stub, change) -> None:
    workflow = unique_workflow()
    for _ in range(2):
        new_run(stub, workflow)
    token = _token(stub, workflow)
    request = pb.ListRunsRequest(filter=pb.RunFilter(workflow=workflow), page_token=token)
    if change.get("filter") == "statuses":
        request.filter.statuses.append(pb.RUN_STATUS_RUNNING)
    elif change.get("filter") == "created_after":
        request.filter.created_after.FromDatetime(datetime(2000, 1, 1, tzinfo=timezone.utc))
    elif "filter" in change:
        request.filter.CopyFrom(change["filter"])
    else:
        request.order_by = change["order_by"]
    code, message = status_of(stub.ListRuns, request)
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "page_token" in message and "another query" in message


@pytest.mark.parametrize(
    ("request_fields", "field"),
    [
        ({"page_size": -1}, "page_size"),
        ({"page_size": 1001}, "page_size"),
        ({"page_token": "not-a-token"}, "page_token"),
        ({"page_token": "eyJ2IjoxfQ"}, "page_token"),  # valid base64 of {"v":1}: a token without its parts
        ({"order_by": 7}, "order_by"),
        ({"view": 9}, "view"),
        ({"filter": pb.RunFilter(statuses=[pb.RUN_STATUS_UNSPECIFIED])}, "filter.statuses"),
        ({"filter": pb.RunFilter(workflow="x" * 257)}, "filter.workflow"),
        ({"filter": pb.RunFilter(created_after={"seconds": 100}, created_before={"seconds": 100})}, "filter.created_before"),
        ({"filter": pb.RunFilter(updated_after={"seconds": 100}, updated_before={"seconds": 50})}, "filter.updated_before"),
        ({"filter": pb.RunFilter(created_after={"seconds": -10**12})}, "filter.created_after"),
    ],
)
def test_bad_requests_are_invalid_argument_naming_the_field(stub, request_fields, field) -> None:
    code, message = status_of(stub.ListRuns, pb.ListRunsRequest(**request_fields))
    assert code == grpc.StatusCode.INVALID_ARGUMENT, message
    assert message.startswith(field) or f" {field}" in message or f"{field} " in message, message


def test_the_sync_client_pages_and_refuses_a_token_of_another_query(server_target: str) -> None:
    workflow = unique_workflow()
    with WorkflowStateClient(server_target) as client:
        made = [client.create_run(workflow, i) for i in range(5)]
        client.update_run_status(made[0].run_id, RunStatus.COMPLETED, output="done")
        page = client.list_runs(workflow=workflow, page_size=2, full=True)
        assert [run.run_id for run in page.runs] == [made[4].run_id, made[3].run_id]
        assert page.runs[0].input == 4
        assert [run.run_id for run in client.iter_runs(workflow=workflow, statuses=[RunStatus.COMPLETED])] == [made[0].run_id]
        assert {run.run_id for run in client.iter_runs(workflow=workflow, page_size=2)} == {run.run_id for run in made}
        basic = client.list_runs(workflow=workflow, page_size=1).runs[0]
        assert basic.input is None
        assert page.next_page_token is not None
        with pytest.raises(InvalidArgument, match="page_token"):
            client.list_runs(workflow=workflow, statuses=[RunStatus.FAILED], page_token=page.next_page_token)
        window = client.list_runs(workflow=workflow, created_after=made[1].create_time, created_before=made[3].create_time + timedelta(0))
        assert {run.run_id for run in window.runs} == {made[1].run_id, made[2].run_id}
