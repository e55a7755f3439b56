"""JSON Python cannot decode, as the client reads it: an UndecodableJson in the value's place, never an
exception out of a whole call; a worker fails such a task for good without running its handler."""

from __future__ import annotations

from datetime import timedelta

from workflowstate.client import UndecodableJson
from workflowstate.client._convert import decode_json, decode_json_entries
from workflowstate.client._worker_protocol import WorkerProtocol, WorkerSettings
from workflowstate import v1 as pb

BIG = "1" + "0" * 5000  # past Python's 4300-digit limit of int()


def test_a_value_python_cannot_decode_is_marked_naming_the_field() -> None:
    value = decode_json(f'{{"x": {BIG}}}', "Run.input")
    assert isinstance(value, UndecodableJson)
    assert (value.field, value.text) == ("Run.input", f'{{"x": {BIG}}}')
    assert "4300" in value.reason and str(value).startswith("Run.input cannot be decoded: ")
    deep = decode_json("[" * 100_000 + "]" * 100_000, "StepState.result")
    assert isinstance(deep, UndecodableJson) and deep.field == "StepState.result"
    assert decode_json('{"x": 1}', "Run.input") == {"x": 1}


def test_only_the_state_variables_that_cannot_be_decoded_are_marked() -> None:
    state = decode_json_entries(f'{{"big": [{BIG}, "a"], "small": {{"n": 2.50, "s": "\\u00e9\\n"}}}}', "run state")
    assert state["small"] == {"n": 2.5, "s": "é\n"}
    big = state["big"]
    assert isinstance(big, UndecodableJson)
    assert (big.field, big.text) == ("run state 'big'", f'[{BIG}, "a"]')


def test_a_task_with_undecodable_data_is_failed_for_good_and_the_others_run() -> None:
    protocol = WorkerProtocol(WorkerSettings(worker_id="w", rpc_names=("rpc",), max_in_flight=2, task_lease=timedelta(seconds=3)))
    protocol.connect()
    response = pb.StreamStepTasksResponse()
    for step_id, data in (("bad", f'{{"x": {BIG}}}'), ("good", "{}")):
        task = response.tasks.tasks.add(step_id=step_id, run_id="r", step_name=step_id, rpc_name="rpc", data_json=data, attempt=1)
        task.deadline.seconds = 1_700_000_000
    tasks, messages = protocol.on_response(response)
    assert [task.step_id for task in tasks] == ["good"]
    [fail] = messages
    assert fail.WhichOneof("kind") == "fail" and fail.fail.step_id == "bad" and not fail.fail.retryable
    assert "StepTask.data cannot be decoded" in fail.fail.error.message and "4300" in fail.fail.error.message
    # Its answer gives its slot back, as any report's does.
    accepted = pb.StreamStepTasksResponse(accepted=pb.StepTaskAccepted(step_id="bad", attempt=1, status=pb.STEP_STATUS_FAILED))
    assert protocol.on_response(accepted) == ([], [pb.StreamStepTasksRequest(credit=pb.StepTaskCredit(n=1))])
    assert protocol.running == 1
