"""Pikku workflows: the same inline two-step Pikku workflow on Pikku's own PostgreSQL backend
(`@pikku/pg`) and on workflowstate (`@workflowstate/pikku`), the two a Pikku user chooses between.

The workflows run in a Node program, bench/pikku/workflows.mjs, one process per figure; this
module gets it ready (the TypeScript packages it links to built, its own packages installed from
its committed lockfile, as tests/test_typescript.py installs them), starts it pointed at the
bench's PostgreSQL or server, and reads its tally, a JSON line on stdout.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
from pathlib import Path

from psycopg.conninfo import conninfo_to_dict

from .loop import OVERRUN_S
from .stats import Tally

ROOT = Path(__file__).resolve().parent.parent
PROGRAM_DIR = Path(__file__).resolve().parent / "pikku"
PROGRAM = PROGRAM_DIR / "workflows.mjs"
TYPESCRIPT = ROOT / "clients" / "typescript"
LINKED_PACKAGES = ("packages/client", "packages/pikku")
"""The packages of clients/typescript the program links to (package.json's `file:` links)."""

CONCURRENCY = 16
"""Workflows in flight, in one Node process, for both backends."""

MIN_NODE_MAJOR = 20
PREPARE_TIMEOUT_S = 600.0
START_S = 30.0
"""Allowance for Node to start, load Pikku and connect, on top of warm-up, window and overrun."""

LIBPQ_VARIABLES = {"host": "PGHOST", "port": "PGPORT", "user": "PGUSER", "password": "PGPASSWORD", "dbname": "PGDATABASE"}


async def prepare() -> None:
    """Check Node and npm, install and build what the program needs; raise saying what is missing."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise RuntimeError(
            f"the pikku figures need Node.js {MIN_NODE_MAJOR}+ and npm on PATH (found node={node}, npm={npm});"
            " leave them out with --only"
        )
    version = (await _run([node, "--version"], ROOT)).strip()
    found = re.match(r"v(\d+)\.", version)
    if not found or int(found.group(1)) < MIN_NODE_MAJOR:
        raise RuntimeError(f"the pikku figures need Node.js {MIN_NODE_MAJOR}+, found {version}")
    await _install(npm, TYPESCRIPT)
    await _run([npm, "exec", "--", "tsc", "-b", *LINKED_PACKAGES], TYPESCRIPT)  # incremental: quick when built
    await _install(npm, PROGRAM_DIR)


async def measure(
    backend: str, *, database_url: str, pg_schema: str, target: str, warmup: float, seconds: float
) -> Tally:
    """CONCURRENCY inline workflows at a time on ``backend`` ("pg": @pikku/pg with its tables in
    ``pg_schema``; "workflowstate": the server at ``target``)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("WORKFLOWSTATE_")}
    if backend == "pg":
        # The URL's parts as libpq's variables, over any the caller set (as libpq reads them).
        params = conninfo_to_dict(database_url)
        env.update({variable: str(params[key]) for key, variable in LIBPQ_VARIABLES.items() if params.get(key)})
        env["PG_SCHEMA"] = pg_schema
    else:
        env["WORKFLOWSTATE_TARGET"] = target
    node = shutil.which("node") or "node"
    command = [node, str(PROGRAM), backend, str(CONCURRENCY), repr(warmup), repr(seconds)]
    output = await _run(command, PROGRAM_DIR, env=env, timeout=START_S + warmup + seconds + OVERRUN_S)
    report = json.loads(output.strip().splitlines()[-1])
    window = report.get("window")
    return Tally(count=report["count"], seconds=report["seconds"], latencies_ms=report["latencies_ms"],
                 window=tuple(window) if window else None)  # fmt: skip


async def _install(npm: str, folder: Path) -> None:
    """`npm ci` in ``folder`` when its node_modules is missing or older than its lockfile."""
    installed = folder / "node_modules" / ".package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < (folder / "package-lock.json").stat().st_mtime:
        await _run([npm, "ci", "--no-audit", "--no-fund"], folder)


async def _run(command: list[str], cwd: Path, *, env: dict[str, str] | None = None, timeout: float = PREPARE_TIMEOUT_S) -> str:
    """Run a command; its stdout, or raise with the end of its output."""
    process = await asyncio.create_subprocess_exec(
        *command, cwd=cwd, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        async with asyncio.timeout(timeout):
            stdout, stderr = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    if process.returncode != 0:
        output = (stdout + stderr).decode(errors="replace")
        raise RuntimeError(f"{' '.join(command[:3])} … in {cwd} exited with {process.returncode}:\n{output[-3000:]}")
    return stdout.decode()
