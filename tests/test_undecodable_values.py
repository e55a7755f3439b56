"""Whatever JSON the server holds, the clients, the CLI, the dashboard and the workers keep working.

The server now refuses numbers Python cannot read, but a database may hold them from before (or
from another writer): {"x": 1e5000} is stored as a 5001-digit integer, past Python's 4300-digit
limit for int(). Those values are written here straight into the tables, as such a database has them.
Each reader shows an UndecodableJson naming the field, in place of the value, and a worker fails
only that task, for good, and goes on serving.
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta

import psycopg
import pytest
from support.dashboard import Browser, write_token_file
from support.remote_mode import scheduled_steps, wait_for_steps

from workflowstate.client import (
    AsyncWorkflowStateClient,
    RunStatus,
    StepStatus,
    StepTask,
    UndecodableJson,
    Worker,
    WorkflowStateClient,
)
from workflowstate.server.ops.cli import main
from workflowstate.server.rpc.tokens import Role

SCHEMA = "workflows_test"  # the session server's
HUGE = '{"x": 1e5000}'
HUGE_STORED = '{"x": 1' + "0" * 5000 + "}"  # a 5001-digit integer, as PostgreSQL writes it back


@pytest.fixture
def client(server_target: str) -> Iterator[WorkflowStateClient]:
    with WorkflowStateClient(server_target) as client:
        yield client


def _store(db: psycopg.Connection, table: str, column: str, key: str, key_value: str, schema: str = SCHEMA) -> None:
    """Write HUGE into one JSON column, bypassing the server's checks."""
    db.execute(f'UPDATE "{schema}".{table} SET {column} = %s::jsonb WHERE {key} = %s', (HUGE, key_value))


def _assert_undecodable(value: object, field: str, text: str = HUGE_STORED) -> None:
    assert isinstance(value, UndecodableJson), value
    assert value.field == field
    assert "4300" in value.reason, value.reason
    assert value.text == text


def _run_with_huge_values(client: WorkflowStateClient, db: psycopg.Connection, unique: str, schema: str = SCHEMA) -> tuple[str, str]:
    """A finished run whose input, output, metadata, a state variable, and step data and result hold a huge number."""
    run = client.create_run(f"wf-{unique}", {}, metadata={"m": 1})
    step = client.insert_step_state(run.run_id, "s", "r", {})
    client.set_step_running(step.step_id)
    client.set_step_result(step.step_id, {"ok": True})
    client.update_run_state(run.run_id, "v", 1)
    client.update_run_status(run.run_id, RunStatus.COMPLETED, output={})
    for column in ("input", "output", "metadata"):
        _store(db, "runs", column, "run_id", run.run_id, schema)
    db.execute(f'UPDATE "{schema}".runs SET state = %s::jsonb WHERE run_id = %s', ('{"big": 1e5000, "small": [2.50]}', run.run_id))
    for column in ("data", "result"):
        _store(db, "steps", column, "step_id", step.step_id, schema)
    _store(db, "step_attempts", "result", "step_id", step.step_id, schema)
    return run.run_id, step.step_id


def test_the_sync_client_reads_a_value_python_cannot_decode(client, db, unique) -> None:
    run_id, _ = _run_with_huge_values(client, db, unique)
    run = client.get_run(run_id)
    assert run is not None and run.status is RunStatus.COMPLETED
    _assert_undecodable(run.input, "Run.input")
    _assert_undecodable(run.output, "Run.output")
    _assert_undecodable(run.metadata, "Run.metadata")
    [listed] = client.list_runs(workflow=f"wf-{unique}", full=True).runs
    _assert_undecodable(listed.input, "Run.input")
    [step] = client.list_steps(run_id)
    _assert_undecodable(step.data, "StepState.data")
    _assert_undecodable(step.result, "StepState.result")
    _assert_undecodable(client.get_step_state(run_id, "s").result, "StepState.result")
    [attempt] = client.get_run_history(run_id)
    _assert_undecodable(attempt.result, "StepAttempt.result")
    # A run's state: only the variable that cannot be decoded is marked; the others read as usual.
    state = client.get_run_state(run_id)
    assert state["small"] == [2.5]
    _assert_undecodable(state["big"], "run state 'big'", "1" + "0" * 5000)


