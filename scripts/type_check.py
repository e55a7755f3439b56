"""Type-check the project with mypy under the configuration of pyproject.toml's [tool.mypy].

The import names are not the folder names: pyproject.toml's [tool.setuptools] package-dir maps the
folders server/ and client/ to ``workflowstate.server`` and ``workflowstate.client``, and mypy has
no such mapping (it names a file after its folders, and cannot follow the import hook of an
editable install). Plain ``mypy`` would check ``server.ops.cli`` and find no
``workflowstate.server.ops.cli`` to import. This script reads the files to check from the
configuration as mypy does, gives each file of a mapped folder its real module name, and runs
mypy's build on them; the generated stubs of the contract come from src/ (``mypy_path``).

Usage: python scripts/type_check.py [mypy options]   (exit status 1 when mypy reports anything)
"""

from __future__ import annotations

import os
import sys
import tomllib
from pathlib import Path

from mypy import build
from mypy.errors import CompileError
from mypy.main import process_options
from mypy.modulefinder import BuildSource

REPO = Path(__file__).resolve().parent.parent


def mapped_folders() -> dict[Path, str]:
    """Each source folder that package-dir maps to a dotted package, by its absolute path."""
    setuptools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    package_dir: dict[str, str] = setuptools["package-dir"]
    return {(REPO / folder).resolve(): package for package, folder in package_dir.items() if package}


def real_module(path: Path, folders: dict[Path, str]) -> str | None:
    """The name a file is imported under, if it lives in a mapped folder: the innermost one, as a
    folder may be mapped inside another (client/workflows is workflowstate.workflows, not
    workflowstate.client.workflows)."""
    for folder, package in sorted(folders.items(), key=lambda item: len(item[0].parts), reverse=True):
        if path.is_relative_to(folder):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            return ".".join([package, *parts])
    return None


def renamed(sources: list[BuildSource], folders: dict[Path, str]) -> list[BuildSource]:
    """The sources mypy found, each file of a mapped folder under its import name."""
    result = []
    for source in sources:
        module = real_module(Path(source.path).resolve(), folders) if source.path else None
        result.append(BuildSource(source.path, module or source.module, source.text, followed=source.followed))
    return result


def main(argv: list[str]) -> int:
    os.chdir(REPO)  # the configuration's paths are relative to the repository
    sources, options = process_options(argv)
    try:
        messages = build.build(renamed(sources, mapped_folders()), options).errors
    except CompileError as error:  # a blocking error (a syntax error, a module found twice)
        messages = error.messages
    for message in messages:
        print(message)
    if messages:
        count = sum(": error:" in message for message in messages)
        print(f"mypy: {count} error{'' if count == 1 else 's'}", file=sys.stderr)
    return 1 if messages else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
