"""The transition table (server/state/transitions.py) as a graph: its invariants, without a server.

The statements take every status they compare with from this table, so these properties are what
the server does: a wrong edit of the table fails here before any server starts.
"""

from __future__ import annotations

from collections import deque

import pytest

from workflowstate.server.state import transitions as t
from workflowstate.server.state.transitions import RunStatus, StepStatus, Via

S = StepStatus


def _reachable(start: StepStatus) -> set[StepStatus]:
    seen, queue = {start}, deque([start])
    while queue:
        status = queue.popleft()
        for move in t.STEP_MOVES:
            if move.source is status and move.target not in seen:
                seen.add(move.target)
                queue.append(move.target)
    return seen


def test_every_step_status_is_reachable_from_pending() -> None:
    assert t.STEP_START is S.PENDING
    assert _reachable(S.PENDING) == set(StepStatus)


def test_every_step_status_is_reachable_through_remote_mode_alone() -> None:
    """A step scheduled for workers reaches every end through claim, complete, task fail and retry."""
    remote = {Via.CLAIM, Via.COMPLETE, Via.TASK_FAIL, Via.AUTO_RETRY}
    seen, queue = {S.SCHEDULED}, deque([S.SCHEDULED])
    while queue:
        status = queue.popleft()
        for move in t.STEP_MOVES:
            if move.via in remote and move.source is status and move.target not in seen:
                seen.add(move.target)
                queue.append(move.target)
    assert seen == {S.SCHEDULED, S.RUNNING, S.SUCCEEDED, S.FAILED}


def test_every_run_status_is_reachable_from_the_start() -> None:
    assert t.RUN_START is RunStatus.RUNNING
    assert {t.RUN_START} | set().union(*t.RUN_TRANSITIONS.values()) == set(RunStatus)


def test_terminal_statuses_have_no_exits() -> None:
    assert not [move for move in t.STEP_MOVES if move.source is S.SUCCEEDED]
    for status in t.TERMINAL_RUN_STATUSES:
        assert t.RUN_TRANSITIONS[status] == set()
    assert t.TERMINAL_RUN_STATUSES == {RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED}
    assert t.open_run_statuses() == ["running", "suspended"]


def test_a_failed_attempt_is_left_only_by_a_new_attempt() -> None:
    exits = [move for move in t.STEP_MOVES if move.source is S.FAILED]
    assert exits and all(move.next_attempt for move in exits)


def test_only_retries_start_a_new_attempt_and_only_after_a_failure() -> None:
    for move in t.STEP_MOVES:
        # ClaimStep of a failed step starts its next attempt, as CreateRetryAttempt does.
        retries = {Via.RETRY, Via.AUTO_RETRY} | ({Via.CLAIM_STEP} if move.source is S.FAILED else set())
        assert move.next_attempt == (move.via in retries), move
        if move.next_attempt:
            assert move.source is S.FAILED, move


def test_no_move_stays_in_place() -> None:
    """Setting the status a row already has is `same`, not a move of the table."""
    assert all(move.source is not move.target for move in t.STEP_MOVES)
    assert all(status not in targets for status, targets in t.RUN_TRANSITIONS.items())


def test_no_move_is_listed_twice() -> None:
    assert len(set(t.STEP_MOVES)) == len(t.STEP_MOVES)


def test_a_claim_hands_a_scheduled_step_to_a_worker_as_running() -> None:
    assert t.step_sources(S.RUNNING, Via.CLAIM) == ["scheduled"]
    assert t.held_by_worker() is S.RUNNING


def test_a_worker_reports_only_on_the_status_a_claim_leads_to() -> None:
    held = t.held_by_worker().value
    assert t.step_sources(t.only_target(Via.COMPLETE), Via.COMPLETE) == [held]
    assert t.step_sources(t.only_target(Via.TASK_FAIL), Via.TASK_FAIL) == [held]
    assert (t.only_target(Via.COMPLETE), t.only_target(Via.TASK_FAIL)) == (S.SUCCEEDED, S.FAILED)