def test_the_async_client_reads_a_value_python_cannot_decode(client, server_target, db, unique) -> None:
    run_id, _ = _run_with_huge_values(client, db, unique)

    async def read() -> None:
        async with AsyncWorkflowStateClient(server_target) as aclient:
            run = await aclient.get_run(run_id)
            assert run is not None
            _assert_undecodable(run.input, "Run.input")
            [step] = await aclient.list_steps(run_id)
            _assert_undecodable(step.result, "StepState.result")

    asyncio.run(read())


def test_runs_show_says_what_it_cannot_decode(client, db, unique, server_target, capsys) -> None:
    run_id, _ = _run_with_huge_values(client, db, unique)
    assert main(["runs", "show", run_id, "--target", server_target]) == 0
    out = capsys.readouterr().out
    [input_line] = [line for line in out.splitlines() if line.startswith("input")]
    assert "cannot be decoded" in input_line and "4300" in input_line, out
    assert main(["runs", "show", run_id, "--json", "--target", server_target]) == 0
    shown = json.loads(capsys.readouterr().out)
    undecodable = shown["run"]["input"]["undecodable_json"]
    assert undecodable["field"] == "Run.input" and "4300" in undecodable["reason"]
    assert shown["steps"][0]["result"]["undecodable_json"]["text"].startswith('{"x": 1000')


def test_the_dashboards_run_page_says_what_it_cannot_decode(start_server, database_url, db, tmp_path, unique) -> None:
    admin = f"admin-{uuid.uuid4().hex}"
    tokens = write_token_file(tmp_path, {Role.ADMIN: admin})
    server = start_server("--auth-tokens", str(tokens), "--http-listen", "127.0.0.1:0")
    with WorkflowStateClient(server.target, token=admin) as client:
        run_id, _ = _run_with_huge_values(client, db, unique, schema=server.schema)
    browser = Browser(server.dashboard_url)
    assert browser.login(admin).status == 303
    page = browser.get(f"/runs/{run_id}")
    assert page.status == 200, page.body[:2000]
    assert "cannot be decoded" in page.body and "4300" in page.body, page.body
    assert browser.get(f"/runs/{run_id}/live").status == 200


def test_a_worker_fails_only_the_task_it_cannot_decode_and_keeps_serving(client, db, rpc, unique) -> None:
    run = client.create_run(f"wf-{unique}", {})
    [bad] = scheduled_steps(client, run.run_id, rpc, 1, retries=3, prefix="bad")
    handled: list[StepTask] = []

    def handler(task: StepTask) -> dict[str, int]:
        handled.append(task)
        return {"n": task.data["n"]}

    # The undecodable data is written before the worker subscribes, so its first task is this one.
    _store(db, "steps", "data", "step_id", bad.step_id)
    worker = Worker(client, {rpc: handler}, max_in_flight=1, worker_id=f"worker-{unique}")
    errors: list[BaseException] = []

    def run_worker() -> None:
        try:
            worker.run()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run_worker)
    thread.start()
    try:
        wait_for_steps(db, SCHEMA, run.run_id, "failed", 1)
        [good] = scheduled_steps(client, run.run_id, rpc, 1, prefix="good")
        wait_for_steps(db, SCHEMA, run.run_id, "succeeded", 1)
    finally:
        stopped = worker.stop(timedelta(seconds=30))
        thread.join(30)
    assert not errors, errors
    assert stopped and not thread.is_alive()
    failed = client.get_step_state(run.run_id, bad.step_name)
    # Failed for good at its first attempt, though it had 3 retries: the same data fails the same way.
    assert (failed.status, failed.attempt_count) == (StepStatus.FAILED, 1)
    assert failed.error is not None and "StepTask.data" in failed.error.message and "4300" in failed.error.message
    assert [task.step_id for task in handled] == [good.step_id]
    assert client.get_step_state(run.run_id, good.step_name).result == {"n": 0}
