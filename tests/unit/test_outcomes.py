"""The outcome protocol (server/state/outcomes.py): one error class and one message per outcome, the
same vocabulary in the SQL and in Python, and an unknown outcome treated as the server's bug."""

from __future__ import annotations

import re
import uuid
from importlib import resources

import pytest

from workflowstate.server.core import errors
from workflowstate.server.rpc.status import STATUS_OF
from workflowstate.server.state import outcomes
from workflowstate.server.state.outcomes import ERROR_CLASS, Op, Outcome, OutcomeBug, Write, checked, refusal
from workflowstate.server.state.transitions import Via

STEP = uuid.UUID("00000000-0000-4000-8000-000000000001")
RUN = uuid.UUID("00000000-0000-4000-8000-000000000002")
# Where the outcomes are decided: the statements, and the fence check they call (unknown_fence, stale_fence).
SQL_FILES = [
    ("workflowstate.server.state", "state.sql"),
    ("workflowstate.server.dispatch", "dispatch.sql"),
    ("workflowstate.server.db", "migrations/0005_fence_check.sql"),
    ("workflowstate.server.db", "migrations/0006_step_for_write.sql"),
]

# What each statement may be asked, as its store describes it.
WRITES = {
    "create_run": Write(Op.CREATE_RUN, request_id="req-1"),
    "update_run_status": Write(Op.UPDATE_RUN, RUN, "completed", fence_token=7),
    "insert_step": Write(Op.INSERT_STEP, RUN, "pending", step_name="charge", fence_token=7),
    "set_step_status": Write(Op.MOVE_STEP, STEP, "succeeded", Via.SET_STATUS, fence_token=7),
    "create_retry_attempt": Write(Op.MOVE_STEP, STEP, "running", Via.RETRY, fence_token=7),
    "claim_tasks": Write(Op.MOVE_STEP, target="running", via=Via.CLAIM),
    "complete": Write(Op.MOVE_STEP, STEP, "succeeded", Via.COMPLETE, attempt=3),
    "fail_tasks": Write(Op.MOVE_STEP, STEP, "failed", Via.TASK_FAIL, attempt=3),
}
# The context columns the statements return beside the outcome.
CONTEXT = {
    "prior_status": "scheduled",
    "prior_attempt": 4,
    "run_status": "completed",
    "lease_key": "run:abc",
    "current_token": 9,
    "holder": "worker-a",
    "run_id": str(RUN),
}


def _sql_outcomes(filename: str, package: str) -> set[str]:
    text = resources.files(package).joinpath(*filename.split("/")).read_text(encoding="utf-8")
    code = "\n".join(line.split("--", 1)[0] for line in text.splitlines())
    words = re.findall(r"(?:THEN|ELSE) '(\w+)'", code) + re.findall(r"'(\w+)' AS outcome", code)
    return {word for word in words if not word.isupper()}


@pytest.mark.parametrize("outcome", list(Outcome), ids=lambda outcome: outcome.value)
@pytest.mark.parametrize("statement", list(WRITES))
def test_every_outcome_maps_to_one_error_class(statement: str, outcome: Outcome) -> None:
    error = refusal(outcome.value, WRITES[statement], CONTEXT)
    expected = ERROR_CLASS[outcome]
    if expected is None:
        assert error is None
    else:
        assert type(error) is expected, error
        assert str(error), "every refusal says why"


def test_only_changed_and_same_are_answered_with_the_row() -> None:
    assert {outcome for outcome, error_class in ERROR_CLASS.items() if error_class is None} == {Outcome.CHANGED, Outcome.SAME}
    assert set(ERROR_CLASS) == set(Outcome)
    row = {"outcome": "same", "step_id": STEP}
    assert checked(row, WRITES["set_step_status"]) is row


@pytest.mark.parametrize("outcome", ["mystery", "", None, "CHANGED"])
def test_unknown_outcome_is_a_bug_not_a_user_error(outcome: str | None) -> None:
    with pytest.raises(OutcomeBug) as caught:
        refusal(outcome, WRITES["set_step_status"], CONTEXT)
    assert not isinstance(caught.value, errors.WorkflowStateError), "the servicer must answer INTERNAL, not a user error"
    assert type(caught.value) not in STATUS_OF


def test_a_statement_without_a_row_is_a_bug_not_a_user_error() -> None:
    with pytest.raises(OutcomeBug):
        checked(None, WRITES["update_run_status"])


