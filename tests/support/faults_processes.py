"""Child processes of the fault tests (workers, lease holders): started with the test's Python, always killed."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SUPPORT = Path(__file__).parent


@contextmanager
def child(script: str, *args: str, stdin: bool = False) -> Iterator[subprocess.Popen[str]]:
    """Run ``tests/support/<script>`` with ``args``; SIGKILLed (and SIGCONTed first, if stopped) when the block ends."""
    process = subprocess.Popen(
        [sys.executable, str(SUPPORT / script), *args],
        stdin=subprocess.PIPE if stdin else None,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()  # SIGKILL reaches a stopped process too
        process.wait(30)
        for pipe in (process.stdin, process.stdout):
            if pipe:
                pipe.close()
