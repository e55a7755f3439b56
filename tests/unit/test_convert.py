"""Protobuf conversion (server/rpc/convert.py): every stored status has one wire value and back, bad
wire values are InvalidArgument (never a crash), and rows become the messages the contract describes."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import cast

import pytest
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from workflowstate.server.core.errors import InvalidArgument
from workflowstate.server.rpc import convert
from workflowstate.server.state.rows import StepOptionColumns, StepRecord
from workflowstate.server.state.transitions import RunStatus, StepStatus
from workflowstate import v1 as pb

NOW = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=timezone.utc)


def test_every_stored_status_has_one_wire_value_and_back() -> None:
    for statuses, to_proto, from_proto in (
        (RunStatus, convert.RUN_STATUS_TO_PROTO, convert.run_status_from_proto),
        (StepStatus, convert.STEP_STATUS_TO_PROTO, convert.step_status_from_proto),
    ):
        assert set(to_proto) == set(statuses)
        assert len(set(to_proto.values())) == len(to_proto), "no two statuses share a wire value"
        for status in statuses:
            assert from_proto("status", to_proto[status]) is status


@pytest.mark.parametrize("number", [0, 99, -1], ids=["unspecified", "unknown", "negative"])
def test_a_status_outside_the_contract_is_refused_naming_the_field_and_the_choices(number: int) -> None:
    with pytest.raises(InvalidArgument, match=r"status must be one of RUN_STATUS_RUNNING, .*got ") as refused:
        convert.run_status_from_proto("status", number)
    assert ("RUN_STATUS_UNSPECIFIED" in str(refused.value)) == (number == 0)
    with pytest.raises(InvalidArgument, match=r"filter.status must be one of STEP_STATUS_PENDING, "):
        convert.step_status_from_proto("filter.status", number)


def test_a_valid_duration_converts_exactly() -> None:
    assert convert.duration_from_proto("ttl", Duration(seconds=3, nanos=500_000_000)) == timedelta(seconds=3.5)
    assert convert.duration_from_proto("ttl", Duration(seconds=-2, nanos=-1000)) == -timedelta(seconds=2, microseconds=1)


@pytest.mark.parametrize(
    "message",
    [
        Duration(seconds=1, nanos=-1),
        Duration(seconds=-1, nanos=1),
        Duration(nanos=1_000_000_000),
        Duration(seconds=315_576_000_001),
    ],
    ids=["mixed-sign", "mixed-sign-negative", "nanos-overflow", "beyond-10000-years"],
)
def test_a_duration_outside_protobuf_s_rules_is_refused(message: Duration) -> None:
    with pytest.raises(InvalidArgument, match="ttl is not a valid duration"):
        convert.duration_from_proto("ttl", message)


@pytest.mark.parametrize(
    "moment",
    [
        NOW,
        datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc),
        datetime(1, 1, 1, tzinfo=timezone.utc),
        datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone.utc),
    ],
    ids=["now", "before-epoch", "earliest", "latest"],
)
def test_the_fast_timestamp_equals_protobuf_s_own_and_round_trips(moment: datetime) -> None:
    reference = Timestamp()
    reference.FromDatetime(moment)
    assert convert.timestamp(moment) == reference
    assert convert.timestamp_from_proto("not_before", convert.timestamp(moment)) == moment


@pytest.mark.parametrize(
    "message",
    [Timestamp(seconds=253_402_300_800), Timestamp(seconds=-62_135_596_801), Timestamp(nanos=-1), Timestamp(nanos=1_000_000_000)],
    ids=["after-9999", "before-year-1", "negative-nanos", "nanos-overflow"],
)
def test_a_timestamp_outside_protobuf_s_range_is_refused(message: Timestamp) -> None:
    with pytest.raises(InvalidArgument, match="not_before is not a valid timestamp"):
        convert.timestamp_from_proto("not_before", message)


def step_row(**changes: object) -> StepRecord:
    row: StepRecord = {
        "step_id": uuid.uuid4(), "run_id": uuid.uuid4(), "step_name": "charge", "rpc_name": "pay", "data": '{"a": 1}',
        "status": "running", "result": None, "error": None, "attempt_count": 2, "retries": 3, "retry_delay": None,
        "create_time": NOW, "update_time": NOW, "not_before": None, "worker_id": None,
        "scheduled_time": NOW, "running_time": NOW, "succeeded_time": None, "failed_time": None,
        "from_step_name": None, "child_run_id": None, "branch_key": None, "fencing_token": None,
        "task_stream_id": None, "task_expire_time": None, "task_timeout_time": None, "start_timeout_time": None,
        "backoff_coefficient": None, "max_retry_delay": None, "jitter": None, "start_to_close": None,
        "schedule_to_start": None, "priority": 0, "concurrency_key": None,
    }  # fmt: skip
    return cast(StepRecord, row | changes)


def test_a_step_s_unset_times_and_options_stay_unset_on_the_wire() -> None:
    step = convert.step_to_proto(step_row())
    assert step.HasField("scheduled_time") and step.HasField("running_time")
    for field in ("succeeded_time", "failed_time", "not_before", "retry_delay", "result_json", "error"):
        assert not step.HasField(field), field
    assert (step.status, step.attempt_count, step.worker_id) == (pb.STEP_STATUS_RUNNING, 2, "")
    delayed = convert.step_to_proto(step_row(retry_delay=timedelta(seconds=1.5), worker_id="w1", result="null"))
    assert delayed.retry_delay.ToTimedelta() == timedelta(seconds=1.5) and delayed.worker_id == "w1"
    assert delayed.HasField("result_json") and delayed.result_json == "null", "a stored JSON null is a set result"
    assert (step.from_step_name, step.child_run_id, step.branch_key) == ("", "", "")
    child = uuid.uuid4()
    linked = convert.step_to_proto(step_row(from_step_name="start", child_run_id=child, branch_key="yes"))
    assert (linked.from_step_name, linked.child_run_id, linked.branch_key) == ("start", str(child), "yes")


def test_a_row_lacking_an_option_column_is_not_taken_for_a_step_without_options() -> None:
    # A step row's type says it carries its options: a row lacking one is another shape, not a step whose options are unset.
    assert "priority" in StepOptionColumns.__required_keys__
    partial = {key: value for key, value in step_row().items() if key != "priority"}
    with pytest.raises(KeyError, match="priority"):
        convert.step_to_proto(cast(StepRecord, partial))


def test_a_stored_error_becomes_a_failure_whatever_wrote_it() -> None:
    ours = convert.step_to_proto(step_row(error='{"message": "boom", "stack": "s", "code": "E"}')).error
    assert (ours.message, ours.stack, ours.code) == ("boom", "s", "E")
    foreign = convert.step_to_proto(step_row(error='"plain text"')).error
    assert (foreign.message, foreign.code) == ("plain text", "")
    partial = convert.step_to_proto(step_row(error='{"code": 7}')).error
    assert (partial.message, partial.code) == ("", "7")


def test_a_claimed_row_becomes_a_task_at_its_current_attempt() -> None:
    row = step_row(attempt_count=4, task_expire_time=NOW + timedelta(seconds=30))
    task = convert.task_to_proto(row)
    assert (task.step_id, task.run_id, task.attempt, task.data_json) == (str(row["step_id"]), str(row["run_id"]), 4, '{"a": 1}')
    assert task.deadline.ToDatetime(tzinfo=timezone.utc) == NOW + timedelta(seconds=30)


def test_an_event_is_a_run_change_or_a_step_change_never_both() -> None:
    base = {"event_id": 5, "run_id": uuid.uuid4(), "workflow": "wf", "event_time": NOW, "step_name": None, "attempt": None}
    run_event = convert.event_to_proto(base | {"step_id": None, "status": "completed"})
    assert run_event.WhichOneof("change") == "run_changed" and run_event.run_changed.status == pb.RUN_STATUS_COMPLETED
    step_id = uuid.uuid4()
    step_event = convert.event_to_proto(base | {"step_id": step_id, "step_name": "s", "attempt": 2, "status": "failed"})
    assert step_event.WhichOneof("change") == "step_changed"
    changed = step_event.step_changed
    assert (changed.step_id, changed.attempt, changed.status) == (str(step_id), 2, pb.STEP_STATUS_FAILED)


def test_a_free_lease_row_shows_no_holder() -> None:
    info = convert.lease_to_proto({"key": "k", "holder": None, "fencing_token": 9, "acquire_time": NOW, "expire_time": NOW})
    assert (info.key, info.holder, info.fencing_token) == ("k", "", 9)
