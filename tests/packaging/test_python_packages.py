"""The Python packages as a user gets them: the wheel and the sdist that `python -m build` makes, each
installed with the server extra into a fresh virtual environment outside the repository, serving a
real PostgreSQL; and the container image's entry point, environment and health check, read from the
Dockerfile and run on the installed wheel (docker cannot run on these machines)."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tarfile
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from support.remote_mode import free_port
from support.server_process import ServerProcess

REPO = Path(__file__).resolve().parents[2]
LOCK = REPO / "constraints.txt"
DOCKERFILE = REPO / "Dockerfile"

# Each build or install gets this long: pip works from its cache, but resolves the whole server extra.
COMMAND_TIMEOUT = 600

# What a user's shell would not have: this checkout on the import path, this test run's virtual
# environment, the server's own settings.
DROPPED_VARIABLES = ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")

# Run by the installed interpreter: health, then one run written and read back by the installed client.
CLIENT_PROGRAM = """
import json, sys
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
import workflowstate.client, workflowstate.server
from workflowstate.client import WorkflowStateClient

with grpc.insecure_channel(sys.argv[1]) as channel:
    health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
with WorkflowStateClient(sys.argv[1]) as client:
    created = client.create_run("packaged", {"cart": 42})
    read = client.get_run(created.run_id)
print(json.dumps({
    "health": health_pb2.HealthCheckResponse.ServingStatus.Name(health.status),
    "created": created.run_id, "read": read.run_id, "input": read.input, "status": read.status.value,
    "modules": [workflowstate.client.__file__, workflowstate.server.__file__],
}))
"""


@dataclass(frozen=True)
class Distributions:
    wheel: Path
    sdist: Path


@dataclass(frozen=True)
class Installed:
    """A virtual environment holding one distribution with its server extra, and a folder outside
    the repository to run it from."""

    venv: Path
    home: Path

    @property
    def bin(self) -> Path:
        return self.venv / "bin"

    def environment(self) -> dict[str, str]:
        """The environment of a user who activated this virtual environment: none of this test run's."""
        env = {
            key: value for key, value in os.environ.items() if key not in DROPPED_VARIABLES and not key.startswith("WORKFLOWSTATE_")
        }
        env["PATH"] = f"{self.bin}{os.pathsep}{env.get('PATH', '')}"
        env["VIRTUAL_ENV"] = str(self.venv)
        return env


