"""A worker's reports (dispatch/reports.py), driven directly: a complete or fail holds only for the
attempt its stream holds, and answers the step's new status; any other is refused with the refusal's
reason, and writes nothing. An ack holds for the attempt in flight on the stream, and only that."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from workflowstate.server.core import errors
from workflowstate.server.db.database import Database
from workflowstate.server.dispatch.reports import WorkerReports
from workflowstate.server.dispatch.store import TaskStore
from workflowstate.server.state.store import FailureRecord, StateStore
from workflowstate.server.state.transitions import StepStatus

RPC = "store-tier-reports"


@pytest.fixture(scope="module")
def tasks(database: Database) -> TaskStore:
    return TaskStore(database)


@pytest.fixture(scope="module")
def reports(state: StateStore, tasks: TaskStore) -> WorkerReports:
    return WorkerReports(state, tasks)


async def claimed_step(state: StateStore, tasks: TaskStore, stream_id: uuid.UUID) -> tuple[uuid.UUID, int]:
    """A new step of RPC, scheduled and claimed by `stream_id`: its step_id and attempt."""
    run = await state.create_run("store-tier-reports", "{}", None)
    step = await state.insert_step(run["run_id"], "work", RPC, "{}")
    await state.set_step_status(step["step_id"], StepStatus.SCHEDULED)
    claimed = await tasks.claim([RPC], 10, worker_id="store-tier", stream_id=stream_id, task_lease=timedelta(seconds=30))
    [row] = [row for row in claimed if row["step_id"] == step["step_id"]]
    return row["step_id"], row["attempt_count"]


async def test_a_complete_holds_only_from_the_stream_holding_the_attempt(state: StateStore, tasks: TaskStore, reports: WorkerReports) -> None:
    holder, other = uuid.uuid4(), uuid.uuid4()
    step_id, attempt = await claimed_step(state, tasks, holder)

    with pytest.raises(errors.FailedPrecondition) as refused:
        await reports.complete(step_id, attempt, '"done"', stream_id=other)
    assert refused.value.reason == "NOT_HELD", refused.value
    assert (await state.get_step_by_id(step_id))["status"] == StepStatus.RUNNING.value, "a refused complete writes nothing"

    assert await reports.complete(step_id, attempt, '"done"', stream_id=holder) is StepStatus.SUCCEEDED
    assert (await state.get_step_by_id(step_id))["result"] == '"done"'


async def test_a_fail_of_an_attempt_already_answered_is_refused(state: StateStore, tasks: TaskStore, reports: WorkerReports) -> None:
    stream_id = uuid.uuid4()
    step_id, attempt = await claimed_step(state, tasks, stream_id)
    failure = FailureRecord("it broke", code="BROKEN")

    assert await reports.fail(step_id, attempt, failure, retryable=False, stream_id=stream_id) is StepStatus.FAILED
    with pytest.raises(errors.FailedPrecondition) as refused:
        await reports.fail(step_id, attempt, failure, retryable=False, stream_id=stream_id)
    assert (refused.value.reason, refused.value.metadata.get("prior_status")) == ("ILLEGAL_TRANSITION", "FAILED"), refused.value


def test_an_ack_holds_only_for_the_attempt_in_flight_on_the_stream() -> None:
    step_id = uuid.uuid4()
    in_flight = {step_id: 2}

    WorkerReports.ack(in_flight, step_id, 2)
    for other_step, attempt in ((step_id, 1), (uuid.uuid4(), 2)):
        with pytest.raises(errors.FailedPrecondition) as refused:
            WorkerReports.ack(in_flight, other_step, attempt)
        assert f"attempt {attempt} of step {other_step} is not in flight on this stream" in str(refused.value)
        assert refused.value.reason == "NOT_HELD", refused.value
        assert refused.value.metadata == {"step_id": str(other_step), "attempt": str(attempt)}, refused.value