def test_the_sql_and_python_vocabularies_are_the_same() -> None:
    produced = set().union(*(_sql_outcomes(filename, package) for package, filename in SQL_FILES))
    assert produced == {outcome.value for outcome in Outcome}


def test_every_outcome_is_documented_at_the_top_of_outcomes_py_and_state_sql() -> None:
    header = (resources.files("workflowstate.server.state") / "state.sql").read_text(encoding="utf-8").split("-- create_run --")[0]
    for outcome in Outcome:
        assert re.search(rf"^\s+{outcome.value}\s", outcomes.__doc__ or "", re.MULTILINE), outcome
        assert re.search(rf"^--\s+{outcome.value}\s", header, re.MULTILINE), outcome


def test_a_refused_write_says_nothing_was_written() -> None:
    for statement, write in WRITES.items():
        for outcome, error_class in ERROR_CLASS.items():
            if error_class is errors.FailedPrecondition:
                error = refusal(outcome.value, write, CONTEXT)
                assert str(error).endswith("; nothing was written"), (statement, outcome, str(error))


@pytest.mark.parametrize("statement", ["complete", "fail_tasks"])
@pytest.mark.parametrize(
    ("outcome", "why"),
    [
        (Outcome.WRONG_ATTEMPT, "is over: the step is at attempt 4 (SCHEDULED)"),
        (Outcome.ILLEGAL_TRANSITION, "is SCHEDULED, not RUNNING"),
        (Outcome.NOT_HELD, "held by another stream (worker 'worker-a')"),
        (Outcome.FINISHED_RUN, "belongs to a run that is COMPLETED"),
        (Outcome.TIMED_OUT, "timed out: it ran past its start_to_close"),
    ],
)
def test_a_refused_worker_report_names_the_attempt_and_why(statement: str, outcome: Outcome, why: str) -> None:
    message = str(refusal(outcome.value, WRITES[statement], CONTEXT))
    assert message.startswith(f"attempt 3 of step {STEP} ") and why in message, message


def test_a_report_on_an_attempt_no_worker_holds_says_so() -> None:
    message = str(refusal("not_held", WRITES["complete"], {**CONTEXT, "prior_status": "running", "holder": None}))
    assert "RUNNING but was not handed to a worker stream" in message, message


def test_an_illegal_set_status_names_both_statuses_and_a_bad_retry_names_failed() -> None:
    assert "cannot move from SCHEDULED to SUCCEEDED" in str(refusal("illegal_transition", WRITES["set_step_status"], CONTEXT))
    assert "cannot move from SCHEDULED to COMPLETED" in str(refusal("illegal_transition", WRITES["update_run_status"], CONTEXT))
    retry = str(refusal("illegal_transition", WRITES["create_retry_attempt"], CONTEXT))
    assert "is SCHEDULED, not FAILED" in retry and "retry attempt can only follow a FAILED attempt" in retry, retry


def test_fence_refusals_name_the_token_the_key_and_the_current_token() -> None:
    stale = str(refusal("stale_fence", WRITES["insert_step"], CONTEXT))
    assert "stale fencing token 7 for lease 'run:abc': the current token is 9" in stale, stale
    unknown = str(refusal("unknown_fence", WRITES["update_run_status"], CONTEXT))
    assert "fencing token 7 is unknown: no lease was ever granted on 'run:abc'" in unknown, unknown


def test_different_payload_names_what_differs() -> None:
    assert "different output or error" in str(refusal("different_payload", WRITES["update_run_status"], CONTEXT))
    assert "different result" in str(refusal("different_payload", WRITES["set_step_status"], CONTEXT))
    assert "different error" in str(refusal("different_payload", WRITES["fail_tasks"], CONTEXT))


def test_names_and_ids_appear_in_missing_duplicate_and_reused_request() -> None:
    assert str(refusal("missing", WRITES["set_step_status"], CONTEXT)) == f"step {STEP} not found"
    assert str(refusal("missing", WRITES["insert_step"], CONTEXT)) == f"run {RUN} not found"
    assert str(refusal("duplicate_name", WRITES["insert_step"], CONTEXT)) == f"run {RUN} already has a step named 'charge'"
    reused = str(refusal("request_id_reused", WRITES["create_run"], CONTEXT))
    assert "request_id 'req-1'" in reused and str(RUN) in reused, reused