def test_the_automatic_retry_follows_a_task_fail_and_schedules_the_next_attempt() -> None:
    assert t.step_sources(t.only_target(Via.AUTO_RETRY), Via.AUTO_RETRY) == [t.only_target(Via.TASK_FAIL).value]
    assert t.only_target(Via.AUTO_RETRY) is S.SCHEDULED
    # The retried attempt goes back to dispatch: a claim can take it.
    assert t.only_target(Via.AUTO_RETRY).value in t.step_sources(S.RUNNING, Via.CLAIM)


@pytest.mark.parametrize("via", [Via.CLAIM, Via.COMPLETE, Via.TASK_FAIL, Via.AUTO_RETRY])
def test_the_moves_the_statements_take_one_target_of_have_exactly_one(via: Via) -> None:
    assert len(t.step_targets(via)) == 1


def test_set_status_moves_are_the_contract() -> None:
    """Written out from the proto's text, independently of the table."""
    contract = {
        S.PENDING: {S.SCHEDULED, S.RUNNING, S.SUCCEEDED, S.FAILED},
        S.SCHEDULED: {S.RUNNING, S.SUCCEEDED, S.FAILED},
        S.RUNNING: {S.SUCCEEDED, S.FAILED},
        S.SUCCEEDED: set(),
        S.FAILED: set(),
        S.SUSPENDED: {S.SCHEDULED, S.RUNNING, S.SUCCEEDED, S.FAILED},
    }
    for source, targets in contract.items():
        assert {m.target for m in t.STEP_MOVES if m.source is source and m.via is Via.SET_STATUS} == targets, source
    assert t.retry_start_statuses() == {S.PENDING, S.RUNNING}


def test_sources_are_stored_values_in_a_fixed_order() -> None:
    """Statement parameters: the text the database stores, the same list every call."""
    for via in Via:
        for target in StepStatus:
            sources = t.step_sources(target, via)
            assert sources == sorted(sources) and all(StepStatus(source) for source in sources)
    assert t.run_sources(RunStatus.COMPLETED) == ["running", "suspended"]


def test_engine_state_moves_are_the_contract() -> None:
    """Written out from the proto's text, independently of the table."""
    R = RunStatus
    assert {(m.source, m.target) for m in t.STEP_MOVES if m.via is Via.SUSPEND} == {
        (S.PENDING, S.SUSPENDED), (S.SCHEDULED, S.SUSPENDED), (S.RUNNING, S.SUSPENDED),
    }  # fmt: skip
    assert {(m.source, m.target, m.next_attempt) for m in t.STEP_MOVES if m.via is Via.CLAIM_STEP} == {
        (S.PENDING, S.RUNNING, False), (S.SCHEDULED, S.RUNNING, False), (S.FAILED, S.RUNNING, True),
    }  # fmt: skip
    assert t.RUN_TRANSITIONS[R.RUNNING] == {R.COMPLETED, R.FAILED, R.CANCELLED, R.SUSPENDED}
    assert t.RUN_TRANSITIONS[R.SUSPENDED] == {R.RUNNING, R.COMPLETED, R.FAILED, R.CANCELLED}
    assert t.run_sources(R.CANCELLED, t.RunVia.CANCEL) == ["running", "suspended"]
    assert {status for status in R if t.run_clears_error(status)} == {R.RUNNING, R.COMPLETED}
    V = t.VersionStatus
    assert {(m.source, m.target) for m in t.VERSION_MOVES} == {
        (V.DRAFT, V.ACTIVE), (V.DRAFT, V.DECLINED), (V.ACTIVE, V.DECLINED), (V.DECLINED, V.ACTIVE),
    }  # fmt: skip
    assert t.version_sources(V.DRAFT) == [], "nothing goes back to DRAFT"
    assert t.VERSION_START is V.ACTIVE
