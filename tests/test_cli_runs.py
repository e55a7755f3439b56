"""The operator commands (`workflowstate runs|workflows|leases`) against a real server.

Some run as real processes (`python -m workflowstate.server ...`) to prove the entry point, the
environment variables and the exit codes; the rest call main(argv) in this process, which is the
same code without a process start.
"""

from __future__ import annotations

import json
import os
import pty
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest
from support.server_process import ServerProcess

from workflowstate.client import Failure, RunStatus, StepStatus, WorkflowStateClient
from workflowstate.server.ops.cli import main
from workflowstate.server.rpc.tokens import Role, token_line

RUN_KEYS = {"run_id", "workflow", "status", "create_time", "update_time", "error"}


def _environment(**variables: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("WORKFLOWSTATE_")}
    return {**env, **variables}


def cli(*args: str, **variables: str) -> subprocess.CompletedProcess[str]:
    """The command as users run it, stdin not a terminal."""
    return subprocess.run(
        [sys.executable, "-m", "workflowstate.server", *args],
        capture_output=True, text=True, env=_environment(**variables), stdin=subprocess.DEVNULL, timeout=120,
    )  # fmt: skip


@pytest.fixture(autouse=True)
def _no_workflowstate_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("WORKFLOWSTATE_"):
            monkeypatch.delenv(key)


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str], server_target: str) -> Callable[..., tuple[int, str, str]]:
    """main(argv) in this process against the session's server: (exit code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        code = main([*args, "--target", server_target])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


@pytest.fixture(scope="module")
def client(server_target: str) -> Iterator[WorkflowStateClient]:
    with WorkflowStateClient(server_target) as client:
        yield client


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def make_failed_run(client: WorkflowStateClient, workflow: str) -> str:
    """A run whose step `charge` failed twice (two attempts) and whose step `reserve` succeeded."""
    run = client.create_run(workflow, {"cart": 42})
    reserve = client.insert_step_state(run.run_id, "reserve", "reserveStock", {"sku": "a"})
    client.set_step_running(reserve.step_id)
    client.set_step_result(reserve.step_id, {"reserved": True})
    charge = client.insert_step_state(run.run_id, "charge", "chargeCard", {"amount": 10}, retries=1)
    client.set_step_running(charge.step_id)
    client.set_step_error(charge.step_id, Failure("card declined", code="CardDeclined"))
    client.create_retry_attempt(charge.step_id, StepStatus.RUNNING)
    client.set_step_error(charge.step_id, Failure("card declined again", stack="Traceback ...", code="CardDeclined"))
    client.update_run_status(run.run_id, RunStatus.FAILED, error=Failure("payment failed", code="Payment"))
    return run.run_id


def run_status(db: psycopg.Connection, run_id: str) -> str | None:
    row = db.execute("SELECT status FROM workflows_test.runs WHERE run_id = %s", (run_id,)).fetchone()
    return None if row is None else row[0]


def closed_port() -> int:
    """A port nothing listens on: bound, then released."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- runs list --------------------------------------------------------------------------------


def test_runs_list_json_is_one_run_per_line_newest_first(client: WorkflowStateClient, server_target: str, unique: str) -> None:
    workflow = f"cli-list-{unique}"
    failed = make_failed_run(client, workflow)
    running = [client.create_run(workflow).run_id for _ in range(2)]
    listed = cli("runs", "list", "--workflow", workflow, "--json", "--target", server_target)
    assert listed.returncode == 0, listed.stderr
    lines = json_lines(listed.stdout)
    assert [line["run_id"] for line in lines] == [running[1], running[0], failed]
    assert all(set(line) == RUN_KEYS for line in lines)
    assert lines[2]["workflow"] == workflow
    assert lines[2]["status"] == "failed"
    assert lines[2]["error"] == {"message": "payment failed", "code": "Payment"}
    assert lines[0]["error"] is None
    assert datetime.fromisoformat(lines[0]["create_time"]).tzinfo is not None

    only_failed = cli("runs", "list", "--workflow", workflow, "--status", "failed", "--json", WORKFLOWSTATE_TARGET=server_target)
    assert only_failed.returncode == 0, only_failed.stderr
    assert [line["run_id"] for line in json_lines(only_failed.stdout)] == [failed]  # WORKFLOWSTATE_TARGET was used


