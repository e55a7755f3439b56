"""A worker's complete and fail, over the wire: both only for the attempt that is RUNNING, held by the
reporting stream, at that attempt number. Any other report is refused with FAILED_PRECONDITION naming
the attempt and why, and writes nothing (checked through SQL)."""

from __future__ import annotations

from datetime import timedelta

import grpc
import pytest
from support.bidi_stream import duration
from support.flows import new_run, new_step, scheduled_steps
from support.task_stream import TaskStream

from workflowstate import v1 as pb

REFUSED_PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION.value[0]


def stored(db, step_id: str) -> tuple:
    """Everything a report could write: the step row and its history rows."""
    step = db.execute(
        "SELECT status, attempt_count, result, error, update_time, worker_id, task_stream_id, task_expire_time "
        "FROM workflows_test.steps WHERE step_id = %s",
        (step_id,),
    ).fetchone()
    history = db.execute(
        "SELECT attempt, status, result, error, update_time FROM workflows_test.step_attempts WHERE step_id = %s ORDER BY attempt",
        (step_id,),
    ).fetchall()
    return step, history


def refused_with(stream: TaskStream, step_id: str, attempt: int, *words: str, reason: str, **metadata: str) -> None:
    """The next answer refuses the report, naming `reason` and carrying `metadata`, and says so in its message."""
    refused = stream.expect("refused")
    assert (refused.step_id, refused.attempt, refused.code) == (step_id, attempt, REFUSED_PRECONDITION), refused
    assert refused.reason == reason, refused
    assert {key: refused.metadata.get(key) for key in metadata} == metadata, refused
    for word in (f"attempt {attempt}", "nothing was written", *words):
        assert word in refused.message, refused.message


def test_a_complete_for_an_attempt_that_is_scheduled_is_refused_and_writes_nothing(stub, db, rpc) -> None:
    worker = TaskStream(stub)
    worker.subscribe([rpc])
    [step] = scheduled_steps(stub, rpc, 1, retries=1, retry_delay=duration(timedelta(hours=1)))
    first = worker.expect("task")
    worker.fail(first, "try again later")  # the retry path: attempt 2 is SCHEDULED, due in an hour
    assert worker.expect("accepted").status == pb.STEP_STATUS_SCHEDULED
    before = stored(db, step.step_id)
    assert before[0][:2] == ("scheduled", 2)

    worker.complete(first, '{"early": true}', attempt=2)  # attempt 2 was never handed to anyone
    refused_with(worker, step.step_id, 2, "SCHEDULED", "not RUNNING", reason="ILLEGAL_TRANSITION", prior_status="SCHEDULED")
    assert stored(db, step.step_id) == before
    worker.close()
    assert worker.next() == grpc.StatusCode.OK


def test_a_complete_for_a_step_never_handed_out_is_refused_and_writes_nothing(stub, db, rpc) -> None:
    worker = TaskStream(stub)
    worker.subscribe([rpc])
    pending = new_step(stub, new_run(stub).run_id, "pending")  # PENDING at attempt 1
    before = stored(db, pending.step_id)

    worker.send(pb.StreamStepTasksRequest(complete=pb.StepTaskComplete(step_id=pending.step_id, attempt=1, result_json="{}")))
    refused_with(worker, pending.step_id, 1, "PENDING", "not RUNNING", reason="ILLEGAL_TRANSITION", prior_status="PENDING")
    assert stored(db, pending.step_id) == before
    worker.close()
    assert worker.next() == grpc.StatusCode.OK


@pytest.mark.parametrize("report", ["complete", "fail"])
def test_a_report_from_another_stream_is_refused_and_writes_nothing(stub, db, rpc, report: str) -> None:
    holder = TaskStream(stub)
    holder.subscribe([rpc], worker_id="holder")
    [step] = scheduled_steps(stub, rpc, 1, retries=3)
    task = holder.expect("task")
    other = TaskStream(stub)
    other.subscribe([f"{rpc}-other"], worker_id="other")
    before = stored(db, step.step_id)
    assert before[0][:2] == ("running", 1) and before[0][5] == "holder"

    if report == "complete":
        other.complete(task, '{"from": "other"}')
    else:
        other.fail(task, "from other")
    refused_with(other, step.step_id, 1, "held by another stream", "'holder'", reason="NOT_HELD", holder="holder")
    assert stored(db, step.step_id) == before

    # The holder still has it, and its own report counts.
    holder.complete(task, '{"from": "holder"}')
    accepted = holder.expect("accepted")
    assert (accepted.attempt, accepted.status) == (1, pb.STEP_STATUS_SUCCEEDED)
    for stream in (holder, other):
        stream.close()
        assert stream.next() == grpc.StatusCode.OK


def test_the_end_of_a_stream_does_not_fail_an_attempt_another_stream_adopted(stub, db, rpc) -> None:
    first = TaskStream(stub)
    first.subscribe([rpc], worker_id="reconnecting")
    [step] = scheduled_steps(stub, rpc, 1, retries=3)
    task = first.expect("task")
    # The worker reconnects (its old stream not yet ended) and names the task it still runs.
    second = TaskStream(stub)
    subscribe = pb.StepTaskSubscribe(
        worker_id="reconnecting", rpc_names=[rpc], max_in_flight=1, running=[pb.StepTaskAck(step_id=task.step_id, attempt=1)]
    )
    second.send(pb.StreamStepTasksRequest(subscribe=subscribe))
    assert [(a.step_id, a.attempt) for a in second.expect("subscribed").adopted] == [(task.step_id, 1)]
    adopted = stored(db, step.step_id)

    # The old stream ends: the session fails its tasks in flight before it answers OK.
    first.close()
    assert first.next() == grpc.StatusCode.OK
    assert stored(db, step.step_id) == adopted, "the adopted attempt was failed by the stream that no longer holds it"
    second.complete(task)
    assert second.expect("accepted").status == pb.STEP_STATUS_SUCCEEDED
    second.close()
    assert second.next() == grpc.StatusCode.OK
