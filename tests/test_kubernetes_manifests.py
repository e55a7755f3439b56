"""deploy/kubernetes/: the manifests are valid Kubernetes resources (kubernetes-validate's schemas,
bundled in its wheel, so no cluster and no network), and what they tell the server (commands, flags,
variables, ports, image) is what its parser, the Dockerfile and the package know, so that they
cannot drift apart; deploy/compose.yaml is held to the same."""

from __future__ import annotations

import copy
import tomllib

import kubernetes_validate
import pytest
from support.deploy_manifests import (
    KUBERNETES,
    REPO,
    Container,
    compose_containers,
    image_environment,
    kubernetes_containers,
    load_yaml,
    port_of,
    subcommand_parser,
)

from workflowstate.server.ops.cli import build_parser
from workflowstate.server.ops.cli_parser import variable_of

# The Kubernetes release the manifests are checked against: the newest kubernetes-validate knows.
KUBERNETES_VERSION = kubernetes_validate.latest_version()
MANIFESTS = sorted(KUBERNETES.glob("*.yaml"))


def _kinds() -> set[str]:
    return {resource["kind"] for path in MANIFESTS for resource in load_yaml(path)}


def test_the_kit_has_each_resource_a_deployment_needs() -> None:
    assert {"Deployment", "Job", "Service", "PodDisruptionBudget", "Secret", "ConfigMap"} <= _kinds()


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda path: path.name)
def test_each_manifest_is_a_valid_kubernetes_resource(path) -> None:
    for resource in load_yaml(path):
        # strict: a misspelt or misplaced field is an error, not ignored as the API server would.
        kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)


def test_the_validator_rejects_a_misplaced_field() -> None:
    """The check above can fail: the Deployment with its probe one level too high is refused."""
    (deployment,) = load_yaml(KUBERNETES / "deployment.yaml")
    broken = copy.deepcopy(deployment)
    container = broken["spec"]["template"]["spec"]["containers"][0]
    broken["spec"]["template"]["spec"]["readinessProbe"] = container.pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError, match="readinessProbe"):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_the_deployment_runs_two_replicas_probed_by_grpc_health_with_resource_requests() -> None:
    (deployment,) = load_yaml(KUBERNETES / "deployment.yaml")
    assert deployment["spec"]["replicas"] == 2
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert "grpc" in container["readinessProbe"] and "grpc" in container["livenessProbe"]
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    # The token file is the Secret's, mounted where --auth-tokens reads it.
    tokens = container["args"][container["args"].index("--auth-tokens") + 1]
    (mount,) = [mount for mount in container["volumeMounts"] if tokens.startswith(mount["mountPath"] + "/")]
    (volume,) = [volume for volume in deployment["spec"]["template"]["spec"]["volumes"] if volume["name"] == mount["name"]]
    assert {"key": "auth-tokens", "path": tokens.removeprefix(mount["mountPath"] + "/")} in volume["secret"]["items"]


CONTAINERS = kubernetes_containers() + compose_containers()


@pytest.mark.parametrize("container", CONTAINERS, ids=lambda container: container.where)
def test_every_flag_and_variable_of_the_kit_is_one_the_server_knows(container: Container) -> None:
    parser = subcommand_parser(build_parser(), container.argv)
    options = {option for action in parser._actions for option in action.option_strings}
    flags = [argument for argument in container.argv[2:] if argument.startswith("--")]
    assert set(flags) <= options, f"{container.where}: `workflowstate {container.argv[1]}` has no {set(flags) - options}"
    known = {variable_of(option) for option in options if option.startswith("--")}
    variables = {name for name in container.environment if name.startswith("WORKFLOWSTATE_")}
    assert variables <= known, f"{container.where}: `workflowstate {container.argv[1]}` reads no {variables - known}"


@pytest.mark.parametrize("container", [c for c in CONTAINERS if c.argv[:2] == ["workflowstate", "serve"]], ids=lambda container: container.where)
def test_a_server_container_exposes_the_ports_it_listens_on_and_is_probed_there(container: Container) -> None:
    environment = {**image_environment(), **container.environment}
    listen = port_of(environment["WORKFLOWSTATE_LISTEN"])
    assert listen in container.ports, f"{container.where}: listens on {listen}, exposes {container.ports}"
    for variable in ("WORKFLOWSTATE_HTTP_LISTEN", "WORKFLOWSTATE_METRICS_LISTEN"):
        if variable in environment:
            assert port_of(environment[variable]) in container.ports, f"{container.where}: {variable} not exposed"
    assert container.probe_ports <= {listen}, f"{container.where}: probes {container.probe_ports}, listens on {listen}"
    assert "--no-migrate" in container.argv, f"{container.where}: a replica must leave migrations to the deploy step"


def test_the_kubernetes_image_is_the_release_of_this_package() -> None:
    version = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
    images = {spec["image"] for path in MANIFESTS for resource in load_yaml(path) if resource["kind"] in ("Deployment", "Job")
              for spec in resource["spec"]["template"]["spec"]["containers"]}  # fmt: skip
    assert images == {f"workflowstate:{version}"}
