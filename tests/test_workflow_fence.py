"""Two engines never drive one run at once: an engine paused past its run lease is refused and writes nothing.

The engine is a process of its own (support/workflow_engine_process.py), paused with SIGSTOP inside
a step's function; the test takes the run's lease once it expired, lets the engine go on, and sees
its write of the step's result refused by the fencing token, and counted so in the engine's metrics.
"""

from __future__ import annotations

import os
import signal
from datetime import timedelta
from pathlib import Path

from support.faults_processes import child
from support.metrics import scrape
from support.polling import wait_until
from support.workflow_effects import calls

from workflowstate.client import RunStatus, StepStatus, WorkflowStateClient

WAIT = 30.0


def test_a_paused_engine_whose_run_lease_was_taken_over_is_refused_and_writes_nothing(
    server_target: str, unique: str, tmp_path: Path
) -> None:
    with (
        WorkflowStateClient(server_target) as client,
        child("workflow_engine_process.py", server_target, "fence", unique, str(tmp_path), "paused") as engine,
    ):
        assert engine.stdout is not None and engine.stdout.readline().strip() == "ready"
        metrics_address = engine.stdout.readline().split()[-1]
        run = client.create_run(f"fence-{unique}", None)
        started = tmp_path / "started"
        wait_until(started.exists, "the engine runs the step's function", WAIT)
        before = client.get_step_state(run.run_id, "work")
        os.kill(engine.pid, signal.SIGSTOP)
        try:
            # Waits until the paused engine's lease expired: the server grants a higher token.
            with client.run_lock(run.run_id, wait_timeout=timedelta(seconds=WAIT)) as successor:
                os.kill(engine.pid, signal.SIGCONT)
                (tmp_path / "release").touch()
                log = tmp_path / "paused.log"
                wait_until(lambda: "a write was refused" in log.read_text(), "the paused engine's write refused", WAIT)
                assert "STALE_FENCE" in log.read_text()
                labels = (("workflow", f"fence-{unique}"),)
                refused_drive = ("workflowstate_engine_drives_ended_total", (("outcome", "refused"), *labels))
                wait_until(lambda: scrape(metrics_address).get(refused_drive) == 1, "the refused drive's end is counted", WAIT)
                samples = scrape(metrics_address)
                assert successor.lost_reason is None, "the successor kept its lease throughout"
                # Read while the successor holds the lease: nobody else may write meanwhile.
                after = client.get_step_state(run.run_id, "work")
                history = client.get_run_history(run.run_id)
                final = client.get_run(run.run_id)
        finally:
            os.kill(engine.pid, signal.SIGCONT)
    assert (after.status, after.attempt_count, after.result) == (StepStatus.PENDING, 1, None), "the refused result was not written"
    assert after.update_time == before.update_time
    assert [attempt.status for attempt in history] == [StepStatus.PENDING]
    assert final is not None and final.status is RunStatus.RUNNING, "the paused engine did not finish the run either"
    assert calls(tmp_path) == {(run.run_id, "work", 1): 1}
    assert samples.get(("workflowstate_engine_fence_refusals_total", labels)) == 1, "the refusal is counted as a stale fence"
    assert samples.get(("workflowstate_engine_runs_taken_total", (("taken_by", "created"), *labels))) == 1