def test_runs_list_limit_order_and_times(client: WorkflowStateClient, run_cli: Callable[..., tuple[int, str, str]], unique: str) -> None:
    workflow = f"cli-limit-{unique}"
    ids = [client.create_run(workflow).run_id for _ in range(5)]
    code, out, _ = run_cli("runs", "list", "--workflow", workflow, "--limit", "2", "--json")
    assert code == 0
    assert [line["run_id"] for line in json_lines(out)] == [ids[4], ids[3]]
    code, out, _ = run_cli("runs", "list", "--workflow", workflow, "--limit", "2", "--order", "oldest", "--json")
    assert [line["run_id"] for line in json_lines(out)] == [ids[0], ids[1]]
    code, out, _ = run_cli("runs", "list", "--workflow", workflow, "--limit", "all", "--json")
    assert len(json_lines(out)) == 5

    code, out, err = run_cli("runs", "list", "--workflow", workflow, "--limit", "2")
    assert code == 0
    assert "(2 shown, more match" in err
    code, out, err = run_cli("runs", "list", "--workflow", workflow, "--limit", "5")
    assert "more match" not in err

    assert len(json_lines(run_cli("runs", "list", "--workflow", workflow, "--since", "1h", "--json")[1])) == 5
    assert run_cli("runs", "list", "--workflow", workflow, "--until", "1h", "--json")[1] == ""
    later = (datetime.now(timezone.utc) + timedelta(hours=1)).isoformat()
    assert run_cli("runs", "list", "--workflow", workflow, "--since", later, "--json")[1] == ""
    assert len(json_lines(run_cli("runs", "list", "--workflow", workflow, "--until", later, "--json")[1])) == 5


def test_runs_list_table_has_full_ids_aligned(client: WorkflowStateClient, run_cli: Callable[..., tuple[int, str, str]], unique: str) -> None:
    workflow = f"cli-table-{unique}"
    failed = make_failed_run(client, workflow)
    running = client.create_run(workflow).run_id
    code, out, _ = run_cli("runs", "list", "--workflow", workflow)
    assert code == 0
    header, first, second = out.splitlines()
    assert header.split() == ["RUN", "ID", "WORKFLOW", "STATUS", "CREATED", "UPDATED", "ERROR"]
    assert first.startswith(running + "  ") and second.startswith(failed + "  ")
    assert header.index("STATUS") == first.index("running") == second.index("failed")  # aligned
    assert second.endswith("payment failed [Payment]")

    code, out, err = run_cli("runs", "list", "--workflow", f"none-{unique}")
    assert (code, out, err) == (0, "", "no runs match\n")


# --- runs show --------------------------------------------------------------------------------


def test_runs_show_json_has_steps_and_every_attempt(client: WorkflowStateClient, run_cli: Callable[..., tuple[int, str, str]], unique: str) -> None:
    run_id = make_failed_run(client, f"cli-show-{unique}")
    code, out, _ = run_cli("runs", "show", run_id, "--json")
    assert code == 0
    (shown,) = json_lines(out)
    assert set(shown) == {"run", "steps"}
    assert shown["run"]["run_id"] == run_id
    assert shown["run"]["input"] == {"cart": 42}
    assert shown["run"]["error"] == {"message": "payment failed", "stack": "", "code": "Payment"}
    assert [step["step_name"] for step in shown["steps"]] == ["reserve", "charge"]
    reserve, charge = shown["steps"]
    assert (reserve["status"], reserve["attempt_count"], reserve["result"]) == ("succeeded", 1, {"reserved": True})
    assert (charge["status"], charge["attempt_count"], charge["rpc_name"]) == ("failed", 2, "chargeCard")
    assert [(a["attempt"], a["status"], a["error"]["message"]) for a in charge["attempts"]] == [
        (1, "failed", "card declined"),
        (2, "failed", "card declined again"),
    ]
    assert charge["attempts"][1]["error"]["stack"] == "Traceback ..."
    assert set(charge["attempts"][0]) == {
        "step_id", "step_name", "attempt", "status", "result", "error", "create_time", "update_time", "duration_seconds",
        "scheduled_time", "running_time", "succeeded_time", "failed_time",
    }  # fmt: skip
    assert all(attempt["duration_seconds"] >= 0 for attempt in charge["attempts"] + reserve["attempts"])


