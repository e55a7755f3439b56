"""The README's backup recipe, run as written, against a server in use: a worker with a task in
flight, a lease held, a schedule firing. The restore is served by a new server, and what the
README's "Backups" says a restore means is checked there: runs as of the dump, the held lease free
after its ttl with fencing continuing past the dumped token, the in-flight attempt swept and
retried, the schedule firing again without repeating an occurrence it fired before the dump.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo
from support.faults_history import attempts_by_step, history_problems
from support.postgres_programs import programs_for
from support.remote_mode import wait_for_steps
from support.server_process import ServerProcess
from support.waiting import wait_in_database

from workflowstate.client import FailedPrecondition, ScheduleOverlap, StepStatus, StepTask, Worker, WorkflowStateClient

README = Path(__file__).resolve().parents[1] / "README.md"
SERVER_ARGS = ("--schedule-min-interval", "1", "--schedule-poll-interval", "0.2", "--dispatch-poll-interval", "0.2", "--lease-poll-interval", "0.2")
SERVE_LINE = 'workflowstate serve --database-url "$RESTORED_DATABASE_URL" --schema "$SCHEMA"'
LEASE_TTL = timedelta(seconds=3)
TASK_LEASE = timedelta(seconds=2)
WAIT = 30.0


def recipe() -> list[str]:
    """The lines of the README's backup recipe: the sh block of its "Backups" section."""
    readme = README.read_text(encoding="utf-8")
    assert "\n### Backups\n" in readme, "the README has no Backups section"
    section = readme.split("\n### Backups\n", 1)[1].split("\n#", 1)[0]
    block = re.search(r"```sh\n(.+?)\n```", section, re.S)
    assert block, "the README's Backups section has no sh block"
    return block[1].splitlines()