def _run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
    assert result.returncode == 0, f"{shlex.join(command)} failed ({result.returncode}):\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def distributions(tmp_path_factory: pytest.TempPathFactory) -> Distributions:
    # Built from a copy of what the sdist is made of, so that nothing else in the checkout (a build/
    # folder, an egg-info) can stand in for a file the package configuration forgets.
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    for folder in ("src", "client", "server"):
        shutil.copytree(REPO / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    out = tmp_path_factory.mktemp("dist")
    # The isolated build environment takes setuptools at the lock's version.
    _run([sys.executable, "-m", "build", "--outdir", str(out), str(source)], cwd=out, env={**os.environ, "PIP_CONSTRAINT": str(LOCK)})
    (wheel,) = out.glob("workflowstate-*.whl")
    (sdist,) = out.glob("workflowstate-*.tar.gz")
    return Distributions(wheel, sdist)


@pytest.fixture(scope="module")
def install(distributions: Distributions, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Installed]:
    """install("wheel" | "sdist"): that distribution with [server] in its own fresh virtual environment, once."""
    installs: dict[str, Installed] = {}

    def installed(kind: str) -> Installed:
        if kind not in installs:
            folder = tmp_path_factory.mktemp(f"installed-{kind}")
            target = Installed(folder / "venv", folder / "home")
            target.home.mkdir()
            _run([sys.executable, "-m", "venv", str(target.venv)], cwd=target.home, env=target.environment())
            package = getattr(distributions, kind)
            pip = [str(target.bin / "python"), "-m", "pip", "install", "--quiet", "-c", str(LOCK)]
            _run([*pip, f"workflowstate[server] @ {package.as_uri()}"], cwd=target.home, env=target.environment())
            installs[kind] = target
        return installs[kind]

    return installed


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return answer.status, answer.read().decode()


def _check_serving(installed: Installed, server: ServerProcess, dashboard: str) -> None:
    """The installed client's health check and one run written and read back; the dashboard's page
    (a template) and a static file, all served from the installed package."""
    seen = json.loads(_run([str(installed.bin / "python"), "-c", CLIENT_PROGRAM, server.target], cwd=installed.home, env=installed.environment()))
    assert seen["health"] == "SERVING"
    assert (seen["read"], seen["input"], seen["status"]) == (seen["created"], {"cart": 42}, "running"), seen
    assert all(Path(module).is_relative_to(installed.venv) for module in seen["modules"]), seen["modules"]
    status, page = _get(f"{dashboard}/")
    assert status == 200 and "<html" in page.lower()
    status, css = _get(f"{dashboard}/static/dashboard.css")
    assert status == 200 and css.strip()


@pytest.mark.parametrize("kind", ["wheel", "sdist"])
def test_installed_outside_the_repository_it_serves_its_dashboard_and_the_installed_client(
    install: Callable[[str], Installed], kind: str, database_url: str
) -> None:
    installed = install(kind)
    command = [
        str(installed.bin / "workflowstate"), "serve", "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
        "--database-url", database_url, "--schema", f"pkg_{uuid.uuid4().hex[:10]}", "--no-embedded",
    ]  # fmt: skip
    server = ServerProcess.as_given(command, installed.environment(), installed.home).start()
    try:
        _check_serving(installed, server, server.dashboard_url)
    finally:
        assert server.stop() == 0, server.log_text()[-4000:]


def test_the_sdist_carries_the_sql_migrations_templates_and_static_files(distributions: Distributions) -> None:
    with tarfile.open(distributions.sdist) as sdist:
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
    expected = {
        str(path.relative_to(REPO))
        for path in (REPO / "server").rglob("*")
        if path.is_file() and (path.suffix == ".sql" or {"templates", "static"} & set(path.parts)) and "__pycache__" not in path.parts
    }
    assert {"server/db/migrations", "server/web/templates", "server/web/static"} <= {str(Path(name).parent) for name in expected}
    assert expected <= names, sorted(expected - names)


# The Dockerfile, read here so that what the test runs is what the image runs.


@dataclass(frozen=True)
class Image:
    env: dict[str, str]
    entrypoint: list[str]
    healthcheck: list[str]
    exposed: list[int]
    labels: dict[str, str]


def _instructions(text: str) -> list[tuple[str, str]]:
    """The Dockerfile's instructions of its last stage (the image), continuation lines joined."""
    joined = text.replace("\\\n", " ")
    lines = [line.strip() for line in joined.splitlines() if line.strip() and not line.strip().startswith("#")]
    instructions = [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def _pairs(text: str) -> dict[str, str]:
    return dict(token.split("=", 1) for token in shlex.split(text))


def read_image(text: str) -> Image:
    env: dict[str, str] = {}
    labels: dict[str, str] = {}
    entrypoint: list[str] = []
    healthcheck: list[str] = []
    exposed: list[int] = []
    for keyword, rest in _instructions(text):
        if keyword == "ENV":
            env.update(_pairs(rest))
        elif keyword == "LABEL":
            labels.update(_pairs(rest))
        elif keyword == "ENTRYPOINT":
            entrypoint = json.loads(rest)
        elif keyword == "HEALTHCHECK":
            healthcheck = json.loads(rest.split(" CMD ", 1)[1])
        elif keyword == "EXPOSE":
            exposed += [int(port) for port in rest.split()]
    return Image(env, entrypoint, healthcheck, exposed, labels)


def _on_free_ports(texts: list[str], ports: dict[int, int]) -> list[str]:
    """The container has its ports to itself; on this machine each exposed port becomes a free one,
    everywhere it is named (as `docker run -p free:exposed` would map it)."""
    for exposed, free in ports.items():
        texts = [text.replace(f":{exposed}", f":{free}") for text in texts]
    return texts


def test_the_image_s_entry_point_and_environment_serve_the_api_dashboard_and_metrics_and_pass_its_health_check(
    install: Callable[[str], Installed], database_url: str
) -> None:
    image = read_image(DOCKERFILE.read_text())
    installed = install("wheel")
    version = _run([str(installed.bin / "python"), "-c", "import importlib.metadata as m; print(m.version('workflowstate'))"], cwd=installed.home)
    assert image.labels.get("org.opencontainers.image.version") == version.strip()

    ports = {port: free_port() for port in image.exposed}
    names = list(image.env)
    env = dict(zip(names, _on_free_ports([image.env[name] for name in names], ports), strict=True))
    healthcheck = _on_free_ports(image.healthcheck, ports)
    # The image's environment and, as `docker run -e` gives it, the database (a schema of its own here).
    env |= {"WORKFLOWSTATE_DATABASE_URL": database_url, "WORKFLOWSTATE_SCHEMA": f"img_{uuid.uuid4().hex[:10]}"}
    container = installed.environment() | env
    program = shutil.which(image.entrypoint[0], path=container["PATH"])
    assert program is not None and Path(program).is_relative_to(installed.venv), program

    # What the image says it serves: gRPC, the dashboard on all addresses, the metrics.
    host, grpc_port = env["WORKFLOWSTATE_LISTEN"].rsplit(":", 1)
    dashboard_host, dashboard_port = env["WORKFLOWSTATE_HTTP_LISTEN"].rsplit(":", 1)
    _, metrics_port = env["WORKFLOWSTATE_METRICS_LISTEN"].rsplit(":", 1)
    assert (host, dashboard_host) == ("0.0.0.0", "0.0.0.0")
    assert {int(grpc_port), int(dashboard_port), int(metrics_port)} == set(ports.values())

    server = ServerProcess.as_given([program, *image.entrypoint[1:]], container, installed.home).start()
    try:
        assert server.target.endswith(f":{grpc_port}")
        _run(healthcheck, cwd=installed.home, env=container)  # exits 0 only when the server says SERVING
        _check_serving(installed, server, f"http://127.0.0.1:{dashboard_port}")
        status, metrics = _get(f"http://127.0.0.1:{metrics_port}/metrics")
        assert status == 200 and "workflowstate_" in metrics
        assert "DASHBOARD WITHOUT AUTHENTICATION" in server.log_text()  # the image's choice, said at every start
    finally:
        assert server.stop() == 0, server.log_text()[-4000:]
