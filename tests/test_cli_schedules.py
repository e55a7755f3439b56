"""`workflowstate schedules list|create|pause|resume|delete` against a real server."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

import pytest

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


def test_create_list_pause_resume_delete(run_cli) -> None:
    schedule_id = f"cli-{uuid.uuid4().hex[:8]}"
    code, out, err = run_cli(
        "schedules", "create", schedule_id, "--workflow", "reports", "--cron", "0 9 * * mon-fri",
        "--timezone", "Europe/Paris", "--input", '{"kind": "daily"}', "--overlap", "allow", "--json",
    )  # fmt: skip
    assert code == 0, err
    created = json.loads(out)
    assert (created["schedule_id"], created["cron"], created["timezone"], created["overlap"], created["input"]) == (
        schedule_id, "0 9 * * mon-fri", "Europe/Paris", "allow", {"kind": "daily"},
    )  # fmt: skip
    code, out, _ = run_cli("schedules", "list")
    line = next(line for line in out.splitlines() if line.startswith(schedule_id))
    assert code == 0 and out.splitlines()[0].startswith("SCHEDULE ID") and "0 9 * * mon-fri Europe/Paris" in line
    code, out, _ = run_cli("schedules", "pause", schedule_id)
    assert code == 0 and "paused" in out
    code, out, _ = run_cli("schedules", "resume", schedule_id, "--json")
    assert code == 0 and json.loads(out)["paused"] is False
    assert run_cli("schedules", "delete", schedule_id) == (0, f"deleted schedule {schedule_id}\n", "")
    code, _, err = run_cli("schedules", "delete", schedule_id)
    assert (code, err) == (1, f"workflowstate: NOT_FOUND: schedule '{schedule_id}' not found\n")


def test_an_interval_schedule_and_bad_usage(run_cli) -> None:
    schedule_id = f"cli-{uuid.uuid4().hex[:8]}"
    code, out, err = run_cli("schedules", "create", schedule_id, "--workflow", "sync", "--every", "5m")
    assert code == 0, err
    assert "every 5m" in out
    run_cli("schedules", "delete", schedule_id)
    code, _, err = run_cli("schedules", "create", "x", "--workflow", "w", "--every", "1s", "--timezone", "Europe/Paris")
    assert (code, err) == (1, "workflowstate: INVALID_ARGUMENT: timezone applies to cron only: an interval counts from the Unix epoch in UTC\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["schedules", "create", "x", "--workflow", "w", "--cron", "* * * * *", "--every", "1m"])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit) as exit_info:
        main(["schedules", "create", "x", "--workflow", "w", "--every", "1m", "--overlap", "sometimes"])
    assert exit_info.value.code == 2
