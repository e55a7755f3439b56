"""The crash test of the workflow engine: 100 runs of a five-step workflow on two engine processes, one
SIGKILLed in the middle. Every run completes with the right output, each step function ran once per
recorded attempt, nothing stays RUNNING, and the killed engine's runs finish within the stated bound.

The workflow (support/workflow_engine_process.py, ``crash``): a parallel pair of local steps, a
local step whose first attempt fails (retried), a remote step run by a Python Worker in another
process (support/workflow_worker_process.py), and a 1 s durable sleep. Step functions count their
calls in files (support/workflow_effects.py), outside the server. The surviving engine's metrics
count the lost attempts it recorded and the killed engine's runs it took over.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import psycopg
from support.faults_processes import child
from support.metrics import scrape
from support.polling import wait_until
from support.server_process import ServerProcess
from support.waiting import wait_in_database
from support.workflow_effects import calls
from support.workflow_engine_process import RESUMPTION_BOUND

from workflowstate.client import RunStatus, StepStatus, WorkflowStateClient
from workflowstate.workflows import ATTEMPT_LOST

RUNS = 100
LOCAL_STEPS = ("left", "right", "flaky")
# The killed engine's runs are taken over within RESUMPTION_BOUND; each then has at most its 1 s
# sleep and four steps left, on a machine of two busy cores.
RESUMED_RUNS_FINISH_WITHIN = RESUMPTION_BOUND.total_seconds() + 1 + 15
WAIT = 60.0


def expected_output(n: int) -> dict[str, int]:
    return {"left": n * 2, "right": (n + 1) * 2, "plus": n + 1, "charged": n}


def test_a_workflow_engine_killed_mid_way_loses_no_run_and_reruns_no_recorded_attempt(
    start_server: Callable[..., ServerProcess], db: psycopg.Connection, tmp_path: Path, unique: str
) -> None:
    server = start_server("--dispatch-poll-interval", "0.2")
    schema, rpc, target = server.schema, f"rpc-{unique}", server.target
    with (
        WorkflowStateClient(target) as client,
        child("workflow_worker_process.py", target, rpc, str(tmp_path)) as worker,
        child("workflow_engine_process.py", target, "crash", unique, str(tmp_path), "steady", rpc) as steady,
        child("workflow_engine_process.py", target, "crash", unique, str(tmp_path), "doomed", rpc) as doomed,
    ):
        for process, line in ((worker, "subscribed"), (steady, "ready"), (doomed, "ready")):
            assert process.stdout is not None and process.stdout.readline().strip() == line
        assert steady.stdout is not None
        steady_metrics = steady.stdout.readline().split()[-1]
        runs = {client.create_run(f"crash-{unique}", n, request_id=f"crash-{unique}-{n}").run_id: n for n in range(RUNS)}

        # In the middle: once the doomed engine ran a good share of the step functions.
        doomed_calls = tmp_path / f"calls-{doomed.pid}.log"
        wait_until(lambda: doomed_calls.exists() and len(doomed_calls.read_text().splitlines()) >= 60, "doomed engine mid-way", WAIT)
        held = [lease.key.removeprefix("run:") for lease in client.list_leases(key_prefix="run:", page_size=1000).leases if lease.holder == "doomed"]
        doomed.kill()
        killed_at = time.monotonic()
        doomed.wait(WAIT)
        unfinished = len(db.execute(f"SELECT 1 FROM {schema}.runs WHERE status = 'running'").fetchall())
        # Taken over only once the killed engine's lease expired and (for the scan) stalled_after passed: read before.
        orphaned = len(db.execute(f"SELECT 1 FROM {schema}.runs WHERE run_id::text = ANY(%s) AND status = 'running'", (held,)).fetchall())
        print(f"\nkilled the doomed engine holding {len(held)} runs, {unfinished} of {RUNS} runs unfinished")
        assert held, "the doomed engine was driving runs when killed"

        wait_in_database(
            db, f"NOT EXISTS (SELECT FROM {schema}.runs WHERE run_id::text = ANY({{}}) AND status = 'running')", (held,),
            timeout=RESUMED_RUNS_FINISH_WITHIN,
        )  # fmt: skip
        print(f"the killed engine's runs all finished {time.monotonic() - killed_at:.1f}s after the kill")
        wait_in_database(db, f"NOT EXISTS (SELECT FROM {schema}.runs WHERE status = 'running')", timeout=WAIT)

        counted = calls(tmp_path)
        lost = 0
        for run_id, n in runs.items():
            run = client.get_run(run_id)
            assert run is not None and run.status is RunStatus.COMPLETED, f"run {run_id}: {run}"
            assert run.output == expected_output(n)
            history = client.get_run_history(run_id)
            for attempt in history:
                times_called = counted.pop((run_id, attempt.step_name, attempt.attempt), 0)
                if attempt.step_name not in (*LOCAL_STEPS, "charge"):
                    assert times_called == 0
                elif attempt.error is not None and attempt.error.code == ATTEMPT_LOST:
                    lost += 1
                    assert times_called <= 1, f"{run_id} {attempt.step_name} attempt {attempt.attempt} ran {times_called} times"
                else:
                    assert attempt.status in (StepStatus.SUCCEEDED, StepStatus.FAILED)
                    assert times_called == 1, f"{run_id} {attempt.step_name} attempt {attempt.attempt} ran {times_called} times"
            # Attempt 1 of "flaky" fails by design: recorded as such, or lost with the killed engine.
            first_flaky = next(a for a in history if a.step_name == "flaky" and a.attempt == 1)
            assert first_flaky.error is not None and first_flaky.error.code in ("ConnectionError", ATTEMPT_LOST)
        assert not counted, f"calls of attempts that no history records: {dict(counted)}"
        print(f"{lost} attempts were lost with the killed engine and run again")

        # Only the steady engine lived to record lost attempts, and to take the killed engine's runs over:
        # by the stalled-run scan, or by a remote step's outcome heard once their lease had expired.
        samples = scrape(steady_metrics)
        workflow = ("workflow", f"crash-{unique}")
        lost_counted = sum(
            samples.get(("workflowstate_engine_step_attempts_total", (("outcome", "lost"), ("step", step), workflow)), 0.0)
            for step in LOCAL_STEPS
        )
        assert lost_counted == lost
        taken_over = {
            taken_by: samples.get(("workflowstate_engine_runs_taken_total", (("taken_by", taken_by), workflow)), 0.0)
            for taken_by in ("stalled_scan", "step_outcome")
        }
        print(f"the steady engine took over the {orphaned} unfinished runs of the killed one: {taken_over}")
        # Not an equality: a run the killed engine took between the lease listing and the kill is
        # orphaned too, and a run may be taken again by its creation event; the resumption itself is
        # proven above, by every held run finishing within the bound.
        assert orphaned and 0 < sum(taken_over.values()), "the steady engine counts its takeovers by their cause"
