"""Side effects of test workflows' step functions, counted outside the server: one line per call in a file.

Each process appends to its own file in a folder (one ``os.write`` of a short line with O_APPEND:
whole or absent, even when the process is SIGKILLed), so a test counts how many times each step
function ran for each attempt, whichever engine or worker ran it.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path


def record_call(folder: str | Path, run_id: str, step_name: str, attempt: int) -> None:
    """Note one call of a step function: run, step, attempt."""
    path = Path(folder) / f"calls-{os.getpid()}.log"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, f"{run_id}\t{step_name}\t{attempt}\n".encode())  # tabs: step names may hold spaces
    finally:
        os.close(fd)


def calls(folder: str | Path) -> Counter[tuple[str, str, int]]:
    """How many times each (run, step, attempt) was called, over every process's file."""
    counted: Counter[tuple[str, str, int]] = Counter()
    for path in Path(folder).glob("calls-*.log"):
        for line in path.read_text().splitlines():
            run_id, step_name, attempt = line.split("\t")
            counted[(run_id, step_name, int(attempt))] += 1
    return counted
