"""The worker's I/O-free StreamStepTasks protocol (client/_worker_protocol.py), driven by hand on a fake clock.

Each test plays the server: it hands the protocol tasks and answers, and checks the messages the
protocol wants sent, above all the credit it gives back.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import grpc
import pytest

from workflowstate.client._worker_protocol import (
    HEARTBEATS_PER_LEASE,
    MAX_UPDATES,
    MAX_UPDATES_BYTES,
    RESEND_AFTER,
    NonRetryableError,
    WorkerProtocol,
    WorkerSettings,
    merge_requests,
)
from workflowstate import v1 as pb

LEASE = 3.0
Request = pb.StreamStepTasksRequest


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def settings(max_in_flight: int = 2) -> WorkerSettings:
    return WorkerSettings(worker_id="w", rpc_names=("rpc",), max_in_flight=max_in_flight, task_lease=timedelta(seconds=LEASE))


def task(step_id: str, attempt: int = 1) -> pb.StreamStepTasksResponse:
    response = pb.StreamStepTasksResponse()
    response.task.step_id = step_id
    response.task.run_id = "r"
    response.task.step_name = step_id
    response.task.rpc_name = "rpc"
    response.task.data_json = "{}"
    response.task.attempt = attempt
    response.task.deadline.seconds = 1_700_000_000
    return response


def accepted(step_id: str, attempt: int = 1) -> pb.StreamStepTasksResponse:
    return pb.StreamStepTasksResponse(
        accepted=pb.StepTaskAccepted(step_id=step_id, attempt=attempt, status=pb.STEP_STATUS_SUCCEEDED)
    )


def refused(step_id: str, code: grpc.StatusCode, attempt: int = 1, reason: str = "") -> pb.StreamStepTasksResponse:
    return pb.StreamStepTasksResponse(
        refused=pb.StepTaskRefused(step_id=step_id, attempt=attempt, code=code.value[0], message="no", reason=reason)
    )


def kinds(messages: list[Request]) -> list[str | None]:
    return [message.WhichOneof("kind") for message in messages]


def credit_in(messages: list[Request]) -> int:
    return sum(message.credit.n for message in messages if message.WhichOneof("kind") == "credit")


def connected(clock: Clock | None = None, max_in_flight: int = 2) -> WorkerProtocol:
    protocol = WorkerProtocol(settings(max_in_flight), clock=clock or Clock())
    protocol.connect()
    return protocol


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"rpc_names": ()}, "at least one handler"),
        ({"max_in_flight": 0}, "max_in_flight"),
        ({"max_in_flight": 1001}, "max_in_flight"),
        ({"task_lease": timedelta(0)}, "task_lease"),
    ],
)
def test_settings_the_server_would_refuse_are_refused_before_any_stream(changes: dict, message: str) -> None:
    fields = {"worker_id": "w", "rpc_names": ("rpc",), "max_in_flight": 2, "task_lease": timedelta(seconds=1)} | changes
    with pytest.raises(ValueError, match=message):
        WorkerSettings(**fields)


def test_credit_is_given_back_on_the_answer_not_with_the_report() -> None:
    protocol = connected()
    [got], messages = protocol.on_response(task("a"))
    assert got is not None and messages == []
    report = protocol.succeeded(got, {"ok": True})
    assert kinds(report) == ["complete"] and credit_in(report) == 0
    _, after_answer = protocol.on_response(accepted("a"))
    assert credit_in(after_answer) == 1


def test_credit_never_exceeds_the_tasks_answered_on_this_stream() -> None:
    """The server ends a stream whose credit plus tasks in flight passes max_in_flight."""
    protocol = connected(max_in_flight=2)
    tasks = [protocol.on_response(task(name))[0][0] for name in ("a", "b")]
    given = 0
    for handed in tasks:
        assert handed is not None
        protocol.succeeded(handed, 1)
    given += credit_in(protocol.on_response(accepted("a"))[1])
    given += credit_in(protocol.on_response(accepted("a"))[1])  # a repeated answer
    given += credit_in(protocol.on_response(accepted("z"))[1])  # an answer for a task never handed out here
    given += credit_in(protocol.on_response(accepted("b"))[1])
    assert given == 2


def test_a_task_from_an_earlier_stream_gives_no_credit_unless_adopted() -> None:
    protocol = connected()
    [handed], _ = protocol.on_response(task("old"))
    assert handed is not None
    protocol.disconnected()
    protocol.succeeded(handed, 1)
    protocol.connect()
    assert credit_in(protocol.on_response(accepted("old"))[1]) == 0, "the new stream never counted it in flight"

    adopting = connected()
    [running], _ = adopting.on_response(task("kept"))
    adopting.disconnected()
    adopting.connect()
    adopted = pb.StreamStepTasksResponse()
    adopted.subscribed.adopted.add(step_id="kept", attempt=1)
    adopting.on_response(adopted)
    assert running is not None
    adopting.succeeded(running, 1)
    assert credit_in(adopting.on_response(accepted("kept"))[1]) == 1, "an adopted task counts in flight on the new stream"


def test_an_invalid_report_keeps_its_slot_and_becomes_a_smaller_fail_once() -> None:
    protocol = connected()
    [handed], _ = protocol.on_response(task("a"))
    assert handed is not None
    protocol.succeeded(handed, "x" * 10)
    retry = protocol.on_response(refused("a", grpc.StatusCode.INVALID_ARGUMENT))[1]
    assert kinds(retry) == ["fail"] and credit_in(retry) == 0, "the task is still in flight on the server"
    assert retry[0].fail.error.code == "RESULT_REFUSED" and not retry[0].fail.retryable
    assert protocol.on_response(refused("a", grpc.StatusCode.INVALID_ARGUMENT))[1] == [], "the smaller fail is not reduced again"


@pytest.mark.parametrize("code", [grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.NOT_FOUND])
def test_a_report_refused_as_over_is_dropped_and_frees_its_slot(code: grpc.StatusCode) -> None:
    clock = Clock()
    protocol = connected(clock)
    [handed], _ = protocol.on_response(task("a"))
    assert handed is not None
    protocol.succeeded(handed, 1)
    assert credit_in(protocol.on_response(refused("a", code))[1]) == 1
    clock.now += 10 * RESEND_AFTER
    assert "complete" not in kinds(protocol.tick()), "never sent again"
    protocol.disconnected()
    assert kinds(protocol.connect()) == ["subscribe"], "not kept for the next stream"


def test_a_refused_report_is_logged_with_its_reason(caplog: pytest.LogCaptureFixture) -> None:
    protocol = connected(Clock())
    [handed], _ = protocol.on_response(task("a"))
    assert handed is not None
    protocol.succeeded(handed, 1)
    with caplog.at_level(logging.WARNING, logger="workflowstate.client.worker"):
        protocol.on_response(refused("a", grpc.StatusCode.FAILED_PRECONDITION, reason="NOT_HELD"))
    assert [record.getMessage() for record in caplog.records] == ["the report of step a attempt 1 was refused: NOT_HELD: no"]


def test_a_report_the_server_could_not_store_is_sent_again_after_a_pause() -> None:
    clock = Clock()
    protocol = connected(clock)
    [handed], _ = protocol.on_response(task("a"))
    assert handed is not None
    [complete] = protocol.succeeded(handed, 1)
    assert protocol.on_response(refused("a", grpc.StatusCode.UNAVAILABLE))[1] == []
    wait = protocol.seconds_to_next_tick()
    assert wait is not None and wait <= RESEND_AFTER
    clock.now += RESEND_AFTER
    assert complete in protocol.tick()
    assert complete not in protocol.tick(), "sent once per refusal"


def test_a_heartbeat_is_due_well_before_the_task_lease() -> None:
    clock = Clock()
    protocol = connected(clock)
    wait = protocol.seconds_to_next_tick()
    assert wait == pytest.approx(LEASE / HEARTBEATS_PER_LEASE) and wait < LEASE
    assert "heartbeat" not in kinds(protocol.tick())
    clock.now += wait
    assert kinds(protocol.tick()) == ["heartbeat"]
    # The server may grant a shorter task lease than asked: heartbeats follow it.
    subscribed = pb.StreamStepTasksResponse()
    subscribed.subscribed.task_lease.FromTimedelta(timedelta(seconds=0.3))
    protocol.on_response(subscribed)
    wait = protocol.seconds_to_next_tick()
    assert wait is not None and wait <= 0.1 + 1e-9


def test_a_new_stream_names_its_held_tasks_and_resends_unanswered_reports() -> None:
    protocol = connected()
    [first], _ = protocol.on_response(task("done-offline"))
    [second], _ = protocol.on_response(task("still-running"))
    assert first is not None and second is not None
    protocol.disconnected()
    assert protocol.succeeded(first, 1) == [], "nothing is sent without a stream"
    messages = protocol.connect()
    assert kinds(messages) == ["subscribe", "complete"]
    held = {(ack.step_id, ack.attempt) for ack in messages[0].subscribe.running}
    assert held == {("done-offline", 1), ("still-running", 1)}
    assert messages[1].complete.step_id == "done-offline"


def test_a_subscribe_names_at_most_max_in_flight_held_tasks() -> None:
    held = [(f"s{i}", 1) for i in range(5)]
    assert len(settings(max_in_flight=2).subscribe_request(held).subscribe.running) == 2


def test_a_result_json_cannot_hold_fails_the_attempt_instead() -> None:
    protocol = connected()
    [handed], _ = protocol.on_response(task("a"))
    assert handed is not None
    [report] = protocol.succeeded(handed, float("nan"))
    assert report.WhichOneof("kind") == "fail" and report.fail.retryable


def test_only_non_retryable_error_fails_for_good() -> None:
    protocol = connected()
    [first], _ = protocol.on_response(task("a"))
    [second], _ = protocol.on_response(task("b"))
    assert first is not None and second is not None
    [retryable] = protocol.failed(first, TimeoutError("slow"))
    [final] = protocol.failed(second, NonRetryableError("bad input"))
    assert retryable.fail.retryable and not final.fail.retryable
    assert retryable.fail.error.message == "slow" and retryable.fail.error.code == "TimeoutError"


def test_a_stopping_worker_drains_once_asks_no_credit_and_is_done_only_when_all_is_answered() -> None:
    protocol = connected()
    [handed], _ = protocol.on_response(task("a"))
    assert handed is not None
    assert kinds(protocol.stop()) == ["drain"]
    assert protocol.stop() == []
    assert not protocol.done, "a handler still runs"
    protocol.succeeded(handed, 1)
    protocol.on_response(pb.StreamStepTasksResponse(drained=pb.StepTaskDrained()))
    assert not protocol.done, "its report is unanswered"
    assert credit_in(protocol.on_response(accepted("a"))[1]) == 0
    assert protocol.done


def test_a_stopping_worker_without_a_stream_is_done_once_its_handlers_finish() -> None:
    protocol = connected()
    [handed], _ = protocol.on_response(task("a"))
    assert handed is not None
    protocol.disconnected()
    assert protocol.stop() == [], "no stream to drain"
    assert not protocol.done
    protocol.succeeded(handed, 1)
    assert protocol.done


def complete_request(step_id: str, size: int = 0) -> Request:
    return Request(complete=pb.StepTaskComplete(step_id=step_id, attempt=1, result_json='"' + "x" * size + '"'))


def test_a_worker_subscribes_with_bulk_and_merges_only_once_the_server_takes_updates() -> None:
    protocol = WorkerProtocol(settings())
    [subscribe] = protocol.connect()
    assert subscribe.subscribe.bulk
    assert not protocol.server_bulk, "an old server's subscribed says nothing of bulk"
    protocol.on_response(pb.StreamStepTasksResponse(subscribed=pb.StepTaskSubscribed(bulk=True)))
    assert protocol.server_bulk
    protocol.disconnected()
    assert not protocol.server_bulk, "the next stream's server may be another"


def test_the_tasks_of_one_message_all_run() -> None:
    protocol = connected(max_in_flight=3)
    batch = pb.StreamStepTasksResponse(tasks=pb.StepTaskBatch(tasks=[task(name).task for name in ("a", "b", "c")]))
    got, messages = protocol.on_response(batch)
    assert [t.step_id for t in got] == ["a", "b", "c"] and messages == []
    assert protocol.running == 3


def test_outcomes_give_back_the_credit_of_all_they_answer_in_one_message() -> None:
    protocol = connected(max_in_flight=4)
    handed = [protocol.on_response(task(name))[0][0] for name in ("a", "b", "c", "d")]
    for one in handed:
        protocol.succeeded(one, 1)
    outcomes = pb.StreamStepTasksResponse(
        outcomes=pb.StepTaskOutcomes(
            outcomes=[
                pb.StepTaskOutcome(accepted=accepted("a").accepted),
                pb.StepTaskOutcome(refused=refused("b", grpc.StatusCode.FAILED_PRECONDITION).refused),
                pb.StepTaskOutcome(refused=refused("c", grpc.StatusCode.INVALID_ARGUMENT).refused),
                pb.StepTaskOutcome(accepted=accepted("z").accepted),  # never handed out here
            ]
        )
    )
    _, messages = protocol.on_response(outcomes)
    assert kinds(messages) == ["fail", "credit"], "c becomes a smaller fail and keeps its slot"
    assert credit_in(messages) == 2


def test_reports_queued_together_go_in_one_updates_message_in_order() -> None:
    heartbeat = Request(heartbeat=pb.StepTaskHeartbeat())
    queued = [complete_request("a"), complete_request("b"), heartbeat, complete_request("c"), complete_request("d")]
    merged = merge_requests(queued, bulk=True)
    assert kinds(merged) == ["updates", "heartbeat", "updates"]
    assert [u.complete.step_id for u in merged[0].updates.updates] == ["a", "b"]
    assert [u.complete.step_id for u in merged[2].updates.updates] == ["c", "d"]
    assert merge_requests(queued, bulk=False) == queued, "a server without updates gets them one by one"
    assert merge_requests([complete_request("a")], bulk=True) == [complete_request("a")], "a lone report is sent as it is"


def test_consecutive_credits_are_summed() -> None:
    credit = Request(credit=pb.StepTaskCredit(n=1))
    merged = merge_requests([credit, credit, complete_request("a"), credit], bulk=True)
    assert kinds(merged) == ["credit", "complete", "credit"] and credit_in(merged[:1]) == 2


def test_an_updates_message_stays_within_the_server_s_limits() -> None:
    many = merge_requests([complete_request(str(i)) for i in range(MAX_UPDATES + 1)], bulk=True)
    assert [len(m.updates.updates) for m in many[:1]] == [MAX_UPDATES] and kinds(many[1:]) == ["complete"]
    big = MAX_UPDATES_BYTES // 3
    large = merge_requests([complete_request(str(i), big) for i in range(4)], bulk=True)
    assert [len(m.updates.updates) for m in large] == [2, 2]
    assert all(m.ByteSize() <= MAX_UPDATES_BYTES + 100 for m in large)