@contextmanager
def running(worker: Worker) -> Iterator[None]:
    thread = threading.Thread(target=worker.run, name=f"run {worker.worker_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        worker.stop(timedelta(seconds=5))
        thread.join(10)


def scheduled_times(db: psycopg.Connection, schema: str, schedule_id: str) -> list[str]:
    query = sql.SQL("SELECT schedule_time::text FROM {} WHERE schedule_id = %s ORDER BY schedule_time").format(sql.Identifier(schema, "runs"))
    return [row[0] for row in db.execute(query, (schedule_id,))]


@pytest.fixture
def restored_database(database_url: str, db: psycopg.Connection) -> Iterator[tuple[str, str]]:
    """The name and URL of a database the recipe creates; dropped afterwards."""
    name = f"restored_{uuid.uuid4().hex[:10]}"
    yield name, make_conninfo(database_url, dbname=name)
    db.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def test_the_readme_backup_recipe_restores_a_server_in_use(
    start_server: Callable[..., ServerProcess],
    database_url: str,
    db: psycopg.Connection,
    restored_database: tuple[str, str],
    tmp_path: Path,
    unique: str,
) -> None:
    *commands, serve = recipe()
    assert serve == SERVE_LINE, "the recipe ends by serving the restored database, as this test does"
    original = start_server(*SERVER_ARGS)
    schema = original.schema
    work, key, schedule_id = f"work-{unique}", f"key-{unique}", f"every-second-{unique}"
    handlers_may_return = threading.Event()

    def blocks(task: StepTask) -> str:
        handlers_may_return.wait(WAIT)
        return "from the original"

    with ExitStack() as stack:
        client = stack.enter_context(WorkflowStateClient(original.target, timeout=timedelta(seconds=10)))
        run = client.create_run(f"wf-{unique}", {"before": "the dump"})
        done = client.insert_step_state(run.run_id, "done", f"nobody-{unique}", {})
        client.set_step_running(done.step_id)
        client.set_step_result(done.step_id, {"ok": True})
        in_flight = client.insert_step_state(run.run_id, "in-flight", work, {}, retries=1, retry_delay=timedelta(0))
        client.set_step_scheduled(in_flight.step_id)
        guarded = client.insert_step_state(run.run_id, "guarded", f"nobody-{unique}", {})
        stack.enter_context(running(Worker(client, {work: blocks}, task_lease=TASK_LEASE, worker_id="on-the-original")))
        stack.callback(handlers_may_return.set)  # before the worker's stop, which then need not wait
        wait_for_steps(db, schema, run.run_id, "running", 1, timeout=WAIT)
        holding = stack.enter_context(ExitStack())  # closed after the dump: the lease released
        held = holding.enter_context(client.lease(key, ttl=LEASE_TTL, holder="before-the-dump"))
        client.create_schedule(schedule_id, f"scheduled-{unique}", {}, interval=timedelta(seconds=1), overlap=ScheduleOverlap.ALLOW)
        wait_in_database(db, f"(SELECT count(*) FROM {schema}.runs WHERE schedule_id = {{}}) >= 2", (schedule_id,), timeout=WAIT)

        env = {
            **os.environ,
            "PATH": f"{programs_for(db)}:{os.environ['PATH']}",
            "DATABASE_URL": database_url,
            "SCHEMA": schema,
            "RESTORED_DATABASE": restored_database[0],
            "RESTORED_DATABASE_URL": restored_database[1],
        }
        dumped = subprocess.run(["bash", "-euo", "pipefail", "-c", commands[0]], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert dumped.returncode == 0, dumped.stderr
        # After the dump, on the original: a run, and the lease taken again with a newer token.
        after = client.create_run(f"wf-{unique}", {"after": "the dump"})
        holding.close()
        regranted = stack.enter_context(client.lease(key, ttl=LEASE_TTL, holder="after-the-dump"))
        assert regranted.fencing_token > held.fencing_token
        restored = subprocess.run(["bash", "-euo", "pipefail", "-c", "\n".join(commands[1:])], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert restored.returncode == 0, restored.stderr

    with psycopg.connect(restored_database[1], autocommit=True) as copy:
        fired_before = scheduled_times(copy, schema, schedule_id)
        assert len(fired_before) >= 2
        server = start_server(*SERVER_ARGS, schema=schema, url=restored_database[1])
        with WorkflowStateClient(server.target, timeout=timedelta(seconds=10)) as there:
            # Runs, steps and attempts as of the dump.
            assert there.get_run(run.run_id).input == {"before": "the dump"}
            assert there.get_step_state(run.run_id, "done").result == {"ok": True}
            assert there.get_run(after.run_id) is None

            # The lease held at the dump: free after its ttl, granted with the next token; the old
            # holder's token is refused. A token granted after the dump is granted again.
            with there.lease(key, ttl=LEASE_TTL, wait_timeout=timedelta(seconds=WAIT), holder="after-the-restore") as lease:
                assert lease.fencing_token == held.fencing_token + 1 == regranted.fencing_token
                with pytest.raises(FailedPrecondition, match="stale fencing token"):
                    there.set_step_running(guarded.step_id, fencing_token=held.fencing_token, lease_key=key)
            assert there.get_step_state(run.run_id, "guarded").status is StepStatus.PENDING

            # The attempt in flight at the dump: swept once its task lease passed, and retried here.
            with running(Worker(there, {work: lambda task: {"attempt": task.attempt}}, worker_id="on-the-restore")):
                wait_for_steps(copy, schema, run.run_id, "succeeded", 2, timeout=WAIT)
            history = attempts_by_step(copy, schema, [in_flight.step_id])
            assert history_problems(history) == []
            first, retry = history[in_flight.step_id]
            assert first["error"]["message"].startswith("worker lost"), first["error"]
            assert retry["result"] == {"attempt": 2}

            # The schedule fires again, never an occurrence it fired before the dump.
            wait_in_database(copy, f"(SELECT count(*) FROM {schema}.runs WHERE schedule_id = {{}}) >= {{}}", (schedule_id, len(fired_before) + 2), timeout=WAIT)
            fired = scheduled_times(copy, schema, schedule_id)
            assert fired[: len(fired_before)] == fired_before
            assert len(set(fired)) == len(fired)
            assert min(fired[len(fired_before):]) > fired_before[-1]
        assert server.stop() == 0, server.log_text()[-4000:]
