"""A lease holder paused (SIGSTOP) past its ttl, then resumed (SIGCONT): the next holder got the key
while it was paused, and the paused holder's fenced write is refused and writes nothing.

The holder is its own process using the Python client's run_lock (tests/support/faults_lease_holder.py);
the test is the next holder.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import psycopg
from support.faults_processes import child
from support.server_process import ServerProcess

from workflowstate.client import StepStatus, WorkflowStateClient

TTL = 2.0
WAIT = 30.0


def is_stopped(pid: int) -> bool:
    # /proc/<pid>/stat: "pid (comm) state ..."; T is "stopped by a signal".
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T"


def test_a_holder_paused_past_its_ttl_loses_the_key_and_its_fenced_write_is_refused(
    start_server: Callable[..., ServerProcess], db: psycopg.Connection, unique: str
) -> None:
    server = start_server("--lease-poll-interval", "0.2")
    schema = server.schema
    with WorkflowStateClient(server.target) as client:
        run = client.create_run(f"wf-{unique}", {})
        step = client.insert_step_state(run.run_id, "guarded", "rpc", {})
        with child("faults_lease_holder.py", server.target, run.run_id, step.step_id, str(TTL), stdin=True) as holder:
            assert holder.stdin and holder.stdout
            word, token = holder.stdout.readline().split()
            assert word == "held"
            paused_token = int(token)

            holder.send_signal(signal.SIGSTOP)
            paused_at = time.monotonic()
            with client.run_lock(
                run.run_id, ttl=timedelta(seconds=WAIT), wait_timeout=timedelta(seconds=WAIT), holder="next"
            ) as lease:
                waited = time.monotonic() - paused_at
                assert is_stopped(holder.pid), "the next holder got the key while the first one was paused"
                print(f"\nthe next holder got the key {waited:.2f}s after the pause (ttl {TTL}s)")
                assert lease.fencing_token > paused_token
                running = lease.client.set_step_running(step.step_id)
                assert running.status is StepStatus.RUNNING, "the new holder's fenced write is made"
                before = step_snapshot(db, schema, step.step_id)

                holder.send_signal(signal.SIGCONT)
                holder.stdin.write("write now\n")
                holder.stdin.flush()
                noticed = holder.stdout.readline().strip()
                outcome = holder.stdout.readline().split(maxsplit=2)
                assert outcome[:2] == ["refused", "FAILED_PRECONDITION"], f"the paused holder's write: {outcome}"
                print(f"the resumed holder's own view: {noticed}; its write: {' '.join(outcome)}")
                assert step_snapshot(db, schema, step.step_id) == before, "the refused write changed nothing"
                assert client.get_lease(lease.key).holder == "next"
            assert holder.wait(WAIT) == 0

    [[status, result, token]] = db.execute(
        f"SELECT status, result, fencing_token FROM {schema}.steps WHERE step_id = %s", (step.step_id,)
    ).fetchall()
    assert (status, result, token) == ("running", None, lease.fencing_token), "the step is as the new holder left it"


def step_snapshot(db: psycopg.Connection, schema: str, step_id: str) -> tuple:
    """Everything a write to the step could touch: its row, its attempts, its run events."""
    row = db.execute(f"SELECT s.* FROM {schema}.steps s WHERE step_id = %s", (step_id,)).fetchone()
    attempts = db.execute(f"SELECT * FROM {schema}.step_attempts WHERE step_id = %s ORDER BY attempt", (step_id,)).fetchall()
    events = db.execute(f"SELECT count(*) FROM {schema}.run_events WHERE step_id = %s", (step_id,)).fetchone()
    return row, attempts, events
