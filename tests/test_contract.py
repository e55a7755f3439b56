"""The contract: buf lint is clean and the committed stubs match the proto."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from support.buf_cli import buf_command

REPO = Path(__file__).resolve().parent.parent


def test_buf_lint_is_clean() -> None:
    result = subprocess.run([buf_command(), "lint"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_buf_lint_catches_a_violation(tmp_path: Path) -> None:
    """The lint test above can fail: a field without a comment and a bad enum name are reported."""
    module = tmp_path / "proto" / "workflowstate" / "v1"
    module.mkdir(parents=True)
    (tmp_path / "buf.yaml").write_text((REPO / "buf.yaml").read_text())
    (module / "bad.proto").write_text('syntax = "proto3";\npackage workflowstate.v1;\nenum Colour { RED = 0; }\n')
    result = subprocess.run([buf_command(), "lint"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "ENUM_ZERO_VALUE_SUFFIX" in result.stdout or "UNSPECIFIED" in result.stdout, result.stdout


def test_generated_stubs_match_the_proto() -> None:
    result = subprocess.run(
        [sys.executable, "scripts/generate_stubs.py", "--check"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_python_code_passes_the_linter() -> None:
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "."], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
