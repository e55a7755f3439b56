"""Which tier a test belongs to, from where it lives and what it uses: the markers of a fast run.

The tiers, cheapest first: `unit` (tests/unit: no database, no server), `store` (tests/store: the
stores against one PostgreSQL, no server process), `docs` (tests/docs: the docs site built by MkDocs, no
database, no server), `server` (real server processes), `typescript`
(runs Node.js and npm), `browser` (drives Chromium), `packaging` (tests/packaging: builds the
packages, installs them with pip and npm outside the repository, serves from them), `faults`
(tests/faults: outages, kills, floods). pyproject.toml registers each; conftest.py marks every collected test with its own.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from functools import cache
from pathlib import Path

TIERS = ("unit", "store", "docs", "server", "typescript", "browser", "packaging", "faults")

# The folders under tests/ whose tests are all of one tier.
FOLDER_TIERS = {"unit": "unit", "store": "store", "docs": "docs", "packaging": "packaging", "faults": "faults"}

# The fixture that starts Chromium (tests/support/chromium.py): a test using it, directly or
# through another fixture, drives a browser.
BROWSER_FIXTURE = "chromium"

# The programs a test module runs when it runs the TypeScript SDK, the Pikku adapter or an example
# with Node.js: named as a string in the module (a command list, shutil.which).
NODE_PROGRAMS = frozenset({"node", "npm", "npx"})


def tier_of(folders: tuple[str, ...], fixtures: Iterable[str], runs_node: bool) -> str:
    """The tier of a test in `folders` (its path below tests/, without the file name), using
    `fixtures` (all of them, those fixtures use included), whose module runs Node.js or not."""
    if folders and folders[0] in FOLDER_TIERS:
        return FOLDER_TIERS[folders[0]]
    if BROWSER_FIXTURE in fixtures:
        return "browser"
    if runs_node:
        return "typescript"
    return "server"


@cache
def module_runs_node(path: Path) -> bool:
    """Whether the test module at `path` names node, npm or npx as a string: the program it runs."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return any(isinstance(node, ast.Constant) and node.value in NODE_PROGRAMS for node in ast.walk(tree))
