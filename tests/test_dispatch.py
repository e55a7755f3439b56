"""Remote mode over the wire: StreamStepTasks hands each attempt to exactly one worker, within its
credit, and fails and retries the attempts of lost workers."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import threading
import uuid
from collections import Counter
from datetime import timedelta

import grpc
import pytest
from support.bidi_stream import duration
from support.flows import history_of, new_run, new_step, scheduled_steps, status_of
from support.task_stream import TaskStream
from support.waiting import wait_in_database

from workflowstate import v1 as pb
from workflowstate.v1 import workflow_state_pb2_grpc as pb_grpc

REFUSED_PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION.value[0]
REFUSED_INVALID = grpc.StatusCode.INVALID_ARGUMENT.value[0]
REFUSED_NOT_FOUND = grpc.StatusCode.NOT_FOUND.value[0]


def step_row(db, step_id: str) -> dict:
    cursor = db.execute(
        "SELECT status, attempt_count, worker_id, not_before, scheduled_time, running_time, task_expire_time "
        "FROM workflows_test.steps WHERE step_id = %s",
        (step_id,),
    )
    names = [column.name for column in cursor.description]
    return dict(zip(names, cursor.fetchone(), strict=True))


def test_a_scheduled_step_is_pushed_and_its_result_recorded(stub, rpc) -> None:
    worker = TaskStream(stub)
    subscribed = worker.subscribe([rpc], worker_id="w-basic")
    assert subscribed.task_lease.ToTimedelta() == timedelta(seconds=30), "the default task lease"
    [step] = scheduled_steps(stub, rpc, 1)

    task = worker.expect("task")
    assert (task.step_id, task.run_id, task.step_name, task.rpc_name, task.attempt) == (step.step_id, step.run_id, step.step_name, rpc, 1)
    assert json.loads(task.data_json) == {"i": 0}
    running = stub.GetStepState(pb.GetStepStateRequest(run_id=step.run_id, step_name=step.step_name)).step
    assert running.status == pb.STEP_STATUS_RUNNING and running.worker_id == "w-basic"

    worker.complete(task, '{"answer": 42}')
    accepted = worker.expect("accepted")
    assert (accepted.step_id, accepted.attempt, accepted.status) == (step.step_id, 1, pb.STEP_STATUS_SUCCEEDED)
    done = stub.GetStepState(pb.GetStepStateRequest(run_id=step.run_id, step_name=step.step_name)).step
    assert done.status == pb.STEP_STATUS_SUCCEEDED and json.loads(done.result_json) == {"answer": 42}
    assert done.worker_id == "", "a finished attempt belongs to no worker"
    worker.close()
    assert worker.next() == grpc.StatusCode.OK


def test_steps_of_other_rpcs_pending_steps_and_finished_runs_are_not_pushed(stub, rpc) -> None:
    # Set up before any worker of this rpc exists, all due earlier than the marker below.
    [of_finished_run] = scheduled_steps(stub, rpc, 1)
    stub.UpdateRunStatus(pb.UpdateRunStatusRequest(run_id=of_finished_run.run_id, status=pb.RUN_STATUS_CANCELLED))
    run = new_run(stub)
    stub.InsertStepState(pb.InsertStepStateRequest(run_id=run.run_id, step_name="pending", rpc_name=rpc, data_json="{}"))
    scheduled_steps(stub, f"{rpc}-other", 1)
    worker = TaskStream(stub)
    worker.subscribe([rpc])
    # The marker, due last: the stream gets it, and nothing before it.
    [marker] = scheduled_steps(stub, rpc, 1)
    assert worker.expect("task").step_id == marker.step_id
    state = stub.GetStepState(pb.GetStepStateRequest(run_id=of_finished_run.run_id, step_name=of_finished_run.step_name)).step
    assert state.status == pb.STEP_STATUS_SCHEDULED, "a step of a finished run stays where it was"
    worker.cancel()


def test_credit_bounds_the_tasks_in_flight(stub, db, rpc) -> None:
    first = TaskStream(stub)
    first.subscribe([rpc], max_in_flight=3)
    steps = scheduled_steps(stub, rpc, 10)
    first_tasks = [first.expect("task") for _ in range(3)]
    # Without credit the first worker gets nothing more: a second worker takes all the others.
    second = TaskStream(stub)
    second.subscribe([rpc], max_in_flight=10)
    second_tasks = [second.expect("task") for _ in range(7)]
    wait_in_database(db, "NOT EXISTS (SELECT FROM workflows_test.steps WHERE rpc_name = {} AND status = 'scheduled')", (rpc,))
    assert {t.step_id for t in first_tasks} | {t.step_id for t in second_tasks} == {s.step_id for s in steps}
    assert len({t.step_id for t in first_tasks + second_tasks}) == 10

    # Credit beyond max_in_flight is a protocol error: it ends the stream.
    first.complete(first_tasks[0])
    first.expect("accepted")
    first.credit(2)
    assert "exceed max_in_flight 3" in first.expect_end(grpc.StatusCode.FAILED_PRECONDITION, "FAILED_PRECONDITION")
    second.cancel()


def test_credit_after_a_full_claim_brings_the_waiting_steps(stub, rpc) -> None:
    worker = TaskStream(stub)
    worker.subscribe([rpc], max_in_flight=1)
    steps = scheduled_steps(stub, rpc, 3)
    seen = []
    for _ in range(3):
        task = worker.expect("task")
        seen.append(task.step_id)
        worker.complete(task)
        worker.expect("accepted")
        worker.credit(1)
    assert sorted(seen) == sorted(s.step_id for s in steps)
    worker.cancel()


def test_each_attempt_goes_to_exactly_one_worker_across_two_servers(start_server, rpc) -> None:
    schema = f"t_{uuid.uuid4().hex[:10]}"
    servers = [start_server(schema=schema), start_server(schema=schema)]
    channels = [grpc.insecure_channel(server.target) for server in servers]
    stubs = [pb_grpc.WorkflowStateServiceStub(channel) for channel in channels]
    total, workers = 120, 6
    deliveries: Counter[tuple[str, int]] = Counter()
    lock = threading.Lock()
    done = threading.Event()
    errors: list[BaseException] = []

    streams = [TaskStream(stubs[index % 2]) for index in range(workers)]

    def work(index: int) -> None:
        stream = streams[index]
        try:
            stream.subscribe([rpc], max_in_flight=4, worker_id=f"w{index}")
            while True:
                response = stream.next(timeout=60)
                if done.is_set():
                    return  # the test cancels the streams once every step was delivered
                assert not isinstance(response, (grpc.RpcError, grpc.StatusCode)), f"worker {index}'s stream ended: {response!r}"
                kind = response.WhichOneof("kind")
                if kind == "task":
                    with lock:
                        deliveries[(response.task.step_id, response.task.attempt)] += 1
                    stream.complete(response.task, json.dumps({"worker": index}))
                elif kind == "accepted":
                    assert response.accepted.status == pb.STEP_STATUS_SUCCEEDED
                    stream.credit(1)
                    with lock:
                        accepted.append(response.accepted.step_id)
                        if len(accepted) == total:
                            done.set()
        except BaseException as err:  # reported by the test thread
            errors.append(err)
            done.set()

    accepted: list[str] = []
    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    run_ids = [new_run(stubs[0]).run_id for _ in range(4)]
    steps = [step for i, run_id in enumerate(run_ids) for step in scheduled_steps(stubs[i % 2], rpc, total // 4, run_id=run_id)]
    assert done.wait(120), "not every step was completed"
    for stream in streams:
        stream.cancel()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert set(deliveries) == {(step.step_id, 1) for step in steps}, "every step delivered, at attempt 1"
    assert set(deliveries.values()) == {1}, "no attempt delivered twice"
    assert sorted(accepted) == sorted(step.step_id for step in steps), "every result recorded once"
    for channel in channels:
        channel.close()


def test_fail_retryable_schedules_the_next_attempt_then_fails_the_step(stub, db, rpc) -> None:
    worker = TaskStream(stub)
    worker.subscribe([rpc])
    [step] = scheduled_steps(stub, rpc, 1, retries=1)
    first = worker.expect("task")
    worker.fail(first, "flaky")
    assert worker.expect("accepted").status == pb.STEP_STATUS_SCHEDULED
    second = worker.expect("task")
    assert (second.step_id, second.attempt) == (step.step_id, 2)
    worker.fail(second, "flaky again")
    assert worker.expect("accepted").status == pb.STEP_STATUS_FAILED
    final = stub.GetStepState(pb.GetStepStateRequest(run_id=step.run_id, step_name=step.step_name)).step
    assert final.status == pb.STEP_STATUS_FAILED and final.error.message == "flaky again"
    history = history_of(stub, step.run_id, step.step_name)
    assert [(a.attempt, a.status, a.error.message) for a in history] == [
        (1, pb.STEP_STATUS_FAILED, "flaky"),
        (2, pb.STEP_STATUS_FAILED, "flaky again"),
    ]
    worker.cancel()


def test_fail_not_retryable_fails_the_step_at_once(stub, rpc) -> None:
    worker = TaskStream(stub)
    worker.subscribe([rpc])
    [step] = scheduled_steps(stub, rpc, 1, retries=5)
    task = worker.expect("task")
    worker.fail(task, "bad input", retryable=False)
    assert worker.expect("accepted").status == pb.STEP_STATUS_FAILED
    assert [a.attempt for a in history_of(stub, step.run_id, step.step_name)] == [1]
    worker.cancel()


def test_a_late_complete_is_refused_and_writes_nothing(stub, rpc) -> None:
    first = TaskStream(stub)
    first.subscribe([rpc], worker_id="first")
    [step] = scheduled_steps(stub, rpc, 1, retries=1)
    task = first.expect("task")
    first.cancel()  # the worker is gone: attempt 1 fails as lost, attempt 2 is scheduled
    second = TaskStream(stub)
    second.subscribe([rpc], worker_id="second")
    retry = second.expect("task")
    assert (retry.step_id, retry.attempt) == (step.step_id, 2)

    second.complete(task, '{"from": "attempt 1"}')  # attempt 1's result, arriving late
    refused = second.expect("refused")
    assert (refused.step_id, refused.attempt, refused.code) == (step.step_id, 1, REFUSED_PRECONDITION)
    assert (refused.reason, refused.metadata["attempt"], refused.metadata["prior_attempt"]) == ("WRONG_ATTEMPT", "1", "2"), refused
    state = stub.GetStepState(pb.GetStepStateRequest(run_id=step.run_id, step_name=step.step_name)).step
    assert (state.status, state.attempt_count, state.HasField("result_json")) == (pb.STEP_STATUS_RUNNING, 2, False)
    lost = history_of(stub, step.run_id, step.step_name)[0]
    assert lost.status == pb.STEP_STATUS_FAILED and lost.error.message.startswith("worker lost")

    second.complete(retry, '{"from": "attempt 2"}')
    assert second.expect("accepted").status == pb.STEP_STATUS_SUCCEEDED
    second.complete(retry, '{"from": "attempt 2"}')
    assert second.expect("accepted").status == pb.STEP_STATUS_SUCCEEDED, "repeating the same result is a no-op"
    second.cancel()


WORKER_PROCESS = textwrap.dedent(
    """
    import sys, queue, grpc
    from workflowstate import v1 as pb
    from workflowstate.v1 import workflow_state_pb2_grpc as pb_grpc
    target, rpc = sys.argv[1], sys.argv[2]
    outgoing = queue.Queue()
    outgoing.put(pb.StreamStepTasksRequest(subscribe=pb.StepTaskSubscribe(worker_id="doomed", rpc_names=[rpc], max_in_flight=1)))
    stub = pb_grpc.WorkflowStateServiceStub(grpc.insecure_channel(target))
    for response in stub.StreamStepTasks(iter(outgoing.get, None)):
        if response.WhichOneof("kind") == "task":
            print("got", response.task.step_id, flush=True)
    """
)


def test_a_killed_worker_s_task_is_retried_on_another_after_the_retry_delay(stub, server_target, db, rpc) -> None:
    doomed = subprocess.Popen([sys.executable, "-c", WORKER_PROCESS, server_target, rpc], stdout=subprocess.PIPE, text=True)
    try:
        [step] = scheduled_steps(stub, rpc, 1, retries=1, retry_delay=duration(timedelta(seconds=1)))
        assert doomed.stdout is not None
        assert doomed.stdout.readline().split() == ["got", step.step_id]
    finally:
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(30)
        if doomed.stdout:
            doomed.stdout.close()
    survivor = TaskStream(stub)
    survivor.subscribe([rpc], worker_id="survivor")
    retry = survivor.expect("task")
    assert (retry.step_id, retry.attempt) == (step.step_id, 2)
    row = step_row(db, step.step_id)
    assert row["worker_id"] == "survivor"
    assert row["running_time"] - row["scheduled_time"] >= timedelta(seconds=1), "the retry waited for its retry_delay"
    lost = history_of(stub, step.run_id, step.step_name)[0]
    assert "worker lost" in lost.error.message and "doomed" in lost.error.message

    survivor.fail(retry, "still broken")
    assert survivor.expect("accepted").status == pb.STEP_STATUS_FAILED, "retries exhausted"
    final = stub.GetStepState(pb.GetStepStateRequest(run_id=step.run_id, step_name=step.step_name)).step
    assert final.error.message == "still broken"
    assert [a.attempt for a in history_of(stub, step.run_id, step.step_name)] == [1, 2]
    survivor.cancel()


def test_a_worker_without_heartbeats_is_lost(stub, rpc) -> None:
    worker = TaskStream(stub)
    worker.subscribe([rpc], task_lease=timedelta(milliseconds=500))
    [step] = scheduled_steps(stub, rpc, 1, retries=1)
    worker.expect("task")
    assert "no heartbeat" in worker.expect_end(grpc.StatusCode.DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED")
    state = stub.GetStepState(pb.GetStepStateRequest(run_id=step.run_id, step_name=step.step_name)).step
    assert (state.status, state.attempt_count) == (pb.STEP_STATUS_SCHEDULED, 2)


def test_heartbeats_keep_a_long_task(stub, db, rpc) -> None:
    worker = TaskStream(stub)
    worker.subscribe([rpc], task_lease=timedelta(seconds=3))
    [step] = scheduled_steps(stub, rpc, 1)
    task = worker.expect("task")
    first_expiry = step_row(db, step.step_id)["task_expire_time"]
    # Heartbeat until the database shows the task lease moved past its first end, twice over.
    for _ in range(2):
        expiry = step_row(db, step.step_id)["task_expire_time"]
        worker.heartbeat()
        wait_in_database(db, "(SELECT task_expire_time FROM workflows_test.steps WHERE step_id = {}) > {}", (step.step_id, expiry))
    assert step_row(db, step.step_id)["task_expire_time"] > first_expiry
    worker.complete(task)
    assert worker.expect("accepted").status == pb.STEP_STATUS_SUCCEEDED
    worker.cancel()


def test_a_server_that_dies_loses_its_workers_tasks_to_the_sweeper_of_another(start_server, rpc) -> None:
    schema = f"t_{uuid.uuid4().hex[:10]}"
    doomed, survivor = start_server(schema=schema), start_server("--dispatch-poll-interval", "0.2", schema=schema)
    with grpc.insecure_channel(doomed.target) as doomed_channel, grpc.insecure_channel(survivor.target) as survivor_channel:
        doomed_stub = pb_grpc.WorkflowStateServiceStub(doomed_channel)
        survivor_stub = pb_grpc.WorkflowStateServiceStub(survivor_channel)
        worker = TaskStream(doomed_stub)
        worker.subscribe([rpc], task_lease=timedelta(seconds=2))
        [step] = scheduled_steps(survivor_stub, rpc, 1, retries=1)
        worker.expect("task")
        doomed.kill()
        other = TaskStream(survivor_stub)
        other.subscribe([rpc], worker_id="other")
        retry = other.expect("task")
        assert (retry.step_id, retry.attempt) == (step.step_id, 2)
        lost = history_of(survivor_stub, step.run_id, step.step_name)[0]
        assert lost.error.message.startswith("worker lost: no heartbeat")
        other.cancel()


def test_not_before_and_delay_hold_a_step_back(stub, db, rpc) -> None:
    worker = TaskStream(stub)
    worker.subscribe([rpc])
    run = new_run(stub)
    inserted = stub.InsertStepState(pb.InsertStepStateRequest(run_id=run.run_id, step_name="sleepy", rpc_name=rpc, data_json="{}")).step
    scheduled = stub.SetStepScheduled(pb.SetStepScheduledRequest(step_id=inserted.step_id, delay=duration(timedelta(milliseconds=800)))).step
    assert scheduled.HasField("not_before")
    task = worker.expect("task")
    assert task.step_id == inserted.step_id
    row = step_row(db, inserted.step_id)
    assert row["running_time"] >= scheduled.not_before.ToDatetime().replace(tzinfo=row["running_time"].tzinfo)
    assert row["running_time"] - row["scheduled_time"] >= timedelta(milliseconds=800)
    worker.cancel()


def test_drain_stops_new_tasks(stub, db, rpc) -> None:
    draining = TaskStream(stub)
    draining.subscribe([rpc])
    draining.drain()
    draining.expect("drained")
    [step] = scheduled_steps(stub, rpc, 1)
    other = TaskStream(stub)
    other.subscribe([rpc], worker_id="other")
    assert other.expect("task").step_id == step.step_id
    draining.close()
    assert draining.next() == grpc.StatusCode.OK, "nothing was pushed after drained"
    other.cancel()


# Bad input: protocol errors end the stream; a bad answer to one task is refused, the stream stays.


@pytest.mark.parametrize(
    ("subscribe", "message"),
    [
        (pb.StepTaskSubscribe(worker_id="", rpc_names=["x"], max_in_flight=1), "worker_id"),
        (pb.StepTaskSubscribe(worker_id="w", rpc_names=[], max_in_flight=1), "at least one"),
        (pb.StepTaskSubscribe(worker_id="w", rpc_names=[""], max_in_flight=1), "rpc_names"),
        (pb.StepTaskSubscribe(worker_id="w", rpc_names=["x"], max_in_flight=0), "max_in_flight"),
        (pb.StepTaskSubscribe(worker_id="w", rpc_names=["x"], max_in_flight=1001), "max_in_flight"),
        (pb.StepTaskSubscribe(worker_id="w", rpc_names=["x"], max_in_flight=1, task_lease=duration(timedelta(0))), "task_lease"),
        (pb.StepTaskSubscribe(worker_id="w", rpc_names=["x"], max_in_flight=1, task_lease=duration(timedelta(hours=1))), "task_lease"),
    ],
)
def test_bad_subscribe_is_invalid_argument(stub, subscribe, message) -> None:
    stream = TaskStream(stub)
    stream.send(pb.StreamStepTasksRequest(subscribe=subscribe))
    assert message in stream.expect_end(grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")


@pytest.mark.parametrize(
    ("request_", "code", "message"),
    [
        (pb.StreamStepTasksRequest(), grpc.StatusCode.INVALID_ARGUMENT, "must set one of"),
        (pb.StreamStepTasksRequest(credit=pb.StepTaskCredit(n=0)), grpc.StatusCode.INVALID_ARGUMENT, "credit.n"),
        (pb.StreamStepTasksRequest(subscribe=pb.StepTaskSubscribe(worker_id="w", rpc_names=["x"], max_in_flight=1)), grpc.StatusCode.FAILED_PRECONDITION, "already subscribed"),
    ],
)
def test_protocol_errors_end_the_stream(stub, request_, code, message) -> None:
    stream = TaskStream(stub)
    stream.subscribe([f"rpc-{uuid.uuid4().hex[:8]}"])
    stream.send(request_)
    assert message in stream.expect_end(code, code.name)


def test_a_message_before_subscribe_is_failed_precondition(stub) -> None:
    stream = TaskStream(stub)
    stream.heartbeat()
    assert "first message" in stream.expect_end(grpc.StatusCode.FAILED_PRECONDITION, "FAILED_PRECONDITION")


def test_bad_answers_are_refused_and_the_stream_goes_on(stub, rpc) -> None:
    worker = TaskStream(stub)
    worker.subscribe([rpc])
    [step] = scheduled_steps(stub, rpc, 1)
    task = worker.expect("task")
    bad = [
        (pb.StepTaskComplete(step_id="nope", attempt=1), REFUSED_INVALID, "step_id"),
        (pb.StepTaskComplete(step_id=task.step_id, attempt=0), REFUSED_INVALID, "attempt"),
        (pb.StepTaskComplete(step_id=task.step_id, attempt=1, result_json="{nope"), REFUSED_INVALID, "result_json"),
        (pb.StepTaskComplete(step_id=str(uuid.uuid4()), attempt=1), REFUSED_NOT_FOUND, "not found"),
    ]
    for complete, code, message in bad:
        worker.send(pb.StreamStepTasksRequest(complete=complete))
        refused = worker.expect("refused")
        assert refused.code == code and message in refused.message, refused
        assert refused.reason == ("MISSING" if code == REFUSED_NOT_FOUND else "INVALID_ARGUMENT"), refused
        if code == REFUSED_INVALID:
            assert refused.metadata["field"] == f"complete.{message}", refused
    worker.send(pb.StreamStepTasksRequest(fail=pb.StepTaskFail(step_id=task.step_id, attempt=1)))
    refused = worker.expect("refused")
    assert refused.code == REFUSED_INVALID and "fail.error is required" in refused.message
    assert (refused.reason, dict(refused.metadata)) == ("INVALID_ARGUMENT", {"field": "fail.error"}), refused
    worker.send(pb.StreamStepTasksRequest(ack=pb.StepTaskAck(step_id=task.step_id, attempt=7)))
    refused = worker.expect("refused")
    assert (refused.code, refused.reason) == (REFUSED_PRECONDITION, "NOT_HELD"), refused
    assert dict(refused.metadata) == {"step_id": task.step_id, "attempt": "7"}, refused
    assert "not in flight" in refused.message, refused
    # Nothing was written by any of them; the task is still the worker's, and its result counts.
    state = stub.GetStepState(pb.GetStepStateRequest(run_id=step.run_id, step_name=step.step_name)).step
    assert (state.status, state.attempt_count) == (pb.STEP_STATUS_RUNNING, 1)
    worker.send(pb.StreamStepTasksRequest(ack=pb.StepTaskAck(step_id=task.step_id, attempt=1)))
    worker.complete(task)
    assert worker.expect("accepted").status == pb.STEP_STATUS_SUCCEEDED, "a correct ack is not answered"
    worker.cancel()


def test_set_step_scheduled_refuses_bad_times(stub) -> None:
    step = new_step(stub, new_run(stub).run_id)
    both = pb.SetStepScheduledRequest(step_id=step.step_id, delay=duration(timedelta(seconds=1)))
    both.not_before.GetCurrentTime()
    negative = pb.SetStepScheduledRequest(step_id=step.step_id, delay=duration(timedelta(seconds=-1)))
    for request, message in [(both, "not both"), (negative, "must not be negative")]:
        code, details = status_of(stub.SetStepScheduled, request)
        assert code == grpc.StatusCode.INVALID_ARGUMENT and message in details
    state = stub.GetStepState(pb.GetStepStateRequest(run_id=step.run_id, step_name=step.step_name)).step
    assert state.status == pb.STEP_STATUS_PENDING, "nothing was written"


def test_a_reconnecting_worker_keeps_its_running_tasks_and_they_count_in_its_credit(start_server, rpc) -> None:
    schema = f"t_{uuid.uuid4().hex[:10]}"
    leaving, staying = start_server(schema=schema), start_server(schema=schema)
    with grpc.insecure_channel(leaving.target) as first_channel, grpc.insecure_channel(staying.target) as second_channel:
        first_stub = pb_grpc.WorkflowStateServiceStub(first_channel)
        second_stub = pb_grpc.WorkflowStateServiceStub(second_channel)
        first = TaskStream(first_stub)
        first.subscribe([rpc], max_in_flight=1, worker_id="mover")
        [held, waiting] = scheduled_steps(second_stub, rpc, 2)
        task = first.expect("task")
        assert task.step_id == held.step_id
        assert leaving.stop() == 0  # graceful: the task stays the worker's
        first.expect_end(grpc.StatusCode.UNAVAILABLE, "SHUTTING_DOWN")

        # On the other server the worker names what it holds; a task that is not running is left out.
        second = TaskStream(second_stub)
        subscribe = pb.StepTaskSubscribe(
            worker_id="mover", rpc_names=[rpc], max_in_flight=2,
            running=[pb.StepTaskAck(step_id=task.step_id, attempt=1), pb.StepTaskAck(step_id=waiting.step_id, attempt=1)],
        )  # fmt: skip
        second.send(pb.StreamStepTasksRequest(subscribe=subscribe))
        subscribed = second.expect("subscribed")
        assert [(a.step_id, a.attempt) for a in subscribed.adopted] == [(task.step_id, 1)]
        # One slot of two is the adopted task's: the other step comes, then nothing more.
        assert second.expect("task").step_id == waiting.step_id
        [third] = scheduled_steps(second_stub, rpc, 1)
        second.complete(task)
        assert second.expect("accepted").status == pb.STEP_STATUS_SUCCEEDED
        second.credit(1)
        assert second.expect("task").step_id == third.step_id
        second.cancel()


def test_running_tasks_beyond_max_in_flight_are_refused(stub) -> None:
    stream = TaskStream(stub)
    running = [pb.StepTaskAck(step_id=str(uuid.uuid4()), attempt=1) for _ in range(3)]
    stream.send(pb.StreamStepTasksRequest(subscribe=pb.StepTaskSubscribe(worker_id="w", rpc_names=["x"], max_in_flight=2, running=running)))
    assert "more than max_in_flight" in stream.expect_end(grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
