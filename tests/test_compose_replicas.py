"""The replicas of deploy/compose.yaml, run as real servers with the environment and command the
file gives them (and the image's ENV under it): each starts on a migrated schema and serves its
dashboard to the address the file publishes it at on the host. Only what cannot be the same here is
replaced: the database URL and the container's own ports (loopback, chosen by the system)."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest
from support.dashboard import Browser
from support.deploy_manifests import COMPOSE_FILE, compose_containers, image_environment, load_yaml
from support.server_process import ServerProcess

REPLICAS = [container for container in compose_containers() if container.argv[:2] == ["workflowstate", "serve"]]


def _published_dashboard_port(service: str, container_port: int) -> int:
    """The host port the compose file publishes the container's dashboard port at."""
    (document,) = load_yaml(COMPOSE_FILE)
    for mapping in document["services"][service]["ports"]:
        host, host_port, target = str(mapping).split(":")
        if int(target) == container_port:
            assert host == "127.0.0.1", f"{service} publishes {mapping} beyond the host's loopback"
            return int(host_port)
    raise AssertionError(f"{service} does not publish its dashboard port {container_port}")


@pytest.mark.parametrize("replica", REPLICAS, ids=lambda container: container.where)
def test_a_compose_replica_serves_its_dashboard_at_the_address_the_file_publishes(replica, database_url: str) -> None:
    schema = f"cr_{uuid.uuid4().hex[:10]}"
    migrate = [sys.executable, "-m", "workflowstate.server", "migrate", "--database-url", database_url, "--schema", schema]
    assert subprocess.run(migrate, capture_output=True, text=True, timeout=120).returncode == 0
    environment = {**image_environment(), **replica.environment}
    dashboard_port = int(environment["WORKFLOWSTATE_HTTP_LISTEN"].rsplit(":", 1)[1])
    published = _published_dashboard_port(replica.where.split(": ")[1], dashboard_port)
    # Here the container's ports are loopback ones the system picks; the rest is the file's.
    environment.pop("WORKFLOWSTATE_METRICS_LISTEN")
    server = ServerProcess(database_url, schema, *replica.argv[2:], "--http-listen", "127.0.0.1:0", environment=environment).start()
    try:
        browser = Browser(server.dashboard_url)
        for name in ("127.0.0.1", "localhost"):
            reply = browser.request("GET", "/", headers={"Host": f"{name}:{published}"})
            assert reply.status == 200, (name, published, reply.status, reply.body[:300])
        # And only there: another port of the host is refused, as DNS rebinding is.
        assert browser.request("GET", "/", headers={"Host": f"127.0.0.1:{published + 100}"}).status == 421
    finally:
        assert server.stop() == 0, server.log_text()[-4000:]
