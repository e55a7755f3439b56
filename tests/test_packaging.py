"""A regular (non-editable) install carries everything the server reads at run time, and the workflow engine."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_wheel_has_every_server_module_sql_file_stub_and_type_marker(tmp_path: Path) -> None:
    # Built from a copy: a build/ folder left in the repo by an earlier build could hide a file
    # the package configuration forgets.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    for folder in ("src", "client", "server"):
        shutil.copytree(REPO / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(tmp_path), str(source)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    (wheel,) = tmp_path.glob("workflowstate-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        "workflowstate/server/" + str(path.relative_to(REPO / "server"))
        for path in (REPO / "server").rglob("*")
        if path.suffix in {".sql", ".py"} and "__pycache__" not in path.parts
    } | {
        "workflowstate/v1/" + path.name for path in (REPO / "src" / "workflowstate" / "v1").iterdir() if path.suffix in {".py", ".pyi", ".typed"}
    } | {"workflowstate/client/py.typed", "workflowstate/workflows/py.typed"} | {
        "workflowstate/workflows/" + path.name for path in (REPO / "client" / "workflows").glob("*.py")
    }
    assert len(expected) > 8
    assert expected <= names, sorted(expected - names)
