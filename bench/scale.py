"""`python -m bench --scale`: the shapes it measures, derived from the machine's core count.

The lifecycle at conc 16/32/64 against `serve --workers N` for a few N (1, a quarter and a half of
the cores), from P client processes (a quarter of the cores) each holding conc/P lifecycles over N
connections, so the kernel spreads every client process over all N server processes.

With the client's batching, the lifecycles of one client process move in step (the replies of one
Batch wake them in one loop turn); the client cuts each turn's calls into one Batch per connection,
so every server process behind a client's N connections has work at once.
"""

from __future__ import annotations

from dataclasses import dataclass

CONCURRENCIES = (16, 32, 64)

POOL_BUDGET = 64
"""Database connections of all the server's processes together, within PostgreSQL's default
max_connections (100) whatever N is: each process's pool is this over N, 1 to 10."""

DEFAULT_POOL_SIZE = 10
"""The server's own default (`serve --pool-size`), which one process keeps."""


@dataclass(frozen=True)
class Shape:
    server_workers: int
    client_processes: int
    conc: int

    @property
    def per_process(self) -> int:
        return self.conc // self.client_processes

    @property
    def label(self) -> str:
        """w2/p4x8: `serve --workers 2`, 4 client processes x 8 lifecycles each (conc 32)."""
        return f"w{self.server_workers}/p{self.client_processes}x{self.per_process}"

    def server_args(self) -> tuple[str, ...]:
        pool_size = max(1, min(DEFAULT_POOL_SIZE, POOL_BUDGET // self.server_workers))
        return ("--workers", str(self.server_workers), "--pool-size", str(pool_size))


def server_worker_counts(cpus: int) -> tuple[int, ...]:
    """1, a quarter and a half of the cores, deduplicated; 2 at least on two cores or more, so even a
    small machine compares one process with two."""
    half = max(2, cpus // 2) if cpus >= 2 else 1
    return tuple(sorted({1, max(1, cpus // 4), half}))


def client_processes(cpus: int) -> int:
    """A quarter of the cores, so the clients are not the bound; a power of two up to 16, so it divides
    every concurrency."""
    wanted = min(max(1, cpus // 4), min(CONCURRENCIES))
    return 1 << (wanted.bit_length() - 1)


def shapes(cpus: int) -> list[Shape]:
    processes = client_processes(cpus)
    return [Shape(workers, processes, conc) for workers in server_worker_counts(cpus) for conc in CONCURRENCIES]
