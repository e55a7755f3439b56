"""mypy, strict, finds nothing in server/, client/, bench/ and scripts/ (pyproject.toml's [tool.mypy]).

scripts/type_check.py runs it: mypy names a file after its folders, so the script gives the files of
server/ and client/ the names they are imported under (pyproject's package-dir), which the
relative and absolute imports between them need.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
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


def test_no_package_is_exempt_from_the_type_check_wholesale() -> None:
    # An override that ignores errors may name a single module while it is being typed, never a
    # package's wildcard: new modules of that package would go unchecked without anyone noticing.
    overrides = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["mypy"].get("overrides", [])
    exempt = [module for override in overrides if override.get("ignore_errors") for module in _names(override["module"])]
    assert [module for module in exempt if "*" in module] == []


def _names(module: str | list[str]) -> list[str]:
    """An override's `module`: one name or a list of them."""
    return [module] if isinstance(module, str) else module
