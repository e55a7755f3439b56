"""A worker process SIGKILLed mid-task among three, with 200 steps and retries: every step still ends
SUCCEEDED, each attempt has at most one accepted result, every history is consistent, nothing stays RUNNING.

The three workers are processes of the Python SDK's Worker (tests/support/faults_worker_process.py).
The doomed one hangs in its third task, so it is killed mid-task for sure; the other two fail the
first attempt of every fourth step on purpose, so planned retries and the lost worker's retries mix.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import psycopg
from support.faults_history import attempts_by_step, history_problems, status_events
from support.faults_processes import child
from support.remote_mode import wait_for_steps
from support.server_process import ServerProcess

from workflowstate.client import WorkflowStateClient

STEPS, BATCH = 200, 20
WAIT = 60.0


def wait_for_file(path: Path, timeout: float = WAIT) -> None:
    """Return once a worker process wrote `path` (polled: the file is the event), bounded."""
    give_up = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < give_up, f"{path.name} was not written within {timeout}s"
        time.sleep(0.02)


def test_a_worker_killed_mid_task_loses_no_step_and_no_result_is_accepted_twice(
    start_server: Callable[..., ServerProcess], db: psycopg.Connection, tmp_path: Path, unique: str
) -> None:
    server = start_server("--dispatch-poll-interval", "0.2")
    schema, rpc = server.schema, f"rpc-{unique}"
    doomed_hung = tmp_path / "doomed.hung"
    with (
        WorkflowStateClient(server.target) as client,
        child("faults_worker_process.py", server.target, rpc, "steady-1", str(tmp_path)),
        child("faults_worker_process.py", server.target, rpc, "steady-2", str(tmp_path)),
        child("faults_worker_process.py", server.target, rpc, "doomed", str(tmp_path), "3") as doomed,
    ):
        for worker_id in ("steady-1", "steady-2", "doomed"):
            wait_for_file(tmp_path / f"{worker_id}.subscribed")
        run = client.create_run(f"wf-{unique}", {})
        step_ids: list[str] = []
        killed_at: int | None = None
        for first in range(0, STEPS, BATCH):
            for i in range(first, first + BATCH):
                step = client.insert_step_state(
                    run.run_id, f"step-{i}", rpc, {"fail_first": i % 4 == 0}, retries=3, retry_delay=timedelta(0)
                )
                client.set_step_scheduled(step.step_id)
                step_ids.append(step.step_id)
            if killed_at is None and doomed_hung.exists():
                doomed.kill()  # SIGKILL, with the steps scheduled so far still being worked on
                killed_at = len(step_ids)
        if killed_at is None:
            wait_for_file(doomed_hung)
            doomed.kill()
            killed_at = STEPS
        doomed.wait(WAIT)
        print(f"\nthe doomed worker was killed after {killed_at} of {STEPS} steps were scheduled")
        hung_step, hung_attempt = doomed_hung.read_text().split()
        wait_for_steps(db, schema, run.run_id, "succeeded", STEPS, timeout=WAIT)

    steps = db.execute(
        f"SELECT step_id::text, status, attempt_count, result FROM {schema}.steps WHERE run_id = %s", (run.run_id,)
    ).fetchall()
    assert sorted(step_id for step_id, *_ in steps) == sorted(step_ids), "no step lost, none added"
    assert {status for _, status, *_ in steps} == {"succeeded"}, "every step succeeded; nothing left RUNNING"
    for step_id, _, attempt_count, result in steps:
        assert result["attempt"] == attempt_count, f"{step_id}: the result is the last attempt's"
        assert result["worker"] in ("steady-1", "steady-2", "doomed"), f"{step_id}: result {result}"

    history = attempts_by_step(db, schema, step_ids)
    assert history_problems(history) == []
    assert all(len(history[step_id]) == attempt_count for step_id, _, attempt_count, *_ in steps)

    lost = [attempt for attempt in history[hung_step] if attempt["attempt"] == int(hung_attempt)]
    assert lost and lost[0]["status"] == "failed", "the attempt the doomed worker held was failed"
    assert lost[0]["error"]["message"].startswith("worker lost") and "doomed" in lost[0]["error"]["message"]
    final = history[hung_step][-1]
    assert final["attempt"] > int(hung_attempt) and final["result"]["worker"] in ("steady-1", "steady-2"), "retried by a survivor"

    # A planned failure's first attempt fails by plan, unless it is the attempt the doomed worker
    # hung in (then it failed as lost, checked above).
    planned = [history[step_id][0] for step_id in step_ids[::4] if (step_id, 1) != (hung_step, int(hung_attempt))]
    assert all("planned failure" in attempt["error"]["message"] for attempt in planned), "the planned failures are in the history"

    events = status_events(db, schema, step_ids)
    assert [key for key, count in events.items() if count != 1] == [], "no attempt's status change was applied twice"
    succeeded = [step_id for step_id, _, status in events if status == "succeeded"]
    assert sorted(succeeded) == sorted(step_ids), "exactly one succeeded attempt per step"
    lost_attempts = sum(
        1 for attempts in history.values() for a in attempts if a["error"] and a["error"]["message"].startswith("worker lost")
    )
    print(f"{sum(len(a) for a in history.values())} attempts for {STEPS} steps, {lost_attempts} lost with the doomed worker")
