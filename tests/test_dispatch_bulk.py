"""Remote mode, several per message: a bulk worker gets the tasks of one claim in one message, and
any worker's updates message (acks, completes, fails) runs each update exactly as if it came alone,
answered by one outcomes message in order. Single messages keep working (test_dispatch.py)."""

from __future__ import annotations

import json

import grpc
from support.flows import new_run, scheduled_steps
from support.task_stream import TaskStream
from support.waiting import wait_in_database

from workflowstate import v1 as pb

REFUSED_PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION.value[0]
REFUSED_INVALID = grpc.StatusCode.INVALID_ARGUMENT.value[0]


def complete(task: pb.StepTask, result_json: str = '{"ok": true}', *, attempt: int | None = None) -> pb.StepTaskUpdate:
    return pb.StepTaskUpdate(complete=pb.StepTaskComplete(step_id=task.step_id, attempt=attempt or task.attempt, result_json=result_json))


def ack(task: pb.StepTask) -> pb.StepTaskUpdate:
    return pb.StepTaskUpdate(ack=pb.StepTaskAck(step_id=task.step_id, attempt=task.attempt))


def fail(task: pb.StepTask, message: str) -> pb.StepTaskUpdate:
    return pb.StepTaskUpdate(fail=pb.StepTaskFail(step_id=task.step_id, attempt=task.attempt, error=pb.Failure(message=message)))


def step_state(stub, step: pb.StepState) -> pb.StepState:
    return stub.GetStepState(pb.GetStepStateRequest(run_id=step.run_id, step_name=step.step_name)).step


def tasks_of(worker: TaskStream, count: int) -> list[pb.StepTask]:
    """The next `count` tasks of a bulk stream, however many messages carry them."""
    tasks: list[pb.StepTask] = []
    while len(tasks) < count:
        tasks.extend(worker.expect("tasks").tasks)
    assert len(tasks) == count
    return tasks


def test_the_tasks_of_one_claim_come_in_one_message(stub, rpc) -> None:
    steps = scheduled_steps(stub, rpc, 8)  # due before the worker subscribes: its first claim finds them all
    worker = TaskStream(stub)
    assert worker.subscribe([rpc], max_in_flight=5, bulk=True).bulk, "the server says it takes updates"

    first = worker.expect("tasks").tasks
    assert len(first) == 5, "one claim of the whole credit, in one message"
    worker.updates(*(complete(task) for task in first))
    outcomes = worker.expect("outcomes").outcomes
    assert [(o.accepted.step_id, o.accepted.status) for o in outcomes] == [(t.step_id, pb.STEP_STATUS_SUCCEEDED) for t in first]
    worker.credit(5)
    rest = worker.expect("tasks").tasks
    assert len(rest) == 3, "the rest, in one message"
    assert sorted(t.step_id for t in (*first, *rest)) == sorted(s.step_id for s in steps)
    worker.cancel()


def test_a_worker_that_does_not_say_bulk_gets_one_task_per_message(stub, rpc) -> None:
    scheduled_steps(stub, rpc, 3)
    worker = TaskStream(stub)
    worker.subscribe([rpc], max_in_flight=3)
    for _ in range(3):
        worker.expect("task")
    worker.cancel()


