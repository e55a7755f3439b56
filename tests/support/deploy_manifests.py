"""Read what the deployment kit (deploy/compose.yaml, deploy/kubernetes/*.yaml) tells the server: the
command each workflowstate container runs, its WORKFLOWSTATE_* variables and its ports, so that a
test can hold them against the server's own parser and the Dockerfile."""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from workflowstate.server.ops.cli_parser import ENV_PREFIX

REPO = Path(__file__).resolve().parent.parent.parent
DEPLOY = REPO / "deploy"
COMPOSE_FILE = DEPLOY / "compose.yaml"
KUBERNETES = DEPLOY / "kubernetes"
DOCKERFILE = REPO / "Dockerfile"
IMAGE = "workflowstate"


@dataclass
class Container:
    """One workflowstate container of the kit, as its manager would start it."""

    where: str  # the file and the service or resource, for messages
    argv: list[str]  # the whole command: the entry point, then its arguments
    environment: dict[str, str]  # the variables the kit sets (the image's own ENV aside); '' when from a secret
    ports: set[int] = field(default_factory=set)  # ports of the container that it exposes or publishes
    probe_ports: set[int] = field(default_factory=set)  # ports its gRPC health probes ask


def image_entrypoint() -> list[str]:
    """The Dockerfile's ENTRYPOINT, the command of a container that names none."""
    found = re.search(r"^ENTRYPOINT\s+(\[.*\])\s*$", DOCKERFILE.read_text(encoding="utf-8"), re.MULTILINE)
    assert found, "the Dockerfile has no ENTRYPOINT in exec form"
    return list(json.loads(found[1]))


def image_environment() -> dict[str, str]:
    """The WORKFLOWSTATE_* variables the Dockerfile's ENV sets, which every container of the image gets."""
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    pairs = [pair for line in text.splitlines() if line.startswith("ENV ") for pair in line[4:].split()]
    return dict(pair.split("=", 1) for pair in pairs if pair.startswith(ENV_PREFIX))


def load_yaml(path: Path) -> list[dict[str, Any]]:
    return [document for document in yaml.safe_load_all(path.read_text(encoding="utf-8")) if document]


def compose_containers() -> list[Container]:
    containers = []
    for name, service in load_yaml(COMPOSE_FILE)[0]["services"].items():
        if not str(service.get("image", "")).startswith(f"{IMAGE}:"):
            continue
        argv = list(service.get("entrypoint") or image_entrypoint()) + list(service.get("command") or [])
        ports = {int(str(port).rsplit(":", 1)[1]) for port in service.get("ports", [])}
        environment = {key: str(value) for key, value in service.get("environment", {}).items()}
        containers.append(Container(f"{COMPOSE_FILE.name}: {name}", argv, environment, ports))
    return containers


def kubernetes_containers() -> list[Container]:
    resources = [document for path in sorted(KUBERNETES.glob("*.yaml")) for document in load_yaml(path)]
    config_maps = {resource["metadata"]["name"]: resource.get("data", {}) for resource in resources if resource["kind"] == "ConfigMap"}
    containers = []
    for resource in resources:
        if resource["kind"] not in ("Deployment", "Job"):
            continue
        for spec in resource["spec"]["template"]["spec"]["containers"]:
            if not spec["image"].startswith(f"{IMAGE}:"):
                continue
            environment: dict[str, str] = {}
            for source in spec.get("envFrom", []):
                environment.update(config_maps[source["configMapRef"]["name"]])
            for variable in spec.get("env", []):
                environment[variable["name"]] = variable.get("value", "")
            probes = [spec.get(kind, {}).get("grpc") for kind in ("readinessProbe", "livenessProbe", "startupProbe")]
            containers.append(Container(
                f"{resource['kind']} {resource['metadata']['name']}",
                list(spec.get("command") or image_entrypoint()) + list(spec.get("args") or []),
                environment,
                {port["containerPort"] for port in spec.get("ports", [])},
                {probe["port"] for probe in probes if probe},
            ))  # fmt: skip
    return containers


def subcommand_parser(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.ArgumentParser:
    """The parser of the subcommand that `argv` (`workflowstate COMMAND ...`) runs."""
    assert argv[0] == "workflowstate", f"the command is {argv}, not workflowstate's"
    subparsers = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    assert argv[1] in subparsers.choices, f"workflowstate has no command {argv[1]!r}"
    return subparsers.choices[argv[1]]


def port_of(address: str) -> int:
    return int(address.rsplit(":", 1)[1])
