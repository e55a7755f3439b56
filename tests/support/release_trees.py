"""Runnable copies of the code of a release, for the upgrade tests: the previous release from git, this one from the working tree.

A copy is a folder laid out as the installed package is (`workflowstate/`, `workflowstate/server/`,
`workflowstate/client/`, ...), built from the `package-dir` table of that release's pyproject.toml,
so `PYTHONPATH=<folder> python -m workflowstate.server serve` runs that release's code with this
environment's dependencies (a folder on PYTHONPATH comes before the editable install's finder).

The previous release is read from the repository's history (`git archive`), which a full clone
keeps: `git clone` of a repository, local or not, copies every commit unless told `--depth`.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# The commit released as 0.1.0: the release before this one, whose contract image is
# tests/contract/previous/workflowstate-v1-0.1.0.binpb.
PREVIOUS_RELEASE = "0.1.0"
PREVIOUS_RELEASE_COMMIT = "120637e546105201748071cad43f80c0e0bd3854"


def _git(*args: str) -> bytes:
    return subprocess.run(["git", "-C", str(REPO), *args], check=True, capture_output=True, timeout=120).stdout


def require_previous_release() -> None:
    """Fail, saying what to do, when the clone lacks the previous release's commit (a shallow clone)."""
    found = subprocess.run(
        ["git", "-C", str(REPO), "cat-file", "-e", f"{PREVIOUS_RELEASE_COMMIT}^{{commit}}"], capture_output=True, timeout=30
    )
    assert found.returncode == 0, (
        f"the previous release ({PREVIOUS_RELEASE}, commit {PREVIOUS_RELEASE_COMMIT}) is not in the clone at {REPO}: "
        "the upgrade tests need the history (a shallow clone? run `git fetch --unshallow`)"
    )


def previous_release_file(path: str) -> str:
    """A file of the previous release, by its path in the repository."""
    require_previous_release()
    return _git("show", f"{PREVIOUS_RELEASE_COMMIT}:{path}").decode()


def previous_release_paths(folder: str) -> list[str]:
    """The paths of every file under `folder` in the previous release."""
    require_previous_release()
    return _git("ls-tree", "-r", "--name-only", PREVIOUS_RELEASE_COMMIT, "--", folder).decode().split()


def export_previous_release(checkout: Path) -> Path:
    """The previous release's files, as committed, in `checkout`."""
    require_previous_release()
    checkout.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(_git("archive", "--format=tar", PREVIOUS_RELEASE_COMMIT)), mode="r:") as archive:
        archive.extractall(checkout, filter="data")
    return checkout


def package_root(checkout: Path, root: Path) -> Path:
    """The packages of the checkout, laid out under `root` as pyproject.toml's package-dir maps them; returns root."""
    settings = tomllib.loads((checkout / "pyproject.toml").read_text(encoding="utf-8"))
    package_dir: dict[str, str] = settings["tool"]["setuptools"]["package-dir"]
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    # The root mapping ("" = "src") first, then shorter package names before the ones inside them.
    for package, folder in sorted(package_dir.items(), key=lambda item: (item[0] != "", item[0].count("."))):
        target = root.joinpath(*package.split(".")) if package else root
        shutil.copytree(checkout / folder, target, ignore=ignore, dirs_exist_ok=True)
    return root


def this_release_root(root: Path) -> Path:
    """The working tree's packages (this release, uncommitted changes included) laid out under `root`."""
    return package_root(REPO, root)
