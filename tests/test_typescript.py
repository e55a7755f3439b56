"""The TypeScript SDK and the Pikku adapter (clients/typescript): built with their own tsc, the
generated stubs checked against the proto, and their node:test suites (Pikku's conformance suites
among them) run against a real server started here, so one test command proves both languages."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from support.server_process import ServerProcess

TYPESCRIPT = Path(__file__).resolve().parent.parent / "clients" / "typescript"
MIN_NODE_MAJOR = 20


def npm() -> str:
    """The npm command; fails (never skips) without Node.js 20+ and npm, which the suite needs."""
    node, npm_path = shutil.which("node"), shutil.which("npm")
    assert node and npm_path, (
        f"the TypeScript tests need Node.js 20 or newer and npm on PATH (https://nodejs.org); found node={node}, npm={npm_path}"
    )
    version = subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    match = re.match(r"v(\d+)\.", version)
    assert match and int(match.group(1)) >= MIN_NODE_MAJOR, f"Node.js {MIN_NODE_MAJOR}+ is needed, found {version}"
    return npm_path


def run(command: list[str], env: dict[str, str] | None = None, timeout: float = 600) -> None:
    """Run one npm step in clients/typescript; on failure the assertion carries its whole output."""
    result = subprocess.run(command, cwd=TYPESCRIPT, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    output = f"$ {' '.join(command)}\n{result.stdout}\n{result.stderr}"
    assert result.returncode == 0, output[-20000:]


def dependencies_stale() -> bool:
    """node_modules is missing, or older than the committed lockfile (npm writes its own copy)."""
    installed = TYPESCRIPT / "node_modules" / ".package-lock.json"
    return not installed.exists() or installed.stat().st_mtime < (TYPESCRIPT / "package-lock.json").stat().st_mtime


def test_typescript_build_stubs_and_tests(start_server: Callable[..., ServerProcess], database_url: str) -> None:
    npm_path = npm()
    if dependencies_stale():
        run([npm_path, "ci", "--no-audit", "--no-fund"])
    run([npm_path, "run", "build"])
    run([npm_path, "run", "check:generated"])
    # A schema of its own: Pikku's conformance suites use fixed workflow names. Schedules of a
    # second, as scripts/test.mjs's own server takes, so that their runs come within the test's time.
    server = start_server("--schedule-min-interval", "1")
    env = {key: value for key, value in os.environ.items() if not key.startswith("WORKFLOWSTATE_")}
    env["WORKFLOWSTATE_TS_TEST_ADDRESS"] = server.target
    # npm test starts one more server itself (TLS and tokens): in this PostgreSQL, its own schema.
    env["WORKFLOWSTATE_TEST_DATABASE_URL"] = database_url
    run([npm_path, "test"], env=env)
