"""Request checks (server/rpc/validation.py): what they refuse, with a message naming the field, and
what they let through unchanged. A payload that passes must be one PostgreSQL's jsonb stores as sent."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from workflowstate.server.core.errors import InvalidArgument
from workflowstate.server.rpc import validation
from workflowstate.server.rpc.step_options import options_from_proto
from workflowstate import v1 as pb

LIMIT = 64


def test_uuid_in_any_form_python_reads_gives_the_same_value() -> None:
    value = uuid.uuid4()
    for text in (str(value), str(value).upper(), value.hex, f"{{{value}}}", value.urn):
        assert validation.parse_uuid("step_id", text) == value


@pytest.mark.parametrize(("text", "message"), [("", "step_id is required"), ("not-a-uuid", "step_id is not a valid UUID")])
def test_a_missing_or_malformed_uuid_is_refused_naming_the_field(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        validation.parse_uuid("step_id", text)


def test_a_malformed_uuid_is_quoted_at_most_64_characters() -> None:
    with pytest.raises(InvalidArgument) as refused:
        validation.parse_uuid("run_id", "x" * 10_000)
    assert len(str(refused.value)) < 200


def test_a_name_up_to_the_limit_passes_unchanged_and_one_over_is_refused() -> None:
    assert validation.check_name("workflow", "é" * 256) == "é" * 256
    with pytest.raises(InvalidArgument, match="workflow is 257 characters long; the limit is 256"):
        validation.check_name("workflow", "a" * 257)


def test_an_empty_name_is_refused_only_when_required() -> None:
    with pytest.raises(InvalidArgument, match="holder is required"):
        validation.check_name("holder", "")
    assert validation.check_name("holder", "", required=False) == ""


def test_a_name_with_nul_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="step_name must not contain the NUL character"):
        validation.check_name("step_name", "a\x00b")


def test_empty_json_text_stands_for_null_and_valid_text_is_stored_as_sent() -> None:
    assert validation.check_json("input_json", "", max_bytes=LIMIT) == "null"
    text = '{"b": [1, 2.5, "\\u00e9"], "a": null}'
    assert validation.check_json("input_json", text, max_bytes=LIMIT) is text


@pytest.mark.parametrize(
    "text",
    ["{", "NaN", "[Infinity]", "-Infinity", '{"a": 1} x', '"\\u0000"', '{"\\u0000": 1}', '["\\ud800"]', "[" * 100_000],
    ids=["truncated", "nan", "infinity", "minus-infinity", "trailing", "nul-escape", "nul-key", "lone-surrogate", "too-deep"],
)
def test_json_jsonb_would_refuse_or_change_is_refused(text: str) -> None:
    with pytest.raises(InvalidArgument, match="result_json is not valid JSON"):
        validation.check_json("result_json", text, max_bytes=1_000_000)


def test_the_json_size_limit_counts_bytes_not_characters() -> None:
    fits = '"' + "a" * (LIMIT - 2) + '"'
    assert validation.check_json("data_json", fits, max_bytes=LIMIT) == fits
    with pytest.raises(InvalidArgument, match=f"data_json is larger than the limit of {LIMIT} bytes"):
        validation.check_json("data_json", '"' + "a" * (LIMIT - 1) + '"', max_bytes=LIMIT)
    # 23 characters, 65 bytes: under the limit in characters, over it in bytes.
    with pytest.raises(InvalidArgument, match="larger than the limit"):
        validation.check_json("data_json", '"' + "€" * 21 + '"', max_bytes=LIMIT)


def test_a_failure_needs_a_message_and_no_nul_in_any_part() -> None:
    validation.check_failure("error", "boom", "trace", "E1", max_bytes=LIMIT)
    with pytest.raises(InvalidArgument, match="error.message is required"):
        validation.check_failure("error", "", "trace", "E1", max_bytes=LIMIT)
    for part, args in (("message", ("a\x00", "", "")), ("stack", ("a", "\x00", "")), ("code", ("a", "", "\x00"))):
        with pytest.raises(InvalidArgument, match=f"error.{part} must not contain the NUL character"):
            validation.check_failure("error", *args, max_bytes=LIMIT)


def test_a_failure_counts_all_its_parts_against_the_limit() -> None:
    third = "x" * (LIMIT // 3)
    validation.check_failure("error", third, third, third, max_bytes=LIMIT)
    with pytest.raises(InvalidArgument, match=f"error is larger than the limit of {LIMIT} bytes"):
        validation.check_failure("error", third, third, third + "€", max_bytes=LIMIT)


def test_negative_counts_and_durations_are_refused_and_zero_or_unset_passes() -> None:
    assert options_from_proto(pb.StepOptions()).retries is None and options_from_proto(pb.StepOptions(retries=0)).retries == 0
    assert validation.check_duration("options.retry_delay", None) is None
    assert validation.check_duration("options.retry_delay", timedelta(0)) == timedelta(0)
    assert validation.check_event_id("after_event_id", 0) == 0
    with pytest.raises(InvalidArgument, match="options.retries must not be negative, got -1"):
        options_from_proto(pb.StepOptions(retries=-1))
    with pytest.raises(InvalidArgument, match="options.retry_delay must not be negative"):
        validation.check_duration("options.retry_delay", timedelta(microseconds=-1))
    with pytest.raises(InvalidArgument, match="after_event_id must not be negative, got -5"):
        validation.check_event_id("after_event_id", -5)
