"""The server's dependency rule, checked on the source (see the README's "Working on it").

rpc -> capabilities (state, leases, dispatch, events, retention, schedules) -> db -> core; web (the dashboard)
imports no server package, only the client. Capabilities never import
rpc or ops, and one capability reaches another only through `state`, the model they all build
on. ops may import anything. The client never imports the server (its base install has no psycopg).
gRPC is the server's face, not its model: only rpc, ops (which assembles the server) and web (a
client of the API) import grpc or protobuf; core's errors name their reason, and rpc maps them to codes.
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
# The packages that may import gRPC and protobuf (the wire): the gRPC face, what assembles it, and the dashboard's client.
WIRE_PACKAGES = {"rpc", "ops", "web"}
WIRE_MODULES = ("grpc", "google.protobuf", "google.rpc", "workflowstate.v1")


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


def _wire_modules(path: Path, package: str) -> set[str]:
    """What `path` imports of gRPC, protobuf or the generated stubs."""
    return {name for name in _imported_modules(path, package) if name.split(".")[0] == "grpc" or name.startswith(WIRE_MODULES[1:])}


@pytest.mark.parametrize("package", sorted(set(ALLOWED) - WIRE_PACKAGES))
def test_only_the_grpc_face_imports_grpc(package: str) -> None:
    for path in (SERVER / package).rglob("*.py"):
        wire = _wire_modules(path, f"workflowstate.server.{package}")
        assert not wire, f"server/{path.relative_to(SERVER)} imports {sorted(wire)}: only {sorted(WIRE_PACKAGES)} speak gRPC"


def test_the_wire_check_sees_a_grpc_import(tmp_path: Path) -> None:
    module = tmp_path / "errors.py"
    module.write_text("import grpc\nfrom google.rpc import status_pb2\nfrom workflowstate.v1 import workflow_state_pb2\nimport grpcio_like\n")
    assert _wire_modules(module, "workflowstate.server.core") == {
        "grpc", "google.rpc", "google.rpc.status_pb2", "workflowstate.v1", "workflowstate.v1.workflow_state_pb2"
    }


# The stream sessions are given their collaborators (ops/app.py assembles them): a session calls
# them, never a collaborator it finds through another (`self._dispatcher.tasks.claim(...)`).
STREAM_SESSIONS = sorted((SERVER / "rpc").glob("*_session.py"))


def _collaborators(tree: ast.AST) -> set[str]:
    """The attributes an __init__ sets from its own parameters (`self._tasks = tasks`): what the object was given."""
    given: set[str] = set()
    for init in ast.walk(tree):
        if isinstance(init, ast.FunctionDef) and init.name == "__init__":
            params = {arg.arg for arg in (*init.args.args, *init.args.kwonlyargs)}
            for node in ast.walk(init):
                if isinstance(node, ast.Assign) and isinstance(node.value, ast.Name) and node.value.id in params:
                    given.update(t.attr for t in node.targets if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name))
    return given


def _calls_through_a_collaborator(source: str) -> list[str]:
    """Every `self.<collaborator>.<attribute>.<method>(...)` call in `source`, as `collaborator.attribute.method`."""
    tree = ast.parse(source)
    given = _collaborators(tree)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        chain: list[str] = []
        target = node.func
        while isinstance(target, ast.Attribute):
            chain.insert(0, target.attr)
            target = target.value
        if isinstance(target, ast.Name) and target.id == "self" and len(chain) >= 3 and chain[0] in given:
            found.append(".".join(chain))
    return found


@pytest.mark.parametrize("path", STREAM_SESSIONS, ids=lambda path: path.name)
def test_stream_sessions_call_their_collaborators_not_through_them(path: Path) -> None:
    through = _calls_through_a_collaborator(path.read_text(encoding="utf-8"))
    assert not through, f"{path.name} reaches through a collaborator: {through}; give the session what it calls"


def test_there_are_stream_sessions_to_check() -> None:
    assert {"lease_session.py", "task_session.py"} <= {path.name for path in STREAM_SESSIONS}


def test_the_collaborator_check_sees_a_call_through_one() -> None:
    source = (
        "class S:\n"
        "    def __init__(self, dispatcher, lease):\n        self._dispatcher = dispatcher\n        self._held = None\n"
        "    async def f(self):\n        await self._dispatcher.tasks.claim(1)\n        self._held.lease.total_seconds()\n"
    )
    assert _calls_through_a_collaborator(source) == ["_dispatcher.tasks.claim"]


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
