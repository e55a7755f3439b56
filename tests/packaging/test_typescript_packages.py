"""The TypeScript packages as a user gets them: `npm pack` of @workflowstate/client and
@workflowstate/pikku, installed into a fresh project outside the repository, which is made of the
README's own blocks (its package.json, its tsconfig.json, the quick start and the Pikku example) and
runs against a real server. The README cannot drift from what works."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

from support.server_process import ServerProcess
from test_typescript import TYPESCRIPT, dependencies_stale, npm

README = Path(__file__).resolve().parents[2] / "README.md"
PACKAGES = ("packages/client", "packages/pikku")

# Each npm step gets this long: the registry's packages come from npm's cache when it has them.
COMMAND_TIMEOUT = 600


def _section(title: str) -> str:
    """The README's `## title` section, up to the next section of its level."""
    text = README.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def _blocks(section: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", section, flags=re.MULTILINE | re.DOTALL)


def _run(command: list[str], cwd: Path, env: dict[str, str]) -> str:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
    assert result.returncode == 0, f"$ {' '.join(command)} in {cwd}\n{result.stdout[-4000:]}\n{result.stderr[-8000:]}"
    return result.stdout


def test_packed_packages_installed_in_a_fresh_project_run_the_readme_s_typescript_examples(
    start_server: Callable[..., ServerProcess], tmp_path: Path
) -> None:
    npm_path = npm()
    env = {key: value for key, value in os.environ.items() if not key.startswith("WORKFLOWSTATE_")}
    if dependencies_stale():
        _run([npm_path, "ci", "--no-audit", "--no-fund"], cwd=TYPESCRIPT, env=env)
    packed = tmp_path / "packed"
    packed.mkdir()
    workspaces = [argument for package in PACKAGES for argument in ("--workspace", package)]
    _run([npm_path, "pack", *workspaces, "--pack-destination", str(packed)], cwd=TYPESCRIPT, env=env)
    tarballs = sorted(packed.glob("workflowstate-*.tgz"))
    assert [tarball.name for tarball in tarballs] == ["workflowstate-client-0.1.0.tgz", "workflowstate-pikku-0.1.0.tgz"]

    # The project, as the README says to make it.
    typescript, pikku = _section("From TypeScript"), _section("With Pikku")
    package_json, tsconfig_json = _blocks(typescript, "json")
    (quickstart,), (pikku_example,) = _blocks(typescript, "ts"), _blocks(pikku, "ts")
    project = tmp_path / "project"
    project.mkdir()
    assert json.loads(package_json).get("type") == "module", "the README's package.json must make the project ESM"
    (project / "package.json").write_text(package_json)
    (project / "tsconfig.json").write_text(tsconfig_json)
    (project / "quickstart.ts").write_text(quickstart)
    (project / "pikku.ts").write_text(pikku_example)
    _run([npm_path, "install", "--no-audit", "--no-fund", "--prefer-offline", *map(str, tarballs)], cwd=project, env=env)
    resolved = _run(
        ["node", "--input-type=module", "-e", "console.log(import.meta.resolve('@workflowstate/pikku'))"], cwd=project, env=env
    )
    assert resolved.strip().startswith((project / "node_modules").as_uri()), resolved
    _run(["node", str(project / "node_modules" / "typescript" / "bin" / "tsc"), "-p", str(project)], cwd=project, env=env)

    server = start_server()
    run_env = env | {"WORKFLOWSTATE_TARGET": server.target}
    out = _run(["node", "quickstart.js"], cwd=project, env=run_env)
    assert re.search(r"^holding run:[0-9a-f-]+ with fencing token \d+$", out, flags=re.MULTILINE), out
    assert re.search(r"^charge succeeded: \{ charged: 25 \}$", out, flags=re.MULTILINE), out
    assert re.search(r"^refused: FAILED_PRECONDITION$", out, flags=re.MULTILINE), out
    out = _run(["node", "pikku.js"], cwd=project, env=run_env)
    assert out == "completed sendWelcome:succeeded\nlatest onboarding run: true\n"