def test_runs_show_table(client: WorkflowStateClient, server_target: str, unique: str) -> None:
    run_id = make_failed_run(client, f"cli-show-{unique}")
    shown = cli("runs", "show", run_id, "--target", server_target)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].split() == ["run", run_id]
    assert "status    failed" in lines
    assert 'input     {"cart": 42}' in lines
    assert "error     payment failed [Payment]" in lines
    steps = lines[lines.index("steps:") + 1 : lines.index("attempts:") - 1]
    assert [line.split()[:5] for line in steps] == [
        ["STEP", "RPC", "STATUS", "ATTEMPT", "WORKER"],
        ["reserve", "reserveStock", "succeeded", "1", "-"],
        ["charge", "chargeCard", "failed", "2", "-"],
    ]
    attempts = lines[lines.index("attempts:") + 1 :]
    assert attempts[0].split() == ["STEP", "ATTEMPT", "STATUS", "STARTED", "DURATION", "ERROR"]
    assert [line.split()[:3] for line in attempts[1:]] == [["reserve", "1", "succeeded"], ["charge", "1", "failed"], ["charge", "2", "failed"]]
    assert attempts[2].endswith("card declined [CardDeclined]") and attempts[3].endswith("card declined again [CardDeclined]")


def test_not_found_and_refused_input_exit_1(server_target: str) -> None:
    missing = str(uuid.uuid4())
    shown = cli("runs", "show", missing, "--target", server_target)
    assert (shown.returncode, shown.stdout, shown.stderr) == (1, "", f"workflowstate: NOT_FOUND: run {missing} not found\n")
    cancelled = cli("runs", "cancel", missing, "--target", server_target)
    assert cancelled.returncode == 1
    assert cancelled.stderr.startswith("workflowstate: NOT_FOUND: ")
    bad = cli("runs", "show", "not-a-uuid", "--target", server_target)
    assert bad.returncode == 1
    assert bad.stderr.startswith("workflowstate: INVALID_ARGUMENT: ") and "run_id" in bad.stderr


