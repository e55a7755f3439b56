"""The buf CLI the contract tests run: lint and breaking-change checks of proto/."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def buf_command() -> str:
    """The buf binary: buf-bin (a test dependency) installs it beside the interpreter."""
    beside = Path(sys.executable).parent / "buf"
    found = str(beside) if beside.exists() else shutil.which("buf")
    assert found, "buf not found: install the test extras (pip install -e '.[test]')"
    return found
