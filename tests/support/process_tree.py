"""Processes read from /proc (Linux): a process's descendants, and whether one is still alive.

A process is named by its pid and its start time (field 22 of /proc/PID/stat), so that a pid the
kernel gave to a newer process is never mistaken for the one recorded. A zombie counts as ended:
it runs nothing, holds no port, and only waits for whoever adopted it to reap it.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (which may hold spaces), or None when gone."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return text[text.rindex(")") + 2 :].split()


@dataclass(frozen=True)
class ProcessId:
    """One process: its pid and its start time, in clock ticks after boot."""

    pid: int
    start_time: int

    @classmethod
    def of(cls, pid: int) -> ProcessId | None:
        fields = _stat_fields(pid)
        return None if fields is None else cls(pid, int(fields[19]))

    def alive(self) -> bool:
        fields = _stat_fields(self.pid)
        return fields is not None and int(fields[19]) == self.start_time and fields[0] not in ("Z", "X")

    def command(self) -> str:
        try:
            return (PROC / str(self.pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except (FileNotFoundError, ProcessLookupError):
            return "(gone)"

    def kill(self) -> None:
        """SIGKILL, if it is still this process."""
        if self.alive():
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _parents() -> dict[int, int]:
    """Every process's parent pid."""
    parents = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None:
                parents[int(entry.name)] = int(fields[1])
    return parents


def descendants(pid: int) -> list[ProcessId]:
    """The children of pid, their children, and so on, as they are now."""
    children: dict[int, list[int]] = {}
    for child, parent in _parents().items():
        children.setdefault(parent, []).append(child)
    found, todo = [], list(children.get(pid, []))
    while todo:
        child = todo.pop()
        process = ProcessId.of(child)
        if process is not None:
            found.append(process)
        todo.extend(children.get(child, []))
    return found


def tree(pid: int) -> list[ProcessId]:
    """pid itself (when it still runs) and its descendants."""
    root = ProcessId.of(pid)
    return ([root] if root is not None else []) + descendants(pid)
