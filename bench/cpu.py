"""Where the CPU of a figure goes: the clients, the server under test, and PostgreSQL, per unit.

A sampler reads the CPU time (user + system, from /proc/<pid>/stat) of three sets of processes
every SAMPLE_S while a figure runs; a figure's window (its start and end on CLOCK_MONOTONIC, which
`time.perf_counter` reads in every process on Linux) then gives each set's CPU within the window,
interpolated between the samples around its ends. Divided by the units counted in the window, that
is the CPU one unit costs on each side:
- server: every process whose command line runs `workflowstate.server` (the server under test, and
  the second server of the two-server figures), with their children;
- postgres: the postmaster of the bench's database and its children (backends, WAL writer,
  checkpointer...), when it runs on this machine (else unknown);
- client: every other process below the bench's own (the bench itself, its client processes,
  pgbench, Node).
A process that ends keeps counting with the CPU of its last sample (so no side's total ever goes
down); what it spent after that sample is missed, which the figures avoid by keeping their
processes and connections for the whole window.
The sampler itself costs the client side about 1% of a core.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

SAMPLE_S = 0.1
_TICKS_PER_S = os.sysconf("SC_CLK_TCK")
_SERVER_MARK = b"workflowstate.server"


@dataclass(frozen=True)
class CpuSplit:
    """CPU seconds of each side (postgres None: its processes are not on this machine)."""

    client: float
    server: float
    postgres: float | None

    def __sub__(self, other: CpuSplit) -> CpuSplit:
        postgres = None if self.postgres is None or other.postgres is None else self.postgres - other.postgres
        return CpuSplit(self.client - other.client, self.server - other.server, postgres)

    def scaled(self, factor: float) -> CpuSplit:
        return CpuSplit(self.client * factor, self.server * factor, None if self.postgres is None else self.postgres * factor)


def _stat(pid: int) -> tuple[int, float] | None:
    """A process's parent and its CPU seconds so far; None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: the fields after it follow the last ")".
    fields = text[text.rindex(b")") + 2 :].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICKS_PER_S


def _is_server(pid: int) -> bool:
    try:
        return _SERVER_MARK in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


class CpuReader:
    """The CPU seconds so far of the bench's clients, its servers, and the database's postmaster tree."""

    def __init__(self, postmaster: int | None) -> None:
        self._me = os.getpid()
        self._postmaster = postmaster
        self._servers: set[int] = set()
        self._not_servers: set[int] = set()
        # Each process's side and CPU when last read, and what the processes gone since had spent.
        self._last: dict[int, tuple[str, float]] = {}
        self._departed = {"client": 0.0, "server": 0.0, "postgres": 0.0}

    def read(self) -> CpuSplit:
        stats: dict[int, tuple[int, float]] = {}
        for entry in os.scandir("/proc"):
            if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
                stats[int(entry.name)] = stat
        children: dict[int, list[int]] = {}
        for pid, (parent, _) in stats.items():
            children.setdefault(parent, []).append(pid)
        sides = dict(self._departed)
        now: dict[int, tuple[str, float]] = {}
        # Walk down from the bench and from the postmaster; a server's subtree is the server's side.
        pending = [(self._me, "client")]
        if self._postmaster is not None and self._postmaster in stats:
            pending.append((self._postmaster, "postgres"))
        seen: set[int] = set()
        while pending:
            pid, side = pending.pop()
            if pid in seen:
                continue
            seen.add(pid)
            if side == "client" and pid == self._postmaster:
                continue  # an embedded postmaster started by the bench: walked as postgres
            if side == "client" and self._server(pid):
                side = "server"
            sides[side] += stats[pid][1]
            now[pid] = (side, stats[pid][1])
            pending.extend((child, side) for child in children.get(pid, ()))
        for pid, (side, spent) in self._last.items():
            if pid not in now:
                self._departed[side] += spent
                sides[side] += spent
        self._last = now
        postgres = sides["postgres"] if self._postmaster is not None and self._postmaster in stats else None
        return CpuSplit(sides["client"], sides["server"], postgres)

    def _server(self, pid: int) -> bool:
        if pid in self._servers:
            return True
        if pid in self._not_servers:
            return False
        (self._servers if _is_server(pid) else self._not_servers).add(pid)
        return pid in self._servers


class CpuSampler:
    """Samples of a CpuReader over time, and the CPU each side spent between two moments."""

    def __init__(self, reader: CpuReader) -> None:
        self._reader = reader
        self._times: list[float] = []
        self._splits: list[CpuSplit] = []

    def sample(self) -> None:
        self._times.append(time.perf_counter())
        self._splits.append(self._reader.read())

    def between(self, start: float, end: float) -> CpuSplit | None:
        """Each side's CPU from start to end; None unless samples surround both."""
        if not self._times or start < self._times[0] or end > self._times[-1] or end <= start:
            return None
        return self._at(end) - self._at(start)

    def _at(self, moment: float) -> CpuSplit:
        after = bisect.bisect_left(self._times, moment)
        if self._times[after] == moment or after == 0:
            return self._splits[after]
        t0, t1 = self._times[after - 1], self._times[after]
        s0, s1 = self._splits[after - 1], self._splits[after]
        return _lerp(s0, s1, (moment - t0) / (t1 - t0))


def _lerp(first: CpuSplit, second: CpuSplit, fraction: float) -> CpuSplit:
    step = (second - first).scaled(fraction)
    postgres = None if first.postgres is None or step.postgres is None else first.postgres + step.postgres
    return CpuSplit(first.client + step.client, first.server + step.server, postgres)


@contextlib.asynccontextmanager
async def sampling(reader: CpuReader) -> AsyncIterator[CpuSampler]:
    """Sample every SAMPLE_S while the block runs (and once more at its end)."""
    sampler = CpuSampler(reader)

    async def keep_sampling() -> None:
        while True:
            sampler.sample()
            await asyncio.sleep(SAMPLE_S)

    task = asyncio.get_running_loop().create_task(keep_sampling())
    try:
        yield sampler
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        sampler.sample()


async def postmaster_of(database_url: str) -> int | None:
    """The pid of the database's postmaster when it runs on this machine (the parent of this
    connection's backend, if /proc shows it as a postgres process), else None."""
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        row = await (await conn.execute("SELECT pg_backend_pid()")).fetchone()
        assert row is not None
        stat = _stat(int(row[0]))  # while the backend lives
    if stat is None:
        return None
    parent = stat[0]
    try:
        name = Path(f"/proc/{parent}/comm").read_text().strip()
    except OSError:
        return None
    return parent if name.startswith("postgres") else None
