"""The examples run as users run them: a subprocess against the session server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from workflowstate.client import RunStatus, StepStatus, WorkflowStateClient

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_order_workflow_runs_to_completion(server_target: str) -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "order_workflow.py"), "--target", server_target],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("run ") and lines[0].endswith(" started")
    run_id = lines[0].split()[1]
    assert "  charge   attempt 1: failed" in lines
    assert lines[-2:-1] == ["run completed"]

    with WorkflowStateClient(server_target) as client:
        run = client.get_run(run_id)
        assert run is not None and run.status is RunStatus.COMPLETED
        assert run.output["charged"] == 25 and run.output["tracking"].startswith("T-R-2-")
        history = client.get_run_history(run_id)
        assert [(a.step_name, a.attempt, a.status) for a in history] == [
            ("reserve", 1, StepStatus.SUCCEEDED),
            ("charge", 1, StepStatus.FAILED),
            ("charge", 2, StepStatus.SUCCEEDED),
            ("ship", 1, StepStatus.SUCCEEDED),
        ]
        assert history[1].error is not None and history[1].error.message == "card gateway timed out"
