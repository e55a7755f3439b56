"""Clients of the previous release keep working: its generated stubs call every unary RPC of this server.

tests/contract/previous holds workflow_state_pb2.py and workflow_state_pb2_grpc.py as generated
in 0.1.0, when every message lived in workflow_state.proto. They run in a process of their own
(tests/support/previous_release_calls.py): the old and the new descriptors share a file name and
every message name, so one process cannot load both.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent
PREVIOUS_STUBS = TESTS / "contract" / "previous"
CALLS = TESTS / "support" / "previous_release_calls.py"
# Outcomes that would mean the server no longer understands the old call, or failed on it.
BROKEN = ("UNIMPLEMENTED", "INTERNAL", "UNKNOWN")


def install_previous_stubs(root: Path) -> Path:
    """Lay the previous release's stubs out as the package workflowstate.v1 under root, alone."""
    package = root / "workflowstate" / "v1"
    package.mkdir(parents=True)
    (root / "workflowstate" / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    for name in ("workflow_state_pb2.py", "workflow_state_pb2_grpc.py"):
        shutil.copy(PREVIOUS_STUBS / name, package / name)
    return root


def test_previous_release_stubs_call_every_unary_rpc(start_server, tmp_path: Path) -> None:
    # A server of its own: the lists (workers, schedules, stalled runs...) hold only this test's rows.
    server = start_server()
    stubs_root = install_previous_stubs(tmp_path / "previous")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(stubs_root), str(TESTS)])}

    result = subprocess.run(
        [sys.executable, str(CALLS), server.target], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180
    )

    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert Path(report["stubs"]).is_relative_to(stubs_root), "the calls must go through the previous release's stubs"
    outcomes: dict[str, list[list[str]]] = report["outcomes"]
    assert sorted(outcomes) == report["unary_methods"], "every unary RPC of the previous release is called, and only those"
    broken = {method: seen for method, seen in outcomes.items() if any(code in BROKEN for code, _ in seen)}
    assert broken == {}, "each call gets a real outcome: OK or a refusal, never a sign that the server failed on it"
    without_reason = {method: seen for method, seen in outcomes.items() if any(code != "OK" and not reason for code, reason in seen)}
    assert without_reason == {}, "every refusal carries its reason"
