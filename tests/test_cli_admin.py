"""`workflowstate workers` and `workflowstate retention list|set|delete` against a real server."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest

from workflowstate.client import StepTask, Worker, WorkflowStateClient
from workflowstate.server.ops.cli import main


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
def worker(server_target: str, rpc: str) -> Iterator[str]:
    """A worker serving `rpc`, connected (it has run one step) until the test ends; yields its id."""
    client = WorkflowStateClient(server_target)
    ran = threading.Event()

    def handle(task: StepTask) -> None:
        ran.set()

    worker = Worker(client, {rpc: handle}, max_in_flight=3, task_lease=timedelta(seconds=30), worker_id=f"cli-{rpc}")
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        run = client.create_run("cli-workers", {})
        client.set_step_scheduled(client.insert_step_state(run.run_id, "s", rpc).step_id)
        assert ran.wait(30), "the worker got its step"  # so its stream is subscribed and noted
        yield f"cli-{rpc}"
    finally:
        assert worker.stop(timedelta(seconds=30))
        thread.join(30)
        client.close()


def test_workers_lists_a_connected_worker(run_cli, worker: str, rpc: str) -> None:
    code, out, _ = run_cli("workers", "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    mine = [row for row in rows if row["worker_id"] == worker]
    assert code == 0
    assert mine and mine[0]["rpc_names"] == [rpc] and mine[0]["max_in_flight"] == 3, rows
    code, out, _ = run_cli("workers")
    assert code == 0 and worker in out and out.splitlines()[0].startswith("WORKER ID  ")


def test_retention_set_list_delete(run_cli, unique: str) -> None:
    code, out, err = run_cli("retention", "set", "--workflow", unique, "--status", "failed,cancelled", "--keep", "30d", "--json")
    assert code == 0, err
    policy = json.loads(out)
    assert policy["workflow"] == unique and sorted(policy["statuses"]) == ["cancelled", "failed"]
    code, out, _ = run_cli("retention", "list", "--json")
    assert policy["policy_id"] in [json.loads(line)["policy_id"] for line in out.splitlines()]
    code, out, _ = run_cli("retention", "delete", str(policy["policy_id"]))
    assert (code, out.strip()) == (0, f"deleted retention policy {policy['policy_id']}")
    # Gone: deleting it again is the server's NOT_FOUND, exit 1.
    code, _, err = run_cli("retention", "delete", str(policy["policy_id"]))
    assert code == 1 and "NOT_FOUND" in err


def test_retention_refusals(run_cli, capsys: pytest.CaptureFixture[str]) -> None:
    # Refused in the words typed, naming the option, not in the protocol's (RUN_STATUS_RUNNING).
    with pytest.raises(SystemExit) as exited:
        run_cli("retention", "set", "--status", "failed,running,suspended", "--keep", "1d")
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert (
        "argument --status: running, suspended: runs not finished are never deleted by retention "
        "(choose from completed, failed, cancelled, separated by commas)"
    ) in err, err
    with pytest.raises(SystemExit) as exited:
        run_cli("retention", "delete", "zero")
    assert exited.value.code == 2
