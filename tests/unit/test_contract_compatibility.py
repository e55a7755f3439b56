"""The contract keeps the previous release's wire: buf breaking against that release's image is clean.

tests/contract/previous/workflowstate-v1-0.1.0.binpb is the image of proto/ as released in 0.1.0
(`buf build proto -o ...`), before the messages moved to one file per capability. buf.yaml's
breaking category (PACKAGE) lets a message move between the package's files and refuses what
breaks a client built from that release: a renumbered field, a renamed or deleted message.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from support.buf_cli import buf_command

REPO = Path(__file__).resolve().parent.parent.parent
PREVIOUS_RELEASE_IMAGE = REPO / "tests" / "contract" / "previous" / "workflowstate-v1-0.1.0.binpb"
PACKAGE_DIR = Path("proto") / "workflowstate" / "v1"


def breaking_against_previous_release(workspace: Path) -> subprocess.CompletedProcess[str]:
    """Run buf breaking of workspace/proto (with workspace/buf.yaml) against the previous release."""
    return subprocess.run(
        [buf_command(), "breaking", "proto", "--against", str(PREVIOUS_RELEASE_IMAGE)],
        cwd=workspace,
        capture_output=True,
        text=True,
        timeout=120,
    )


def copy_of_the_contract(tmp_path: Path) -> Path:
    """A copy of buf.yaml and proto/ to change, so a test can show what buf breaking refuses."""
    shutil.copy(REPO / "buf.yaml", tmp_path / "buf.yaml")
    shutil.copytree(REPO / "proto", tmp_path / "proto")
    return tmp_path


def test_the_contract_keeps_the_previous_release_wire() -> None:
    result = breaking_against_previous_release(REPO)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_renumbered_field_breaks_the_previous_release(tmp_path: Path) -> None:
    workspace = copy_of_the_contract(tmp_path)
    runs = workspace / PACKAGE_DIR / "runs.proto"
    text = runs.read_text()
    assert "  string workflow = 1;\n" in text
    runs.write_text(text.replace("  string workflow = 1;\n", "  string workflow = 99;\n", 1))

    result = breaking_against_previous_release(workspace)

    assert result.returncode != 0
    assert 'Previously present field "1" with name "workflow" on message "CreateRunRequest" was deleted' in result.stdout, result.stdout


def test_a_renamed_message_breaks_the_previous_release(tmp_path: Path) -> None:
    workspace = copy_of_the_contract(tmp_path)
    engine = workspace / PACKAGE_DIR / "engine_state.proto"
    engine.write_text(re.sub(r"\bStepRef\b", "StepReference", engine.read_text()))

    result = breaking_against_previous_release(workspace)

    assert result.returncode != 0
    assert 'Previously present message "StepRef" was deleted from package "workflowstate.v1"' in result.stdout, result.stdout
