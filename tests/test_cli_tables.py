"""Every operator command's table as people read it: one header style (upper-case words apart, as
`RUN ID`, never `WORKER_ID`), and every time in UTC with its zone (ISO 8601), against a real server."""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone

import pytest

from workflowstate.client import Failure, Worker, WorkflowStateClient
from workflowstate.server.ops.cli import main

HEADER = re.compile(r"[A-Z]+(?: [A-Z]+)*")


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str], server_target: str, monkeypatch: pytest.MonkeyPatch) -> Callable[..., tuple[int, str, str]]:
    """main(argv) in this process against the session's server: (exit code, stdout, stderr)."""
    for key in ("WORKFLOWSTATE_TARGET", "WORKFLOWSTATE_TOKEN"):
        monkeypatch.delenv(key, raising=False)

    def run(*args: str) -> tuple[int, str, str]:
        code = main([*args, "--target", server_target])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


@pytest.fixture
def client(server_target: str) -> Iterator[WorkflowStateClient]:
    with WorkflowStateClient(server_target) as client:
        yield client


@pytest.fixture
def worker(client: WorkflowStateClient, rpc: str) -> Iterator[str]:
    """A worker serving `rpc`, connected (it has been handed one step) until the test ends."""
    handed = threading.Event()
    worker = Worker(client, {rpc: lambda task: handed.set()}, task_lease=timedelta(seconds=30), worker_id=f"tables-{rpc}")
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        run = client.create_run("tables-workers", {})
        client.set_step_scheduled(client.insert_step_state(run.run_id, "s", rpc).step_id)
        assert handed.wait(30), "the worker was handed its step, so its stream is subscribed"
        yield f"tables-{rpc}"
    finally:
        assert worker.stop(timedelta(seconds=30))
        thread.join(30)


def a_run_with_a_failed_attempt(client: WorkflowStateClient, workflow: str) -> str:
    run = client.create_run(workflow, {"cart": 1})
    step = client.insert_step_state(run.run_id, "charge", "chargeCard", {"amount": 10})
    client.set_step_running(step.step_id)
    client.set_step_error(step.step_id, Failure("card declined", code="CardDeclined"))
    return run.run_id


def header_lines(out: str) -> list[str]:
    """The header of each table in `out`: its first line, or, for `runs show`, the line after each
    `steps:` and `attempts:` (its first table is the run's fields, one per line)."""
    lines = out.splitlines()
    if lines and lines[0].startswith("run "):
        return [lines[index + 1] for index, line in enumerate(lines) if line in ("steps:", "attempts:")]
    return lines[:1]


def utc(moment: str) -> str:
    """A JSON time as a table shows it."""
    return datetime.fromisoformat(moment).astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_every_tables_headers_are_upper_case_words_apart(run_cli, client: WorkflowStateClient, worker: str, unique: str) -> None:
    workflow = f"tables-{unique}"
    run_id = a_run_with_a_failed_attempt(client, workflow)
    schedule_id = f"tables-{uuid.uuid4().hex[:8]}"
    with client.lease(f"tables-{unique}:a", holder="holder-a"):
        commands = [
            ["runs", "list", "--workflow", workflow],
            ["runs", "show", run_id],
            ["workflows"],
            ["leases", "--prefix", f"tables-{unique}:"],
            ["workers"],
            ["retention", "set", "--workflow", workflow, "--keep", "30d"],
            ["retention", "list"],
            ["schedules", "create", schedule_id, "--workflow", workflow, "--every", "1h"],
            ["schedules", "list"],
        ]
        try:
            wrong: list[str] = []
            for command in commands:
                code, out, err = run_cli(*command)
                assert code == 0, f"{command}: {err}"
                headers = header_lines(out)
                assert headers, f"{command} printed no table: {out!r}"
                wrong += [f"{' '.join(command)}: {name!r}" for line in headers for name in re.split(r" {2,}", line.strip()) if not HEADER.fullmatch(name)]
        finally:
            run_cli("schedules", "delete", schedule_id)
    assert not wrong, "\n".join(wrong)


def test_every_tables_times_are_utc_with_their_zone(run_cli, client: WorkflowStateClient, unique: str) -> None:
    workflow = f"tables-{unique}"
    run_id = a_run_with_a_failed_attempt(client, workflow)
    schedule_id = f"tables-{uuid.uuid4().hex[:8]}"
    code, out, err = run_cli("schedules", "create", schedule_id, "--workflow", workflow, "--every", "1h", "--json")
    assert code == 0, err
    try:
        next_fire = utc(json.loads(out)["next_fire_time"])
        listed = run_cli("schedules", "list")[1]
        assert next_fire in next(line for line in listed.splitlines() if line.startswith(schedule_id)), listed
    finally:
        run_cli("schedules", "delete", schedule_id)

    [summary] = [json.loads(line) for line in run_cli("runs", "list", "--workflow", workflow, "--json")[1].splitlines()]
    assert utc(summary["create_time"]) in run_cli("runs", "list", "--workflow", workflow)[1]
    shown = json.loads(run_cli("runs", "show", run_id, "--json")[1])
    [attempt] = shown["steps"][0]["attempts"]
    table = run_cli("runs", "show", run_id)[1]
    assert f"created   {utc(summary['create_time'])} (" in table, table
    assert utc(attempt["create_time"]) in table.split("attempts:")[1], table
    prefix = f"tables-{unique}:"
    with client.lease(prefix + "a", holder="holder-a"):
        [lease] = [json.loads(line) for line in run_cli("leases", "--prefix", prefix, "--json")[1].splitlines()]
        assert utc(lease["acquire_time"]) in run_cli("leases", "--prefix", prefix)[1]