# --- usage and reachability ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "variables", "message"),
    [
        (["runs", "list", "--status", "bogus"], {}, "argument --status: unknown status 'bogus' (choose from running, completed, failed, cancelled"),
        (["runs", "list", "--since", "yesterday"], {}, "argument --since: must be a length ago such as 30m"),
        (["runs", "list", "--limit", "0"], {}, "argument --limit: must be positive"),
        (["runs", "list", "--order", "random"], {}, "argument --order: invalid choice: 'random'"),
        (["runs", "list"], {"WORKFLOWSTATE_TIMEOUT": "-1"}, "WORKFLOWSTATE_TIMEOUT: must be positive"),
        (["runs"], {}, "the following arguments are required: COMMAND"),
        (["runs", "cancel"], {}, "workflowstate: give run ids, or filters (--workflow, --status, --since, --until) to cancel many"),
        (["runs", "cancel", str(uuid.UUID(int=1)), "--workflow", "w"], {}, "workflowstate: give run ids or filters"),
        (["runs", "cancel", "--status", "failed"], {}, "workflowstate: only runs not finished can be cancelled"),
        (["runs", "delete", "--status", "running"], {}, "workflowstate: running and suspended runs are deleted only with --force"),
        (["runs", "delete", "--status", "suspended"], {}, "workflowstate: running and suspended runs are deleted only with --force"),
        (["runs", "list", "--token", "two words"], {}, "workflowstate: --token: token must be a non-empty string of printable ASCII"),
    ],
)
def test_bad_usage_exits_2_saying_why(args: list[str], variables: dict[str, str], message: str) -> None:
    result = cli(*args, "--target", f"127.0.0.1:{closed_port()}", **variables) if args != ["runs"] else cli(*args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert result.stdout == ""


def test_unreachable_target_exits_3() -> None:
    port = closed_port()
    by_flag = cli("runs", "list", "--target", f"127.0.0.1:{port}")
    assert by_flag.returncode == 3
    assert by_flag.stderr.startswith("workflowstate: UNAVAILABLE: ")
    assert by_flag.stderr.rstrip().endswith(f"(target 127.0.0.1:{port})")
    by_variable = cli("workflows", WORKFLOWSTATE_TARGET=f"127.0.0.1:{port}")
    assert by_variable.returncode == 3
    assert f"(target 127.0.0.1:{port})" in by_variable.stderr


# --- cancel -----------------------------------------------------------------------------------


def test_cancel_by_id_is_in_the_database(client: WorkflowStateClient, db: psycopg.Connection, server_target: str, unique: str) -> None:
    run_id = client.create_run(f"cli-cancel-{unique}").run_id
    other = client.create_run(f"cli-cancel-{unique}").run_id
    cancelled = cli("runs", "cancel", run_id, "--reason", "operator said so", "--target", server_target)
    assert (cancelled.returncode, cancelled.stdout) == (0, f"cancelled {run_id}\n"), cancelled.stderr
    assert run_status(db, run_id) == "cancelled"
    assert db.execute("SELECT error->>'message' FROM workflows_test.runs WHERE run_id = %s", (run_id,)).fetchone() == ("operator said so",)
    assert run_status(db, other) == "running"

    finished = make_failed_run(client, f"cli-cancel-{unique}")
    both = cli("runs", "cancel", finished, other, "--json", "--target", server_target)
    assert both.returncode == 1  # one refused, the other still done
    assert both.stderr.startswith("workflowstate: FAILED_PRECONDITION: ")
    (line,) = json_lines(both.stdout)
    assert (set(line), line["run_id"], line["status"]) == (RUN_KEYS, other, "cancelled")
    assert run_status(db, other) == "cancelled"


def test_bulk_cancel_asks_first_then_cancels_what_matches(client: WorkflowStateClient, db: psycopg.Connection, server_target: str, unique: str) -> None:
    workflow = f"cli-bulk-cancel-{unique}"
    ids = [client.create_run(workflow).run_id for _ in range(3)]
    finished = make_failed_run(client, workflow)
    bystander = client.create_run(f"{workflow}-other").run_id
    filters = ("runs", "cancel", "--workflow", workflow, "--status", "running", "--target", server_target)

    unconfirmed = cli(*filters)
    assert unconfirmed.returncode == 1
    assert unconfirmed.stderr == f"workflowstate: would cancel 3 running run(s) of workflow '{workflow}'; pass --yes to do it\n"
    assert [run_status(db, run_id) for run_id in ids] == ["running"] * 3

    first = cli(*filters, "--max", "2", "--yes", "--json")
    assert first.returncode == 0, first.stderr
    assert json_lines(first.stdout) == [{"run_id": ids[0], "cancelled": True}, {"run_id": ids[1], "cancelled": True}]  # oldest first
    rest = cli(*filters, "--yes")
    assert (rest.returncode, rest.stdout, rest.stderr) == (0, f"cancelled {ids[2]}\n", "cancelled 1 run(s)\n")
    assert [run_status(db, run_id) for run_id in ids] == ["cancelled"] * 3
    assert (run_status(db, finished), run_status(db, bystander)) == ("failed", "running")

    nothing = cli(*filters)
    assert (nothing.returncode, nothing.stderr) == (0, f"no running run(s) of workflow '{workflow}' match\n")


# --- delete -----------------------------------------------------------------------------------


def test_delete_by_id_leaves_no_row(client: WorkflowStateClient, db: psycopg.Connection, run_cli: Callable[..., tuple[int, str, str]], unique: str) -> None:
    finished = make_failed_run(client, f"cli-delete-{unique}")
    running = client.create_run(f"cli-delete-{unique}").run_id
    assert run_cli("runs", "delete", finished) == (0, f"deleted {finished}\n", "")
    assert run_status(db, finished) is None
    assert db.execute("SELECT count(*) FROM workflows_test.steps WHERE run_id = %s", (finished,)).fetchone() == (0,)

    code, out, err = run_cli("runs", "delete", running)
    assert (code, out) == (1, "")
    assert err.startswith("workflowstate: FAILED_PRECONDITION: ")
    assert run_status(db, running) == "running"
    assert run_cli("runs", "delete", running, "--force", "--json") == (0, json.dumps({"run_id": running, "deleted": True}, separators=(",", ":")) + "\n", "")
    assert run_status(db, running) is None
    code, _, err = run_cli("runs", "delete", running)
    assert code == 1 and err.startswith("workflowstate: NOT_FOUND: ")


def test_bulk_delete_by_status(client: WorkflowStateClient, db: psycopg.Connection, server_target: str, unique: str) -> None:
    workflow = f"cli-bulk-delete-{unique}"
    failed = [make_failed_run(client, workflow) for _ in range(2)]
    running = client.create_run(workflow).run_id
    filters = ("runs", "delete", "--workflow", workflow, "--target", server_target)

    unconfirmed = cli(*filters, "--since", "1h")
    assert unconfirmed.returncode == 1
    assert unconfirmed.stderr.startswith(f"workflowstate: would delete 2 completed/failed/cancelled run(s) of workflow '{workflow}' created since ")
    assert [run_status(db, run_id) for run_id in failed] == ["failed", "failed"]

    deleted = cli(*filters, "--status", "failed", "--yes", "--json")
    assert deleted.returncode == 0, deleted.stderr
    assert json_lines(deleted.stdout) == [{"run_id": run_id, "deleted": True} for run_id in failed]
    assert [run_status(db, run_id) for run_id in failed] == [None, None]
    assert run_status(db, running) == "running"

    forced = cli(*filters, "--force", "--yes")
    assert (forced.returncode, forced.stdout) == (0, f"deleted {running}\n"), forced.stderr
    assert run_status(db, running) is None


# --- workflows and leases -------------------------------------------------------------------


def test_workflows(client: WorkflowStateClient, run_cli: Callable[..., tuple[int, str, str]], unique: str) -> None:
    workflow = f"cli-workflows-{unique}"
    make_failed_run(client, workflow)
    client.create_run(workflow)
    code, out, _ = run_cli("workflows", "--json")
    assert code == 0
    mine = [line for line in json_lines(out) if line["workflow"] == workflow]
    assert mine == [{"workflow": workflow, "run_counts": {"running": 1, "completed": 0, "failed": 1, "cancelled": 0, "suspended": 0}}]
    code, out, _ = run_cli("workflows")
    lines = out.splitlines()
    assert lines[0].split() == ["WORKFLOW", "RUNNING", "COMPLETED", "FAILED", "CANCELLED", "SUSPENDED", "TOTAL"]
    assert [line.split() for line in lines if line.startswith(workflow + " ")] == [[workflow, "1", "0", "1", "0", "0", "2"]]


def test_leases(client: WorkflowStateClient, run_cli: Callable[..., tuple[int, str, str]], unique: str) -> None:
    prefix = f"cli-{unique}:"
    with client.lease(prefix + "a", holder="holder-a") as lease_a, client.lease(prefix + "b", holder="holder-b"):
        code, out, _ = run_cli("leases", "--prefix", prefix, "--json")
        assert code == 0
        lines = json_lines(out)
        assert [(line["key"], line["holder"]) for line in lines] == [(prefix + "a", "holder-a"), (prefix + "b", "holder-b")]
        assert set(lines[0]) == {"key", "holder", "fencing_token", "acquire_time", "expire_time"}
        assert lines[0]["fencing_token"] == lease_a.fencing_token
        code, out, err = run_cli("leases", "--prefix", prefix, "--limit", "1")
        table = out.splitlines()
        assert table[0].split() == ["KEY", "HOLDER", "TOKEN", "ACQUIRED", "EXPIRES"]
        assert table[1].split()[:3] == [prefix + "a", "holder-a", str(lease_a.fencing_token)]
        assert len(table) == 2 and "more held" in err
    assert run_cli("leases", "--prefix", prefix, "--json")[1] == ""


# --- tokens ---------------------------------------------------------------------------------


def test_token_gives_the_role(start_server: Callable[..., ServerProcess], tmp_path: Path, unique: str) -> None:
    read_token, admin_token = f"cli-read-{uuid.uuid4().hex}", f"cli-admin-{uuid.uuid4().hex}"
    tokens = tmp_path / "tokens.txt"
    tokens.write_text(token_line(read_token, Role.READ) + "\n" + token_line(admin_token, Role.ADMIN) + "\n")
    server = start_server("--auth-tokens", str(tokens))
    with WorkflowStateClient(server.target, token=admin_token) as admin:
        run_id = admin.create_run(f"cli-auth-{unique}").run_id

    listed = cli("runs", "list", "--json", "--target", server.target, "--token", read_token)
    assert listed.returncode == 0, listed.stderr
    assert [line["run_id"] for line in json_lines(listed.stdout)] == [run_id]
    refused = cli("runs", "cancel", run_id, "--target", server.target, WORKFLOWSTATE_TOKEN=read_token)
    assert refused.returncode == 1
    assert refused.stderr.startswith("workflowstate: PERMISSION_DENIED: ")
    anonymous = cli("runs", "list", "--target", server.target)
    assert anonymous.returncode == 1
    assert anonymous.stderr.startswith("workflowstate: UNAUTHENTICATED: ")
    assert read_token not in refused.stderr + listed.stderr
    cancelled = cli("runs", "cancel", run_id, "--target", server.target, WORKFLOWSTATE_TOKEN=admin_token)
    assert (cancelled.returncode, cancelled.stdout) == (0, f"cancelled {run_id}\n"), cancelled.stderr


def test_the_commands_need_only_the_base_install() -> None:
    """With psycopg not importable (the base install has none), the commands still run."""
    code = (
        "import sys; sys.modules['psycopg'] = None; sys.modules['psycopg_pool'] = None\n"
        "from workflowstate.server.ops.cli import main\n"
        f"sys.exit(main(['runs', 'list', '--target', '127.0.0.1:{closed_port()}']))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_environment(), timeout=120)
    assert result.returncode == 3, result.stderr  # got as far as calling the server
    assert "psycopg" not in result.stderr


@pytest.mark.parametrize(("answer", "code", "status"), [("n", 1, "running"), ("y", 0, "cancelled")])
def test_bulk_cancel_asks_at_a_terminal(
    answer: str, code: int, status: str, client: WorkflowStateClient, db: psycopg.Connection, server_target: str, unique: str
) -> None:
    workflow = f"cli-prompt-{unique}"
    run_id = client.create_run(workflow).run_id
    controller, terminal = pty.openpty()
    try:
        os.write(controller, f"{answer}\n".encode())  # typed ahead: the terminal keeps it until read
        result = subprocess.run(
            [sys.executable, "-m", "workflowstate.server", "runs", "cancel", "--workflow", workflow, "--target", server_target],
            stdin=terminal, capture_output=True, text=True, env=_environment(), timeout=120,
        )  # fmt: skip
    finally:
        os.close(terminal)
        os.close(controller)
    assert result.returncode == code, result.stderr
    assert result.stdout.startswith(f"cancel 1 running/suspended run(s) of workflow '{workflow}'? [y/N] ")
    assert run_status(db, run_id) == status
