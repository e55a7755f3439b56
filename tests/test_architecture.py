"""The server's dependency rule, checked on the source (see the README's "Working on it").

rpc -> capabilities (state, leases, dispatch, events, retention, schedules) -> db -> core; web (the dashboard)
imports no server package, only the client. Capabilities never import
rpc or ops, and one capability reaches another only through `state`, the model they all build
on. ops may import anything. The client never imports the server (its base install has no psycopg).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SERVER = REPO / "server"
CAPABILITIES = {"state", "leases", "dispatch", "events", "retention", "schedules"}
# Which server packages each package may import (besides itself).
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "db": {"core"},
    "state": {"core", "db"},
    **{capability: {"core", "db", "state"} for capability in CAPABILITIES - {"state"}},
    "rpc": {"core", "db"} | CAPABILITIES,
    "ops": {"core", "db", "rpc", "web"} | CAPABILITIES,
    # The dashboard is a client of the gRPC API (workflowstate.client, not a server package): it
    # reaches the state only through it, so auth and validation apply to it as to anyone.
    "web": set(),
}


def _imported_modules(path: Path, package: str) -> set[str]:
    """Absolute names of the modules a file imports (relative imports resolved against package)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def server_imports() -> dict[str, set[str]]:
    """{package: the server packages its modules import}, for every package under server/."""
    found: dict[str, set[str]] = {}
    for path in SERVER.rglob("*.py"):
        parts = path.relative_to(SERVER).parts
        if len(parts) < 2:
            continue  # server/__init__.py and __main__.py are the entry, not a layer
        package = parts[0]
        dotted = "workflowstate.server." + ".".join(parts[:-1])
        for name in _imported_modules(path, dotted):
            if name.startswith("workflowstate.server."):
                target = name.split(".")[2]
                if target != package and (SERVER / target).is_dir():
                    found.setdefault(package, set()).add(target)
    return found


def test_every_server_package_has_a_rule() -> None:
    packages = {path.name for path in SERVER.iterdir() if path.is_dir() and (path / "__init__.py").exists()}
    assert packages == set(ALLOWED)


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_the_layers_below_it(package: str) -> None:
    forbidden = server_imports().get(package, set()) - ALLOWED[package]
    assert not forbidden, f"server/{package} imports {sorted(forbidden)}, against the dependency rule"


def test_the_rule_check_sees_a_forbidden_import(tmp_path: Path) -> None:
    """The check above can fail: a capability module importing rpc is seen as such."""
    module = tmp_path / "leases.py"
    module.write_text("from ..rpc import servicer\nfrom ..db.database import Row\n")
    assert {"workflowstate.server.rpc", "workflowstate.server.db.database"} <= _imported_modules(module, "workflowstate.server.leases")


def test_client_never_imports_the_server() -> None:
    for path in (REPO / "client").rglob("*.py"):
        imported = _imported_modules(path, "workflowstate.client")
        assert not {name for name in imported if name.startswith(("workflowstate.server", "psycopg"))}, path


# The operator commands reach a server through the client alone, so they run anywhere the base
# install does and never lean on the server's internals.
OPERATOR_COMMANDS = sorted((SERVER / "ops").glob("cli_*.py"))


def _server_modules_beyond_the_client(path: Path) -> set[str]:
    """What `path` imports of the server (or psycopg), besides the other operator-command modules
    (`from . import cli_filters` names the package too, whose __init__ is a docstring)."""
    return {
        name
        for name in _imported_modules(path, "workflowstate.server.ops")
        if name.startswith(("workflowstate.server", "psycopg"))
        and not name.startswith("workflowstate.server.ops.cli_")
        and name != "workflowstate.server.ops"
    }


@pytest.mark.parametrize("path", OPERATOR_COMMANDS, ids=lambda path: path.name)
def test_operator_commands_import_only_the_client(path: Path) -> None:
    assert not _server_modules_beyond_the_client(path), f"{path.name} imports the server's internals"


def test_there_are_operator_commands_to_check() -> None:
    assert {"cli_runs.py", "cli_connection.py", "cli_parser.py"} <= {path.name for path in OPERATOR_COMMANDS}


def test_the_operator_check_sees_a_server_import(tmp_path: Path) -> None:
    module = tmp_path / "cli_bad.py"
    module.write_text("from ..state import store\nfrom .cli_output import print_table\nfrom .cli import main\n")
    assert _server_modules_beyond_the_client(module) == {"workflowstate.server.state", "workflowstate.server.state.store", "workflowstate.server.ops.cli", "workflowstate.server.ops.cli.main"}


# The RPC layer by capability: each module of rpc/ whose class marks handlers (`@handles`) is one
# capability's face; they share the helpers of rpc/ but never reach into one another, and only the
# servicer assembles them.
RPC = SERVER / "rpc"


def rpc_capability_modules() -> set[str]:
    return {path.stem for path in RPC.glob("*.py") if re.search(r'^ +@handles\("', path.read_text(encoding="utf-8"), re.M)}


def test_the_rpc_layer_has_its_capabilities() -> None:
    assert {"runs", "steps", "engine", "leases", "workers", "events", "schedules", "operations"} <= rpc_capability_modules()


@pytest.mark.parametrize("module", sorted(rpc_capability_modules()))
def test_an_rpc_capability_imports_no_other_capability(module: str) -> None:
    imported = _imported_modules(RPC / f"{module}.py", "workflowstate.server.rpc")
    others = {f"workflowstate.server.rpc.{other}" for other in rpc_capability_modules() - {module}}
    assert not imported & others, f"rpc/{module}.py imports {sorted(imported & others)}: only servicer.py assembles the capabilities"
