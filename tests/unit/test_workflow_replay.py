"""The pure parts of workflowstate.workflows: a replay's history by step name, the retry policy, the registry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from workflowstate.client import Failure, StepAttempt, StepState, StepStatus
from workflowstate.workflows import ATTEMPT_LOST, RetryPolicy, Workflow, workflow
from workflowstate.workflows._definition import Registry
from workflowstate.workflows._history import History

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def step(name: str, status: StepStatus, attempt: int = 1) -> StepState:
    return StepState(
        step_id=f"id-{name}", run_id="run", step_name=name, rpc_name="", data=None, status=status, result=None,
        error=None, attempt_count=attempt, retries=None, retry_delay=None, create_time=NOW, update_time=NOW,
        scheduled_time=None, running_time=None, succeeded_time=None, failed_time=None, not_before=None, worker_id=None,
    )  # fmt: skip


def lost(name: str, attempt: int) -> StepAttempt:
    return StepAttempt(
        step_id=f"id-{name}", step_name=name, attempt=attempt, status=StepStatus.FAILED, result=None,
        error=Failure("lost", code=ATTEMPT_LOST), create_time=NOW, update_time=NOW,
    )  # fmt: skip


def test_a_replay_finds_each_record_by_name_and_knows_the_first_recorded_step_it_has_not_reached() -> None:
    history = History([step("a", StepStatus.SUCCEEDED), step("b", StepStatus.SUCCEEDED), step("c", StepStatus.PENDING)], [])
    assert history.first_unreached() == "a"
    assert history.reach("b") is not None
    assert history.first_unreached() == "a", "order of insertion, not of reaching"
    assert history.reach("a") is not None and history.reach("c") is not None
    assert history.first_unreached() is None
    assert history.reach("d") is None
    assert history.reached_count == 4


def test_one_step_name_used_twice_in_a_replay_is_refused() -> None:
    history = History([step("a", StepStatus.SUCCEEDED)], [])
    history.reach("a")
    with pytest.raises(ValueError, match="'a' is used twice"):
        history.reach("a")


def test_an_open_attempt_is_lost_only_when_an_earlier_drive_left_it() -> None:
    left = step("a", StepStatus.PENDING)
    history = History([left], [])
    assert history.left_open_by_another_drive(left)
    made = history.made(step("b", StepStatus.PENDING))
    assert not history.left_open_by_another_drive(made)
    assert not history.left_open_by_another_drive(step("c", StepStatus.SUCCEEDED))


def test_lost_attempts_do_not_count_as_failures_of_the_function() -> None:
    history = History([step("a", StepStatus.FAILED, attempt=3)], [lost("a", 1)])
    assert history.failures_raised(step("a", StepStatus.FAILED, attempt=3)) == 2
    history.count_lost("a")
    assert history.failures_raised(step("a", StepStatus.FAILED, attempt=3)) == 1
    assert history.failures_raised(step("a", StepStatus.PENDING, attempt=4)) == 1


def test_the_retry_policy_counts_failures_and_backs_off_up_to_its_bound() -> None:
    policy = RetryPolicy(retries=2, retry_delay=timedelta(seconds=1), backoff=3.0, max_retry_delay=timedelta(seconds=5))
    assert [policy.allows_another(n) for n in (1, 2, 3)] == [True, True, False]
    assert [policy.delay_after(n) for n in (1, 2, 3)] == [timedelta(seconds=1), timedelta(seconds=3), timedelta(seconds=5)]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [({"retries": -1}, "retries must be at least 0"), ({"backoff": 0.5}, "backoff must be at least 1"),
     ({"retry_delay": timedelta(seconds=-1)}, "retry_delay must not be negative")],
)  # fmt: skip
def test_a_retry_policy_out_of_bounds_names_the_field(arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RetryPolicy(**arguments)


def test_the_registry_finds_a_run_s_function_by_name_and_version() -> None:
    async def body(ctx: Any, value: Any) -> Any:
        return value

    first, second = workflow("w")(body), workflow("w", version="2")(body)
    registry = Registry([first, second])
    assert registry.get("w", None) is first and registry.get("w", "") is first and registry.get("w", "2") is second
    assert registry.get("w", "3") is None and registry.names == frozenset({"w"})
    with pytest.raises(ValueError, match="registered twice"):
        Registry([first, Workflow("w", "", body)])
