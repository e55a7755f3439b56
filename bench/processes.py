"""The gRPC lifecycle from several client processes at once, so one Python process is not the limit.

The parent starts ``python -m bench.processes TARGET CONCURRENCY WARMUP SECONDS CONNECTIONS BATCHING``
per process (BATCHING: ``batched`` or ``unbatched``, the client's batching setting).
Each child imports everything, says ``ready``, waits for ``go`` on stdin (so all start together),
runs the lifecycle loop and prints its tally as one JSON line; the parent merges the tallies.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from .loop import OVERRUN_S
from .stats import Tally, merge

ROOT = Path(__file__).resolve().parent.parent
"""The folder holding the bench package: the children run from it, so `-m bench.processes` resolves."""

START_TIMEOUT_S = 60.0

_BATCHING = {True: "batched", False: "unbatched"}


async def measure_in_processes(
    target: str, processes: int, concurrency: int, *, warmup: float, seconds: float, connections: int = 1,
    batching: bool = True,
) -> Tally:
    """``processes`` client processes, each running ``concurrency`` lifecycles at a time over
    ``connections`` connections, with the client's batching on or off."""
    command = [
        sys.executable, "-m", "bench.processes", target, str(concurrency), repr(warmup), repr(seconds), str(connections),
        _BATCHING[batching],
    ]  # fmt: skip
    children: list[asyncio.subprocess.Process] = []
    try:
        for _ in range(processes):
            children.append(
                await asyncio.create_subprocess_exec(
                    *command, cwd=ROOT, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
                )
            )
        async with asyncio.timeout(START_TIMEOUT_S):
            for child in children:
                await _expect_ready(child)
        for child in children:
            assert child.stdin
            child.stdin.write(b"go\n")
            child.stdin.close()
        async with asyncio.timeout(warmup + seconds + OVERRUN_S):
            outputs = await asyncio.gather(*(child.communicate() for child in children))
        for child in children:
            if child.returncode != 0:
                raise RuntimeError(f"a client process exited with {child.returncode}")
        return merge(_read_tally(stdout) for stdout, _ in outputs)
    finally:
        for child in children:
            if child.returncode is None:
                child.kill()
                await child.wait()


async def _expect_ready(child: asyncio.subprocess.Process) -> None:
    assert child.stdout
    line = await child.stdout.readline()
    if line.strip() != b"ready":
        await child.wait()
        raise RuntimeError(f"a client process did not start (exit code {child.returncode})")


def _read_tally(stdout: bytes) -> Tally:
    report = json.loads(stdout.decode().strip().splitlines()[-1])
    window = report.get("window")
    return Tally(count=report["count"], seconds=report["seconds"], latencies_ms=report["latencies_ms"],
                 window=tuple(window) if window else None)  # fmt: skip


def _child(argv: list[str]) -> int:
    from . import lifecycle

    target, concurrency, warmup, seconds, connections = argv[0], int(argv[1]), float(argv[2]), float(argv[3]), int(argv[4])
    batching = {text: value for value, text in _BATCHING.items()}[argv[5]]
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        return 2
    tally = asyncio.run(
        lifecycle.measure(target, concurrency, warmup=warmup, seconds=seconds, connections=connections, batching=batching)
    )
    report = {
        "count": tally.count,
        "seconds": tally.seconds,
        "latencies_ms": [round(latency, 3) for latency in tally.latencies_ms],
        "window": tally.window,
    }
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
