"""mypy, strict, finds nothing in server/, client/, bench/ and scripts/ (pyproject.toml's [tool.mypy]).

scripts/type_check.py runs it: mypy names a file after its folders, so the script gives the files of
server/ and client/ the names they are imported under (pyproject's package-dir), which the
relative and absolute imports between them need.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))
import type_check  # noqa: E402


def test_mypy_strict_reports_nothing() -> None:
    result = subprocess.run([sys.executable, "scripts/type_check.py"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_files_of_the_mapped_folders_are_checked_under_their_import_names() -> None:
    folders = type_check.mapped_folders()
    assert type_check.real_module(REPO / "server" / "ops" / "cli.py", folders) == "workflowstate.server.ops.cli"
    assert type_check.real_module(REPO / "client" / "__init__.py", folders) == "workflowstate.client"
    assert type_check.real_module(REPO / "bench" / "cli.py", folders) is None
