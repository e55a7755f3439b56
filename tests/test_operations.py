"""Running the server as operators do: restarts, database outages, deadlines, shutdown, health,
reflection, several servers on one database (schema names: test_schema_name.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from psycopg import sql
from support.flows import error_info_of, new_run, new_step, reason_of, status_of
from support.metrics import scrape
from support.tcp_proxy import CuttableProxy
from support.waiting import NOBODY_WAITS_FOR_A_LOCK, SOMEONE_WAITS_FOR_A_LOCK, wait_in_database

from workflowstate import v1 as pb
from workflowstate.v1 import workflow_state_pb2_grpc as pb_grpc

REPO = Path(__file__).resolve().parent.parent
SERVICE = "workflowstate.v1.WorkflowStateService"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def _stub(channel: grpc.Channel) -> pb_grpc.WorkflowStateServiceStub:
    return pb_grpc.WorkflowStateServiceStub(channel)


@pytest.fixture
def proxy(database_url: str) -> Iterator[CuttableProxy]:
    cuttable = CuttableProxy(database_url).start()
    yield cuttable
    cuttable.close()


def test_restart_keeps_all_state(start_server, unique) -> None:
    schema = f"restart_{unique}"
    first = start_server(schema=schema)
    with grpc.insecure_channel(first.target) as channel:
        stub = _stub(channel)
        run = new_run(stub)
        step = new_step(stub, run.run_id, retries=3)
        stub.SetStepError(pb.SetStepErrorRequest(step_id=step.step_id, error=pb.Failure(message="boom")))
        stub.CreateRetryAttempt(pb.CreateRetryAttemptRequest(step_id=step.step_id, status=pb.STEP_STATUS_RUNNING))
        history = stub.GetRunHistory(pb.GetRunHistoryRequest(run_id=run.run_id)).attempts
    assert first.stop() == 0
    assert '"msg": "stopped"' in first.log_text()

    second = start_server(schema=schema)
    with grpc.insecure_channel(second.target) as channel:
        stub = _stub(channel)
        assert stub.GetRun(pb.GetRunRequest(run_id=run.run_id)).run == run
        assert stub.GetRunHistory(pb.GetRunHistoryRequest(run_id=run.run_id)).attempts == history
        again = stub.GetStepState(pb.GetStepStateRequest(run_id=run.run_id, step_name=step.step_name)).step
        assert (again.attempt_count, again.status) == (2, pb.STEP_STATUS_RUNNING)
    assert '"migrations_applied": []' in second.log_text()


def test_database_outage_unavailable_then_recovery(start_server, proxy, unique) -> None:
    server = start_server(url=proxy.url)
    with grpc.insecure_channel(server.target) as channel:
        stub = _stub(channel)
        health = health_pb2_grpc.HealthStub(channel)
        run = new_run(stub)
        watch = health.Watch(health_pb2.HealthCheckRequest(service=SERVICE), timeout=120)
        assert next(watch).status == SERVING

        proxy.cut()
        code, reason, _, metadata = reason_of(stub.GetRun, pb.GetRunRequest(run_id=run.run_id))
        assert (code, reason) == (grpc.StatusCode.UNAVAILABLE, "UNAVAILABLE"), metadata
        code, _ = status_of(stub.CreateRun, pb.CreateRunRequest(workflow=unique))
        assert code == grpc.StatusCode.UNAVAILABLE
        assert next(watch).status == NOT_SERVING
        assert health.Check(health_pb2.HealthCheckRequest(service="")).status == NOT_SERVING

        proxy.restore()
        assert next(watch).status == SERVING
        watch.cancel()
        assert stub.GetRun(pb.GetRunRequest(run_id=run.run_id)).run == run
        assert new_run(stub, workflow=unique).workflow == unique
    assert server.stop() == 0
    log = server.log_text()
    assert "database unreachable; not serving" in log and "database reachable; serving" in log


def test_server_refuses_to_start_without_a_database(proxy, database_url) -> None:
    proxy.cut()
    result = subprocess.run(
        [sys.executable, "-m", "workflowstate.server", "serve", "--listen", "127.0.0.1:0",
         "--database-url", proxy.url, "--startup-timeout", "1"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    assert "could not connect to the database" in result.stderr
    assert "Traceback" not in result.stderr


def test_deadline_is_honoured_and_nothing_written(stub, db) -> None:
    run = new_run(stub)
    with db.transaction():
        db.execute("SELECT FROM workflows_test.runs WHERE run_id = %s FOR UPDATE", (run.run_id,))
        request = pb.UpdateRunStatusRequest(run_id=run.run_id, status=pb.RUN_STATUS_COMPLETED)
        with pytest.raises(grpc.RpcError) as caught:
            stub.UpdateRunStatus(request, timeout=0.5)
        # The server's answer (named), given before the client's own clock would have ended the call.
        assert (caught.value.code(), error_info_of(caught.value)[0]) == (grpc.StatusCode.DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED")
        # The server must have cancelled its statement: nothing waits for our lock any more.
        wait_in_database(db, NOBODY_WAITS_FOR_A_LOCK)
    # Had the statement lived on, it would have completed the run once our lock went away.
    assert stub.GetRun(pb.GetRunRequest(run_id=run.run_id)).run.status == pb.RUN_STATUS_RUNNING
    assert stub.UpdateRunStatus(request).run.status == pb.RUN_STATUS_COMPLETED


def test_graceful_shutdown_finishes_in_flight_calls(start_server, db, unique) -> None:
    server = start_server(schema=f"shutdown_{unique}")
    with grpc.insecure_channel(server.target) as channel:
        stub = _stub(channel)
        run = new_run(stub)
        outcome: list[object] = []
        with db.transaction():
            table = sql.Identifier(server.schema, "runs")
            db.execute(sql.SQL("SELECT FROM {} WHERE run_id = %s FOR UPDATE").format(table), (run.run_id,))
            call = threading.Thread(
                target=lambda: outcome.append(
                    stub.UpdateRunStatus(pb.UpdateRunStatusRequest(run_id=run.run_id, status=pb.RUN_STATUS_COMPLETED), timeout=60)
                )
            )
            call.start()
            wait_in_database(db, SOMEONE_WAITS_FOR_A_LOCK)
            server.process.send_signal(15)  # SIGTERM while the call is in flight
        call.join(60)
        assert outcome and outcome[0].run.status == pb.RUN_STATUS_COMPLETED
    assert server.process.wait(60) == 0
    log = server.log_text()
    assert log.index("stopping: draining in-flight calls") < log.index('"msg": "stopped"')


def test_health_and_reflection(server_target) -> None:
    with grpc.insecure_channel(server_target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for name in ("", SERVICE):
            assert health.Check(health_pb2.HealthCheckRequest(service=name)).status == SERVING
        with pytest.raises(grpc.RpcError) as caught:
            health.Check(health_pb2.HealthCheckRequest(service="no.such.Service"))
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND

        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        answers = reflection.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        names = {service.name for service in next(answers).list_services_response.service}
        assert {SERVICE, "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"} <= names

        request = reflection_pb2.ServerReflectionRequest(file_containing_symbol=SERVICE)
        answer = next(reflection.ServerReflectionInfo(iter([request])))
        assert answer.file_descriptor_response.file_descriptor_proto  # enough for grpcurl to build requests


def test_servers_starting_together_migrate_once(start_server, db, unique) -> None:
    schema = f"together_{unique}"
    servers: list[object] = []
    starters = [threading.Thread(target=lambda: servers.append(start_server(schema=schema))) for _ in range(3)]
    for starter in starters:
        starter.start()
    for starter in starters:
        starter.join(120)
    assert len(servers) == 3
    rows = db.execute(sql.SQL("SELECT version FROM {} ORDER BY version").format(sql.Identifier(schema, "schema_migrations"))).fetchall()
    migration_files = sorted((REPO / "server" / "db" / "migrations").glob("*.sql"))
    assert len(migration_files) >= 2
    assert rows == [(number,) for number in range(1, len(migration_files) + 1)]
    # All three serve the same state.
    with grpc.insecure_channel(servers[0].target) as channel:
        run = new_run(_stub(channel))
    for other in servers[1:]:
        with grpc.insecure_channel(other.target) as channel:
            assert _stub(channel).GetRun(pb.GetRunRequest(run_id=run.run_id)).run == run


def test_cli_help_explains_itself() -> None:
    top = subprocess.run([sys.executable, "-m", "workflowstate.server", "--help"], capture_output=True, text=True, timeout=60)
    assert top.returncode == 0 and "serve" in top.stdout
    serve = subprocess.run(
        [sys.executable, "-m", "workflowstate.server", "serve", "--help"], capture_output=True, text=True, timeout=60
    )
    assert serve.returncode == 0
    for words in ("--database-url", "--listen", "--schema", "--data-dir", "WORKFLOWSTATE_", "embedded PostgreSQL"):
        assert words in serve.stdout, words


def test_structured_logs_record_requests_at_debug_level(server, stub) -> None:
    missing = "00000000-0000-4000-8000-000000000001"
    code, _ = status_of(stub.GetRun, pb.GetRunRequest(run_id=missing))
    assert code == grpc.StatusCode.NOT_FOUND
    lines = [json.loads(line) for line in server.log_text().splitlines() if line.startswith("{")]
    assert any(line["msg"] == "started" and line["address"] == server.target for line in lines)
    refused = [line for line in lines if line["msg"] == "request" and line["rpc"] == "GetRun" and line["code"] == "NOT_FOUND"]
    assert any(missing in line["detail"] for line in refused)
    assert all({"time", "level", "logger"} <= set(line) for line in lines)


def test_no_embedded_requires_a_database_url() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "workflowstate.server", "serve", "--no-embedded"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "WORKFLOWSTATE_DATABASE_URL" in result.stderr


def test_workers_share_one_port_and_stop_together(start_server, unique) -> None:
    server = start_server("--workers", "2", "--metrics-listen", "127.0.0.1:0", schema=f"workers_{unique}")
    runs = []
    for _ in range(6):  # a channel per call: new connections, spread by the kernel over the workers
        with grpc.insecure_channel(server.target) as channel:
            runs.append(new_run(_stub(channel), workflow=unique))
    with grpc.insecure_channel(server.target) as channel:
        stub = _stub(channel)
        assert [stub.GetRun(pb.GetRunRequest(run_id=run.run_id)).run for run in runs] == runs
    log = server.log_text()
    assert '"workers": 2' in log and log.count('"msg": "schema ready"') == 2
    # Each worker serves its own metrics; together they count every call.
    addresses = {json.loads(line)["address"] for line in log.splitlines() if '"msg": "metrics served"' in line}
    assert len(addresses) == 2
    created = [scrape(address).get(("workflowstate_rpcs_total", (("code", "OK"), ("method", "CreateRun"))), 0) for address in addresses]
    assert sum(created) == 6
    assert server.stop() == 0
    assert server.log_text().count('"msg": "stopped"') == 2


def test_a_dead_worker_stops_the_server_with_an_error(start_server, unique) -> None:
    server = start_server("--workers", "2", schema=f"workers_{unique}")
    started = next(json.loads(line) for line in server.log_text().splitlines() if '"workers": 2' in line)
    first, second = started["pids"]
    os.kill(first, signal.SIGKILL)
    assert server.process.wait(60) == 1
    assert "a worker exited unexpectedly" in server.log_text()
    with pytest.raises(ProcessLookupError):  # the other worker was stopped (and reaped) too
        os.kill(second, 0)


def test_tls_serves_trusted_clients_only(start_server, tmp_path, unique) -> None:
    from support.certificates import self_signed

    from workflowstate.client import Unavailable, WorkflowStateClient

    cert, key = self_signed(tmp_path)
    server = start_server("--tls-cert", str(cert), "--tls-key", str(key), schema=f"tls_{unique}")
    trusted = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
    with WorkflowStateClient(server.target, tls=trusted) as client:
        run = client.create_run(unique, {"secure": True})
        assert client.get_run(run.run_id) == run
    # A plaintext client cannot talk to a TLS server (retries off: fail at once).
    with WorkflowStateClient(server.target, retry=False) as plaintext, pytest.raises(Unavailable):
        plaintext.create_run(unique)
    # Nor can a TLS client that does not trust the certificate.
    with WorkflowStateClient(server.target, tls=True, retry=False) as untrusting, pytest.raises(Unavailable):
        untrusting.create_run(unique)