def test_each_update_has_its_own_outcome_and_a_stale_one_writes_nothing(stub, db, rpc) -> None:
    # A stale attempt: attempt 1 of `stale` went to a worker that left, attempt 2 is running now.
    [stale] = scheduled_steps(stub, rpc, 1, retries=1)
    first = TaskStream(stub)
    first.subscribe([rpc], worker_id="first")
    lost_task = first.expect("task")
    first.cancel()
    wait_in_database(db, "EXISTS (SELECT FROM workflows_test.steps WHERE step_id = {} AND attempt_count = 2)", (stale.step_id,))
    good, failing, invalid = scheduled_steps(stub, rpc, 3)
    worker = TaskStream(stub)
    worker.subscribe([rpc], max_in_flight=10, bulk=True)
    by_step = {task.step_id: task for task in tasks_of(worker, 4)}
    retry = by_step[stale.step_id]
    assert retry.attempt == 2

    worker.updates(
        ack(retry),  # holds: no answer
        complete(by_step[good.step_id], '{"n": 1}'),
        complete(lost_task, '{"from": "attempt 1"}'),  # attempt 1's result, arriving late
        fail(by_step[failing.step_id], "it broke"),
        complete(by_step[invalid.step_id], "{not json"),
    )
    outcomes = worker.expect("outcomes").outcomes
    assert [o.WhichOneof("kind") for o in outcomes] == ["accepted", "refused", "accepted", "refused"]
    assert (outcomes[0].accepted.step_id, outcomes[0].accepted.status) == (good.step_id, pb.STEP_STATUS_SUCCEEDED)
    assert (outcomes[1].refused.step_id, outcomes[1].refused.attempt, outcomes[1].refused.code) == (stale.step_id, 1, REFUSED_PRECONDITION)
    assert (outcomes[1].refused.reason, outcomes[1].refused.metadata["prior_attempt"]) == ("WRONG_ATTEMPT", "2"), outcomes[1]
    assert (outcomes[2].accepted.step_id, outcomes[2].accepted.status) == (failing.step_id, pb.STEP_STATUS_FAILED)
    assert (outcomes[3].refused.step_id, outcomes[3].refused.code) == (invalid.step_id, REFUSED_INVALID)
    assert "complete.result_json" in outcomes[3].refused.message
    assert (outcomes[3].refused.reason, outcomes[3].refused.metadata["field"]) == ("INVALID_ARGUMENT", "complete.result_json"), outcomes[3]

    assert json.loads(step_state(stub, good).result_json) == {"n": 1}
    stale_now = step_state(stub, stale)
    assert (stale_now.status, stale_now.attempt_count, stale_now.HasField("result_json")) == (pb.STEP_STATUS_RUNNING, 2, False)
    assert step_state(stub, invalid).status == pb.STEP_STATUS_RUNNING, "a refused complete leaves its task in flight"
    # Still the worker's: its complete alone is accepted.
    worker.complete(by_step[invalid.step_id])
    assert worker.expect("accepted").step_id == invalid.step_id
    worker.cancel()


def test_updates_of_one_task_run_in_their_order(stub, rpc) -> None:
    scheduled_steps(stub, rpc, 1)
    worker = TaskStream(stub)
    worker.subscribe([rpc], bulk=True)
    [task] = worker.expect("tasks").tasks
    worker.updates(ack(task), complete(task), ack(task))
    first, second = worker.expect("outcomes").outcomes
    assert first.accepted.step_id == task.step_id
    assert (second.refused.code, second.refused.reason) == (REFUSED_PRECONDITION, "NOT_HELD"), "after its complete"
    assert dict(second.refused.metadata) == {"step_id": task.step_id, "attempt": str(task.attempt)}, second.refused
    assert "not in flight" in second.refused.message, second.refused
    worker.cancel()


def test_acks_that_hold_are_not_answered(stub, rpc) -> None:
    scheduled_steps(stub, rpc, 1)
    worker = TaskStream(stub)
    worker.subscribe([rpc], bulk=True)
    [task] = worker.expect("tasks").tasks
    worker.updates(ack(task))
    worker.updates()  # empty: nothing to answer either
    worker.complete(task)
    assert worker.expect("accepted").step_id == task.step_id, "the first answer is the complete's"
    worker.cancel()


def test_an_oversize_updates_message_ends_the_stream_before_any_update_runs(stub, rpc) -> None:
    [step] = scheduled_steps(stub, rpc, 1)
    worker = TaskStream(stub)
    worker.subscribe([rpc])
    task = worker.expect("task")
    worker.updates(complete(task), *(ack(task) for _ in range(1000)))
    assert "1001 updates, more than 1000" in worker.expect_end(grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    assert step_state(stub, step).status != pb.STEP_STATUS_SUCCEEDED, "its complete did not run"


def test_an_update_with_nothing_set_ends_the_stream_naming_it(stub, rpc) -> None:
    [step] = scheduled_steps(stub, rpc, 1)
    worker = TaskStream(stub)
    worker.subscribe([rpc])
    task = worker.expect("task")
    worker.updates(complete(task), pb.StepTaskUpdate())
    assert "updates.updates[1] sets none of" in worker.expect_end(grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    assert step_state(stub, step).status != pb.STEP_STATUS_SUCCEEDED, "its complete did not run"


def test_tasks_of_large_steps_are_split_over_messages_of_at_most_a_mebibyte(stub, rpc) -> None:
    big = json.dumps({"blob": "x" * 300_000})  # three fit in 1 MiB, four do not
    run = new_run(stub)
    for i in range(4):
        step = stub.InsertStepState(pb.InsertStepStateRequest(run_id=run.run_id, step_name=f"big-{i}", rpc_name=rpc, data_json=big)).step
        stub.SetStepScheduled(pb.SetStepScheduledRequest(step_id=step.step_id))
    worker = TaskStream(stub)
    worker.subscribe([rpc], max_in_flight=4, bulk=True)
    first, second = worker.expect("tasks").tasks, worker.expect("tasks").tasks
    assert (len(first), len(second)) == (3, 1), "one claim, cut where 1 MiB would be passed"
    worker.cancel()
