"""One item at the payload limit always fits in the reply bound's least value (max_item_bytes).

The bound must hold one run, step or task, or a page could not move on and a write's reply could
pass it. The largest each can be: every payload field at the limit as PostgreSQL renders it back
(a space after each ',', so `[0,0]` comes back as `[0, 0]`), every name at its longest in 4-byte
characters, 1000 planned steps.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from workflowstate.server.rpc.runs import MAX_PLANNED_STEPS
from workflowstate.server.rpc.reply_bounds import item_bytes, max_item_bytes
from workflowstate.server.rpc.validation import MAX_NAME_LENGTH
from workflowstate import v1 as pb

NAME = "\U0001f600" * MAX_NAME_LENGTH  # 4 bytes of UTF-8 each
UUID = "00000000-0000-0000-0000-000000000000"
NOW = Timestamp(seconds=4_000_000_000, nanos=999_999_999)


def rendered_json(limit: int) -> str:
    """JSON of `limit` bytes as sent (`[0,0,…]`), as PostgreSQL gives it back (`[0, 0, …]`)."""
    return "[" + ", ".join(["0"] * ((limit - 1) // 2)) + "]"


def failure(limit: int) -> pb.Failure:
    return pb.Failure(message="m" * (limit - 2), stack="s", code="c")


def largest_run(limit: int) -> pb.Run:
    return pb.Run(
        run_id=UUID,
        workflow=NAME,
        status=pb.RUN_STATUS_FAILED,
        input_json=rendered_json(limit),
        output_json=rendered_json(limit),
        error=failure(limit),
        create_time=NOW,
        update_time=NOW,
        inline=True,
        graph_hash=NAME,
        metadata_json=rendered_json(limit),
        deterministic=True,
        planned_steps=[pb.PlannedStep(step_name=NAME, display_name=NAME)] * MAX_PLANNED_STEPS,
        schedule_id="s" * 128,
        schedule_time=NOW,
    )


def largest_step(limit: int) -> pb.StepState:
    return pb.StepState(
        step_id=UUID,
        run_id=UUID,
        step_name=NAME,
        rpc_name=NAME,
        data_json=rendered_json(limit),
        status=pb.STEP_STATUS_FAILED,
        result_json=rendered_json(limit),
        error=failure(limit),
        attempt_count=2**31 - 1,
        create_time=NOW,
        update_time=NOW,
        scheduled_time=NOW,
        running_time=NOW,
        succeeded_time=NOW,
        failed_time=NOW,
        not_before=NOW,
        worker_id=NAME,
        from_step_name=NAME,
        child_run_id=UUID,
        branch_key=NAME,
        options=pb.StepOptions(concurrency_key=NAME, retries=2**31 - 1, priority=2**31 - 1),
    )


def largest_task(limit: int) -> pb.StreamStepTasksResponse:
    task = pb.StepTask(step_id=UUID, run_id=UUID, step_name=NAME, rpc_name=NAME, data_json=rendered_json(limit), attempt=2**31 - 1, deadline=NOW)
    return pb.StreamStepTasksResponse(tasks=pb.StepTaskBatch(tasks=[task]))


@pytest.mark.parametrize("limit", [1024, 64 * 1024, 1024 * 1024, 16 * 1024 * 1024])
@pytest.mark.parametrize("largest", [largest_run, largest_step, largest_task])
def test_one_item_at_the_payload_limit_fits_in_the_least_reply_bound(limit: int, largest: Callable[[int], Message]) -> None:
    assert item_bytes(largest(limit)) <= max_item_bytes(limit)
