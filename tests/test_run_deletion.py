"""Deleting a run, even through SQL, deletes its run events with it (the trigger run_deleted, function
delete_run_events); the DeleteRun RPC and retention delete runs the same way, tested with them."""

from __future__ import annotations

from support.flows import move_step, new_run, new_step

from workflowstate import v1 as pb


def _events_of(db, run_id: str) -> int:
    return db.execute("SELECT count(*) FROM workflows_test.run_events WHERE run_id = %s", (run_id,)).fetchone()[0]


def test_deleting_a_run_deletes_its_events_and_no_other_runs_events(stub, db) -> None:
    deleted, kept = new_run(stub), new_run(stub)
    for run in (deleted, kept):
        step = new_step(stub, run.run_id)
        move_step(stub, step.step_id, pb.STEP_STATUS_RUNNING)
        move_step(stub, step.step_id, pb.STEP_STATUS_SUCCEEDED)
    kept_events = _events_of(db, kept.run_id)
    assert _events_of(db, deleted.run_id) > 0 and kept_events > 0

    db.execute("DELETE FROM workflows_test.runs WHERE run_id = %s", (deleted.run_id,))

    assert db.execute("SELECT count(*) FROM workflows_test.steps WHERE run_id = %s", (deleted.run_id,)).fetchone()[0] == 0
    assert _events_of(db, deleted.run_id) == 0, "the deleted run's events are gone with it"
    assert _events_of(db, kept.run_id) == kept_events, "another run's events stay"
