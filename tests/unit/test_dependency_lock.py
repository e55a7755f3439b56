"""constraints.txt, the lock every documented install uses, agrees with pyproject.toml.

The README's commands, .ci/run and the Dockerfile install with `-c constraints.txt`, so what they
get is what the lock says; these tests keep the lock complete, exact and within pyproject's ranges.
"""

from __future__ import annotations

import re
import tomllib
from collections import Counter
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
LOCK = REPO / "constraints.txt"
PROJECT = "workflowstate"


def _declared() -> list[Requirement]:
    """Every requirement of the base install and of every extra, but the project's own extras."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    lines = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        lines.extend(extra)
    return [req for req in map(Requirement, lines) if canonicalize_name(req.name) != PROJECT]


def _lock_lines() -> list[str]:
    return [line.strip() for line in LOCK.read_text().splitlines() if line.strip() and not line.startswith("#")]


def _pins() -> dict[str, str]:
    return {canonicalize_name(req.name): str(req.specifier).removeprefix("==") for req in map(Requirement, _lock_lines())}


def test_every_lock_line_is_one_exact_pin() -> None:
    for line in _lock_lines():
        req = Requirement(line)
        (spec,) = req.specifier
        assert spec.operator == "==" and not req.extras and req.marker is None and req.url is None, line


def test_lock_names_each_package_once() -> None:
    counts = Counter(canonicalize_name(Requirement(line).name) for line in _lock_lines())
    assert [name for name, count in counts.items() if count > 1] == []


def test_lock_leaves_out_the_project_itself() -> None:
    # An editable install of this repository must come from the work tree, never from a pin.
    assert PROJECT not in _pins()


def test_every_declared_dependency_is_pinned_within_its_range() -> None:
    pins = _pins()
    declared = _declared()
    assert len(declared) > 10
    for req in declared:
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is in pyproject.toml but not in constraints.txt"
        assert req.specifier.contains(pins[name], prereleases=True), (
            f"constraints.txt pins {req.name}=={pins[name]}, outside pyproject.toml's {req.specifier}"
        )


def _installed_closure(roots: list[Requirement]) -> set[str]:
    """The distributions installed here for `roots` and, in turn, for their own requirements."""
    seen: set[tuple[str, tuple[str, ...]]] = set()
    pending: list[tuple[Requirement, tuple[str, ...]]] = [(req, ()) for req in roots]
    while pending:
        req, asked_extras = pending.pop()
        # A marker such as `extra == "pool"` refers to the extras the requiring package was asked for.
        if req.marker is not None and not any(req.marker.evaluate({"extra": extra}) for extra in asked_extras or ("",)):
            continue
        name, extras = canonicalize_name(req.name), tuple(sorted(req.extras))
        if (name, extras) in seen:
            continue
        try:
            requires = metadata.distribution(name).requires or []
        except metadata.PackageNotFoundError:
            continue  # not installed on this platform or Python
        seen.add((name, extras))
        pending.extend((Requirement(line), extras) for line in requires)
    return {name for name, _ in seen}


def test_every_installed_dependency_is_pinned() -> None:
    # Pins of the direct dependencies alone would let their own dependencies float.
    missing = sorted(_installed_closure(_declared()) - set(_pins()))
    assert missing == [], f"installed for pyproject.toml's requirements but not pinned in constraints.txt: {missing}"


def test_extras_of_dependencies_are_pinned_too() -> None:
    # psycopg[binary,pool] brings psycopg-binary: an install from the lock must not resolve it freely.
    pins = _pins()
    assert "psycopg-binary" in pins and pins["psycopg-binary"] == pins["psycopg"]


def test_lock_says_how_to_regenerate_it() -> None:
    header = LOCK.read_text().split("\n\n", 1)[0]
    assert "scripts/lock_dependencies.py" in header


def _readme_command(label: str) -> str:
    """The shell line under the README's bold label (**Serve** or **Test**) in its set-up section."""
    readme = (REPO / "README.md").read_text()
    match = re.search(rf"\*\*{label}\*\*.*?```sh\n(.+?)\n```", readme, re.S)
    assert match, f"no {label} command in the README"
    return match.group(1)


def test_every_documented_install_uses_the_lock() -> None:
    serve, test = _readme_command("Serve"), _readme_command("Test")
    for command in (serve, test):
        assert "pip install" in command and "-c constraints.txt" in command, command
    # CI runs exactly the README's test command, so the two cannot drift apart.
    ci_lines = (REPO / ".ci" / "run").read_text().splitlines()
    assert test in ci_lines
    dockerfile = (REPO / "Dockerfile").read_text()
    assert any(line.startswith("COPY ") and "constraints.txt" in line.split() for line in dockerfile.splitlines())
    assert all("-c constraints.txt" in line for line in dockerfile.splitlines() if "pip wheel" in line)
