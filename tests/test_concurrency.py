"""Racing writers: each state change is decided by the database in one statement, so of two
writers racing the same transition exactly one wins, and nothing is lost or doubled."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
from support.flows import Ending, ending_of, new_run, step_in
from support.waiting import SOMEONE_WAITS_FOR_A_LOCK, wait_in_database

from workflowstate import v1 as pb

OK, REFUSED = grpc.StatusCode.OK, grpc.StatusCode.FAILED_PRECONDITION
ROUNDS = 25


def race(calls: list[tuple[Callable[[Any], Any], Any]]) -> list[Ending]:
    """Run the calls at the same moment, one thread each; return their outcomes in order."""
    barrier = threading.Barrier(len(calls))

    def go(call: Callable[[Any], Any], request: Any) -> Ending:
        barrier.wait()
        return ending_of(call, request)

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(lambda pair: go(*pair), calls))


def test_result_and_error_race_one_wins(stub) -> None:
    for _ in range(ROUNDS):
        step = step_in(stub, [pb.STEP_STATUS_RUNNING])
        outcomes = race([
            (stub.SetStepResult, pb.SetStepResultRequest(step_id=step.step_id, result_json='{"won": "result"}')),
            (stub.SetStepError, pb.SetStepErrorRequest(step_id=step.step_id, error=pb.Failure(message="won: error"))),
        ])
        codes = [outcome.code for outcome in outcomes]
        assert sorted(codes, key=str) == sorted([OK, REFUSED], key=str), outcomes
        assert [outcome.reason for outcome in outcomes if outcome.code == REFUSED] == ["ILLEGAL_TRANSITION"], outcomes
        final = stub.GetStepState(pb.GetStepStateRequest(run_id=step.run_id, step_name=step.step_name)).step
        expected = pb.STEP_STATUS_SUCCEEDED if codes[0] == OK else pb.STEP_STATUS_FAILED
        assert final.status == expected
        assert final.HasField("result_json") == (expected == pb.STEP_STATUS_SUCCEEDED)
        assert final.HasField("error") == (expected == pb.STEP_STATUS_FAILED)
        history = stub.GetRunHistory(pb.GetRunHistoryRequest(run_id=step.run_id)).attempts
        assert [(a.attempt, a.status) for a in history] == [(1, expected)]


def test_different_results_race_first_wins_others_refused(stub) -> None:
    step = step_in(stub, [pb.STEP_STATUS_RUNNING])
    outcomes = race(
        [(stub.SetStepResult, pb.SetStepResultRequest(step_id=step.step_id, result_json=str(n))) for n in range(8)]
    )
    winners = [n for n, outcome in enumerate(outcomes) if outcome.code == OK]
    assert len(winners) == 1, outcomes
    losers = [outcome for n, outcome in enumerate(outcomes) if n != winners[0]]
    assert {(outcome.code, outcome.reason, outcome.metadata["prior_status"]) for outcome in losers} == {
        (REFUSED, "DIFFERENT_PAYLOAD", "SUCCEEDED")
    }, losers
    final = stub.GetStepState(pb.GetStepStateRequest(run_id=step.run_id, step_name=step.step_name)).step
    assert final.result_json == str(winners[0])


def test_concurrent_retry_attempts_make_one_attempt(stub) -> None:
    step = step_in(stub, [pb.STEP_STATUS_FAILED])
    outcomes = race(
        [(stub.CreateRetryAttempt, pb.CreateRetryAttemptRequest(step_id=step.step_id, status=pb.STEP_STATUS_RUNNING))] * 8
    )
    assert Counter((outcome.code, outcome.reason) for outcome in outcomes) == Counter({(OK, ""): 1, (REFUSED, "ILLEGAL_TRANSITION"): 7}), outcomes
    history = stub.GetRunHistory(pb.GetRunHistoryRequest(run_id=step.run_id)).attempts
    assert [(a.attempt, a.status) for a in history] == [(1, pb.STEP_STATUS_FAILED), (2, pb.STEP_STATUS_RUNNING)]


def test_completion_and_cancellation_race_one_wins(stub) -> None:
    for _ in range(ROUNDS):
        run = new_run(stub)
        outcomes = race([
            (stub.UpdateRunStatus, pb.UpdateRunStatusRequest(run_id=run.run_id, status=pb.RUN_STATUS_COMPLETED)),
            (stub.UpdateRunStatus, pb.UpdateRunStatusRequest(run_id=run.run_id, status=pb.RUN_STATUS_CANCELLED)),
        ])
        codes = [outcome.code for outcome in outcomes]
        assert sorted(codes, key=str) == sorted([OK, REFUSED], key=str), outcomes
        assert [outcome.reason for outcome in outcomes if outcome.code == REFUSED] == ["FINISHED_RUN"], outcomes
        final = stub.GetRun(pb.GetRunRequest(run_id=run.run_id)).run
        assert final.status == (pb.RUN_STATUS_COMPLETED if codes[0] == OK else pb.RUN_STATUS_CANCELLED)


def test_step_insert_racing_run_completion_never_lands_after_it(stub) -> None:
    inserted = refused = 0
    for _ in range(ROUNDS):
        run = new_run(stub)
        done, insert = race([
            (stub.UpdateRunStatus, pb.UpdateRunStatusRequest(run_id=run.run_id, status=pb.RUN_STATUS_COMPLETED)),
            (stub.InsertStepState, pb.InsertStepStateRequest(run_id=run.run_id, step_name="late", rpc_name="r")),
        ])
        assert done.code == OK
        history = stub.GetRunHistory(pb.GetRunHistoryRequest(run_id=run.run_id)).attempts
        if insert.code == OK:
            inserted += 1
            assert [a.step_name for a in history] == ["late"]
        else:
            refused += 1
            assert (insert.code, insert.reason, insert.metadata["run_status"]) == (REFUSED, "FINISHED_RUN", "COMPLETED"), insert
            assert list(history) == []
    assert inserted + refused == ROUNDS


def test_same_request_id_at_once_creates_one_run(stub, db, unique) -> None:
    request = pb.CreateRunRequest(workflow="idem", input_json='{"k": 1}', request_id=unique)
    barrier = threading.Barrier(8)

    def create(_: int) -> str:
        barrier.wait()
        return stub.CreateRun(request).run.run_id

    with ThreadPoolExecutor(8) as pool:
        run_ids = set(pool.map(create, range(8)))
    assert len(run_ids) == 1
    count = db.execute("SELECT count(*) FROM workflows_test.runs WHERE request_id = %s", (unique,)).fetchone()[0]
    assert count == 1


def test_same_step_inserted_at_once_exists_once(stub) -> None:
    run = new_run(stub)
    outcomes = race(
        [(stub.InsertStepState, pb.InsertStepStateRequest(run_id=run.run_id, step_name="one", rpc_name=f"r{n}")) for n in range(6)]
    )
    assert Counter((outcome.code, outcome.reason) for outcome in outcomes) == Counter(
        {(OK, ""): 1, (grpc.StatusCode.ALREADY_EXISTS, "DUPLICATE_NAME"): 5}
    ), outcomes
    history = stub.GetRunHistory(pb.GetRunHistoryRequest(run_id=run.run_id)).attempts
    assert len(history) == 1


def test_step_writes_wait_for_a_run_completion_in_flight_and_see_it(stub, db) -> None:
    """A completion being committed holds the run row; step writes queue behind it and then see
    the finished run. (Without the share lock on the run they would not wait, and would write
    into a run that is completed a moment later.)"""
    run = new_run(stub)
    step = step_in_run(stub, run.run_id)
    calls = [
        (stub.InsertStepState, pb.InsertStepStateRequest(run_id=run.run_id, step_name="late", rpc_name="r")),
        (stub.SetStepResult, pb.SetStepResultRequest(step_id=step.step_id, result_json="1")),
    ]
    for call, request in calls:
        outcome: list[Ending] = []
        with db.transaction():
            db.execute("UPDATE workflows_test.runs SET status = 'completed' WHERE run_id = %s", (run.run_id,))
            writer = threading.Thread(target=lambda c=call, r=request, o=outcome: o.append(ending_of(c, r)))
            writer.start()
            wait_in_database(db, SOMEONE_WAITS_FOR_A_LOCK)
        writer.join(30)
        [refused] = outcome
        assert (refused.code, refused.reason, refused.metadata["run_status"]) == (REFUSED, "FINISHED_RUN", "COMPLETED"), outcome
        db.execute("UPDATE workflows_test.runs SET status = 'running' WHERE run_id = %s", (run.run_id,))
    final = stub.GetStepState(pb.GetStepStateRequest(run_id=run.run_id, step_name=step.step_name)).step
    assert final.status == pb.STEP_STATUS_RUNNING
    history = stub.GetRunHistory(pb.GetRunHistoryRequest(run_id=run.run_id)).attempts
    assert [a.step_name for a in history] == [step.step_name]


def step_in_run(stub, run_id: str) -> pb.StepState:
    step = stub.InsertStepState(pb.InsertStepStateRequest(run_id=run_id, step_name="work", rpc_name="r")).step
    return stub.SetStepRunning(pb.SetStepRunningRequest(step_id=step.step_id)).step
