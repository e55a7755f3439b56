"""Who may do what, over the wire: every role against every RPC of the service, missing, wrong and
malformed tokens, Batch per operation, health and reflection, refusals counted, tokens never logged,
the Python client's token, and mutual TLS."""

from __future__ import annotations

import functools
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import grpc
import psycopg
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from psycopg import sql
from support.auth_tokens import TOKENS, metadata, write_token_file
from support.bidi_stream import BidiStream, duration
from support.flows import error_info_of, reason_of
from support.metrics import metrics_address, scrape
from support.server_process import ServerProcess

from workflowstate.client import (
    AsyncWorkflowStateClient,
    PermissionDenied,
    StepStatus,
    StepTask,
    Unauthenticated,
    Unavailable,
    Worker,
    WorkflowStateClient,
)
from workflowstate.server.rpc.auth import REQUIRED, SERVICE
from workflowstate.server.rpc.batch import RPC_OF
from workflowstate.server.rpc.tokens import COVERS, Role, token_line
from workflowstate import v1 as pb
from workflowstate.v1 import workflow_state_pb2_grpc as pb_grpc

WRONG_TOKEN = f"test-wrong-{uuid.uuid4().hex}"
AUTH_CODES = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)
SCHEMA = f"auth_{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def auth_server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tokens = write_token_file(tmp_path_factory.mktemp("auth"))
    server = ServerProcess(
        database_url, SCHEMA, "--auth-tokens", str(tokens), "--metrics-listen", "127.0.0.1:0", "--log-level", "debug"
    ).start()
    yield server
    assert server.stop() == 0, server.log_text()[-4000:]
    log = server.log_text()
    assert "unexpected error" not in log, log[-4000:]
    # Never logged, although every request is (debug), refusals included.
    for token in [*TOKENS.values(), WRONG_TOKEN]:
        assert token not in log


@pytest.fixture(scope="module")
def channel(auth_server: ServerProcess) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(auth_server.target) as channel:
        yield channel


@pytest.fixture(scope="module")
def stub(channel: grpc.Channel) -> pb_grpc.WorkflowStateServiceStub:
    return pb_grpc.WorkflowStateServiceStub(channel)


@dataclass
class Fixtures:
    """Rows the requests of the table name, made once with the admin token."""

    running_run: str
    finished_run: str
    succeeded_step: str


@pytest.fixture(scope="module")
def rows(stub: pb_grpc.WorkflowStateServiceStub) -> Fixtures:
    admin = metadata(TOKENS[Role.ADMIN])
    running = stub.CreateRun(pb.CreateRunRequest(workflow="auth-table"), metadata=admin).run.run_id
    finished = stub.CreateRun(pb.CreateRunRequest(workflow="auth-table"), metadata=admin).run.run_id
    step = stub.InsertStepState(
        pb.InsertStepStateRequest(run_id=finished, step_name="done", rpc_name="auth-table"), metadata=admin
    ).step.step_id
    stub.SetStepResult(pb.SetStepResultRequest(step_id=step, result_json='{"ok": true}'), metadata=admin)
    stub.UpdateRunStatus(pb.UpdateRunStatusRequest(run_id=finished, status=pb.RUN_STATUS_COMPLETED), metadata=admin)
    stub.UpsertWorkflowVersion(pb.UpsertWorkflowVersionRequest(workflow="auth-table", graph_hash="auth-v1", graph_json="{}"), metadata=admin)
    return Fixtures(running, finished, step)


# One request per RPC, valid enough to reach the servicer and write nothing that matters; the same
# for every role, whatever order the cases run in (a repeat is a no-op, a refusal or a new name).
REQUESTS: dict[str, Callable[[Fixtures], Any]] = {
    "CreateRun": lambda f: pb.CreateRunRequest(workflow="auth-table"),
    "GetRun": lambda f: pb.GetRunRequest(run_id=f.running_run),
    "GetRunHistory": lambda f: pb.GetRunHistoryRequest(run_id=f.finished_run),
    "UpdateRunStatus": lambda f: pb.UpdateRunStatusRequest(run_id=f.finished_run, status=pb.RUN_STATUS_COMPLETED),
    "InsertStepState": lambda f: pb.InsertStepStateRequest(
        run_id=f.running_run, step_name=f"s-{uuid.uuid4().hex[:8]}", rpc_name="auth-table"
    ),
    "GetStepState": lambda f: pb.GetStepStateRequest(run_id=f.finished_run, step_name="done"),
    "SetStepScheduled": lambda f: pb.SetStepScheduledRequest(step_id=f.succeeded_step),
    "SetStepRunning": lambda f: pb.SetStepRunningRequest(step_id=f.succeeded_step),
    "SetStepResult": lambda f: pb.SetStepResultRequest(step_id=f.succeeded_step, result_json='{"ok": true}'),
    "SetStepError": lambda f: pb.SetStepErrorRequest(step_id=f.succeeded_step, error=pb.Failure(message="no")),
    "CreateRetryAttempt": lambda f: pb.CreateRetryAttemptRequest(step_id=f.succeeded_step, status=pb.STEP_STATUS_PENDING),
    "Lease": lambda f: pb.LeaseRequest(
        acquire=pb.LeaseAcquire(key=f"auth-{uuid.uuid4().hex}", ttl=duration(timedelta(seconds=30)), holder="auth-test")
    ),
    "GetLease": lambda f: pb.GetLeaseRequest(key="auth-nobody-holds-this"),
    "Batch": lambda f: pb.BatchRequest(operations=[pb.BatchOperation(get_run=pb.GetRunRequest(run_id=f.running_run))]),
    "StreamStepTasks": lambda f: pb.StreamStepTasksRequest(
        subscribe=pb.StepTaskSubscribe(worker_id="auth-test", rpc_names=[f"auth-{uuid.uuid4().hex}"], max_in_flight=1)
    ),
    "WatchRun": lambda f: pb.WatchRunRequest(run_id=f.finished_run),
    "StreamRunEvents": lambda f: pb.StreamRunEventsRequest(workflow="auth-table"),
    "ListRuns": lambda f: pb.ListRunsRequest(filter=pb.RunFilter(workflow="auth-table")),
    "ListSteps": lambda f: pb.ListStepsRequest(run_id=f.finished_run),
    "ListWorkflows": lambda f: pb.ListWorkflowsRequest(),
    "ListLeases": lambda f: pb.ListLeasesRequest(key_prefix="auth-"),
    "ListRetentionPolicies": lambda f: pb.ListRetentionPoliciesRequest(),
    "ListWorkers": lambda f: pb.ListWorkersRequest(),
    # Engine state: writes to the finished run or its step are refused (nothing changes); the
    # claim finds its step succeeded (not claimed); the version exists already (an upsert and a
    # status repeat change nothing).
    "SetStepSuspended": lambda f: pb.SetStepSuspendedRequest(step_id=f.succeeded_step),
    "SetStepChildRun": lambda f: pb.SetStepChildRunRequest(step_id=f.succeeded_step, child_run_id=f.running_run),
    "SetStepBranch": lambda f: pb.SetStepBranchRequest(step_id=f.succeeded_step, branch_key="auth"),
    "ClaimStep": lambda f: pb.ClaimStepRequest(run_id=f.finished_run, step_name="done", rpc_name="auth-table"),
    "UpdateRunState": lambda f: pb.UpdateRunStateRequest(run_id=f.finished_run, name="n", value_json="1"),
    "GetRunState": lambda f: pb.GetRunStateRequest(run_id=f.running_run),
    "UpsertWorkflowVersion": lambda f: pb.UpsertWorkflowVersionRequest(workflow="auth-table", graph_hash="auth-v1", graph_json="{}"),
    "GetWorkflowVersion": lambda f: pb.GetWorkflowVersionRequest(workflow="auth-table", graph_hash="auth-v1"),
    "UpdateWorkflowVersionStatus": lambda f: pb.UpdateWorkflowVersionStatusRequest(
        workflow="auth-table", graph_hash="auth-v1", status=pb.WORKFLOW_VERSION_STATUS_ACTIVE
    ),
    "ListStalledRuns": lambda f: pb.ListStalledRunsRequest(updated_before=Timestamp(seconds=1), max_runs=1),
    "ListUndispatchedSteps": lambda f: pb.ListUndispatchedStepsRequest(updated_before=Timestamp(seconds=1), max_steps=1),
    # A schedule firing on January 1st only, the same request each time (a repeat is a no-op);
    # the others name a schedule that does not exist.
    "CreateSchedule": lambda f: pb.CreateScheduleRequest(schedule_id="auth-table", workflow="auth-table", cron="0 0 1 1 *"),
    "ListSchedules": lambda f: pb.ListSchedulesRequest(),
    "PauseSchedule": lambda f: pb.PauseScheduleRequest(schedule_id="auth-no-such-schedule"),
    "ResumeSchedule": lambda f: pb.ResumeScheduleRequest(schedule_id="auth-no-such-schedule"),
    "DeleteSchedule": lambda f: pb.DeleteScheduleRequest(schedule_id="auth-no-such-schedule"),
    "ListDispatchDefaults": lambda f: pb.ListDispatchDefaultsRequest(),
    # Admin only: each allowed answer leaves the rows as they were (a finished run, no match).
    "CancelRun": lambda f: pb.CancelRunRequest(run_id=f.finished_run, reason="auth test"),
    "CancelRuns": lambda f: pb.CancelRunsRequest(filter=pb.RunFilter(workflow="auth-matches-nothing"), max_runs=1),
    "DeleteRun": lambda f: pb.DeleteRunRequest(run_id=str(uuid.uuid4())),
    "DeleteRuns": lambda f: pb.DeleteRunsRequest(filter=pb.RunFilter(workflow="auth-matches-nothing"), max_runs=1),
    # A policy for a workflow without runs, kept a century: it erases nothing while it stays.
    "SetRetentionPolicy": lambda f: pb.SetRetentionPolicyRequest(workflow="auth-matches-nothing", keep=duration(timedelta(days=36500))),
    "DeleteRetentionPolicy": lambda f: pb.DeleteRetentionPolicyRequest(policy_id=2**62),
    # Defaults of an rpc name no step has, setting nothing: they change no one's dispatch.
    "SetDispatchDefaults": lambda f: pb.SetDispatchDefaultsRequest(defaults=pb.DispatchDefaults(rpc_name="auth-matches-nothing")),
    "DeleteDispatchDefaults": lambda f: pb.DeleteDispatchDefaultsRequest(rpc_name="auth-has-no-defaults"),
}

RPCS = [method.name for method in SERVICE.methods]
BATCH_KIND = {rpc: kind for kind, rpc in RPC_OF.items()}
RESPONDED = "a response"  # the outcome of a stream that sent a first message


def outcome(stub: pb_grpc.WorkflowStateServiceStub, rpc: str, request: Any, md: Any) -> tuple[Any, str, str]:
    """What a call ends with: its status code, message and reason, or RESPONDED for a stream's first message."""
    method = SERVICE.methods_by_name[rpc]
    call = getattr(stub, rpc)
    try:
        if method.client_streaming:
            stream = BidiStream(lambda requests: call(requests, metadata=md, timeout=30))
            stream.send(request)
            first = stream.next()
            stream.cancel()
            if isinstance(first, grpc.RpcError):
                return first.code(), first.details() or "", error_info_of(first)[0]
            return (RESPONDED, "", "") if not isinstance(first, grpc.StatusCode) else (first, "", "")
        if method.server_streaming:
            responses = call(request, metadata=md, timeout=30)
            try:
                next(responses)
            except StopIteration:
                return grpc.StatusCode.OK, "", ""
            finally:
                responses.cancel()
            return RESPONDED, "", ""
        call(request, metadata=md, timeout=30)
        return grpc.StatusCode.OK, "", ""
    except grpc.RpcError as err:
        return err.code(), err.details() or "", error_info_of(err)[0]


def test_every_rpc_has_a_request_here() -> None:
    # A new RPC needs a row in REQUESTS, so the table below covers it.
    assert set(RPCS) == set(REQUESTS)


@pytest.fixture(scope="module")
def admin_outcomes(stub, rows) -> dict[str, Any]:
    """What each RPC answers an admin token: what every role it allows must get too."""
    return {rpc: outcome(stub, rpc, REQUESTS[rpc](rows), metadata(TOKENS[Role.ADMIN]))[0] for rpc in RPCS}


@pytest.mark.parametrize("rpc", RPCS)
@pytest.mark.parametrize("role", [role for role in Role if role is not Role.ADMIN], ids=lambda role: role.value)
def test_each_role_on_each_rpc(stub, rows, admin_outcomes, rpc: str, role: Role) -> None:
    code, message, reason = outcome(stub, rpc, REQUESTS[rpc](rows), metadata(TOKENS[role]))
    required = REQUIRED.get(rpc, Role.ADMIN)
    needs = "an 'admin' token" if required is Role.ADMIN else f"a {required.value!r} or 'admin' token"
    if required in COVERS[role]:
        assert code not in AUTH_CODES, (code, message)
        assert code == admin_outcomes[rpc], (code, message)
    else:
        assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "ROLE_NOT_PERMITTED"), (code, message)
        assert message == f"a {role.value!r} token may not call {rpc}: it needs {needs}"
    # The same call as a Batch operation: the same decision.
    kind = BATCH_KIND.get(rpc)
    if kind is None:
        return
    batch = pb.BatchRequest(operations=[pb.BatchOperation(**{kind: REQUESTS[rpc](rows)})])
    code, message, reason = outcome(stub, "Batch", batch, metadata(TOKENS[role]))
    if required in COVERS[role]:
        assert code == grpc.StatusCode.OK, (code, message)
    else:
        assert (code, reason, message) == (
            grpc.StatusCode.PERMISSION_DENIED,
            "ROLE_NOT_PERMITTED",
            f"a {role.value!r} token may not call {rpc} (operation 0 of the Batch): it needs {needs}",
        )


def test_admin_outcomes_are_never_refusals(admin_outcomes) -> None:
    refused = {rpc: code for rpc, code in admin_outcomes.items() if code in AUTH_CODES}
    assert not refused
    # The table's requests reach the servicer and mostly succeed: not a table of bad requests.
    assert admin_outcomes["CreateRun"] == admin_outcomes["GetRun"] == grpc.StatusCode.OK
    assert admin_outcomes["Lease"] == admin_outcomes["StreamStepTasks"] == admin_outcomes["WatchRun"] == RESPONDED


@pytest.mark.parametrize("rpc", RPCS)
@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "no token: this server requires the metadata 'authorization: Bearer <token>'"),
        (f"Bearer {WRONG_TOKEN}", "unknown token: this server has no such token (see its --auth-tokens file)"),
        (f"Basic {WRONG_TOKEN}", "malformed authorization metadata: expected 'Bearer <token>'"),
        ("Bearer ", "malformed authorization metadata: expected 'Bearer <token>'"),
        (TOKENS[Role.ADMIN], "malformed authorization metadata: expected 'Bearer <token>'"),  # no scheme
    ],
    ids=["missing", "wrong", "basic", "empty", "no-scheme"],
)
def test_no_valid_token_is_unauthenticated_on_every_rpc(stub, rows, rpc: str, header: str | None, message: str) -> None:
    md = (("authorization", header),) if header is not None else ()
    code, details, reason = outcome(stub, rpc, REQUESTS[rpc](rows), md)
    assert (code, reason, details) == (grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED", message)
    assert WRONG_TOKEN not in details and TOKENS[Role.ADMIN] not in details


def test_the_scheme_is_case_insensitive_and_two_headers_are_refused(stub, rows) -> None:
    request = pb.GetRunRequest(run_id=rows.running_run)
    assert stub.GetRun(request, metadata=(("authorization", f"bearer {TOKENS[Role.READ]}"),)).run.run_id == rows.running_run
    with pytest.raises(grpc.RpcError) as refused:
        stub.GetRun(request, metadata=metadata(TOKENS[Role.READ]) + metadata(TOKENS[Role.ADMIN]))
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error_info_of(refused.value)[0] == "UNAUTHENTICATED"
    assert refused.value.details() == "malformed authorization metadata: sent more than once"


def _runs_of(db_url: str, workflow: str) -> int:
    with psycopg.connect(db_url, autocommit=True) as conn:
        query = sql.SQL("SELECT count(*) FROM {}.runs WHERE workflow = %s").format(sql.Identifier(SCHEMA))
        return conn.execute(query, (workflow,)).fetchone()[0]  # type: ignore[index]


def test_a_batch_needs_what_each_of_its_operations_needs(stub, rows, database_url) -> None:
    workflow = f"auth-batch-{uuid.uuid4().hex[:8]}"
    reads = pb.BatchRequest(
        operations=[
            pb.BatchOperation(get_run=pb.GetRunRequest(run_id=rows.running_run)),
            pb.BatchOperation(get_lease=pb.GetLeaseRequest(key="auth-nobody-holds-this")),
        ]
    )
    mixed = pb.BatchRequest(
        operations=[*reads.operations, pb.BatchOperation(create_run=pb.CreateRunRequest(workflow=workflow))]
    )
    # Reads go in a batch with any token that may read: the client batches concurrent reads itself.
    for role in (Role.READ, Role.WORKER):
        results = stub.Batch(reads, metadata=metadata(TOKENS[role])).results
        assert results[0].get_run.run.run_id == rows.running_run
        assert (results[1].error.code, results[1].error.reason) == (grpc.StatusCode.NOT_FOUND.value[0], "NOT_FOUND")
        # A write among them refuses the whole batch, before anything runs.
        with pytest.raises(grpc.RpcError) as refused:
            stub.Batch(mixed, metadata=metadata(TOKENS[role]))
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        reason, _, context = error_info_of(refused.value)
        assert (reason, context["role"], context["required_role"]) == ("ROLE_NOT_PERMITTED", role.value, "write"), context
        assert refused.value.details() == (
            f"a {role.value!r} token may not call CreateRun (operation 2 of the Batch): it needs a 'write' or 'admin' token"
        )
    assert _runs_of(database_url, workflow) == 0
    # A write token may make every operation.
    results = stub.Batch(mixed, metadata=metadata(TOKENS[Role.WRITE])).results
    assert results[2].create_run.run.workflow == workflow
    assert _runs_of(database_url, workflow) == 1


def test_health_is_open_and_reflection_needs_read(channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    assert health.Check(health_pb2.HealthCheckRequest()).status == health_pb2.HealthCheckResponse.SERVING
    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)

    def list_services(md: Any) -> list[str]:
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        (response,) = list(reflection.ServerReflectionInfo(iter([request]), metadata=md, timeout=30))
        return [service.name for service in response.list_services_response.service]

    with pytest.raises(grpc.RpcError) as refused:
        list_services(())
    assert (refused.value.code(), error_info_of(refused.value)[0]) == (grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED")
    for role in Role:
        assert SERVICE.full_name in list_services(metadata(TOKENS[role]))


def test_refused_calls_are_counted(auth_server, stub, rows) -> None:
    address = metrics_address(auth_server.log_text())

    def count(code: str) -> float:
        return scrape(address).get(("workflowstate_rpcs_total", (("code", code), ("method", "SetStepRunning"))), 0.0)

    before = {code: count(code) for code in ("UNAUTHENTICATED", "PERMISSION_DENIED")}
    request = pb.SetStepRunningRequest(step_id=rows.succeeded_step)
    for md, times in (((), 2), (metadata(TOKENS[Role.READ]), 3)):
        for _ in range(times):
            with pytest.raises(grpc.RpcError):
                stub.SetStepRunning(request, metadata=md)
    assert count("UNAUTHENTICATED") - before["UNAUTHENTICATED"] == 2
    assert count("PERMISSION_DENIED") - before["PERMISSION_DENIED"] == 3


# --- the Python client -----------------------------------------------------------------------


def test_the_client_sends_its_token_on_calls_leases_and_watches(auth_server, monkeypatch) -> None:
    monkeypatch.delenv("WORKFLOWSTATE_TOKEN", raising=False)
    with WorkflowStateClient(auth_server.target, token=TOKENS[Role.WRITE]) as writer:
        run = writer.create_run("auth-client", {"n": 1})
        step = writer.insert_step_state(run.run_id, "one", "auth-client")
        with writer.run_lock(run.run_id) as lease:  # a stream: the token rides on it too
            lease.client.set_step_result(step.step_id, {"ok": True})
        writer.update_run_status(run.run_id, run.status.COMPLETED)
    with WorkflowStateClient(auth_server.target, token=TOKENS[Role.READ]) as reader:
        assert [event.step.status for event in reader.watch_run(run.run_id) if event.step] == [
            StepStatus.PENDING,
            StepStatus.SUCCEEDED,
        ]
        with pytest.raises(PermissionDenied) as refused:
            reader.create_run("auth-client")
        assert (refused.value.reason, refused.value.metadata) == ("ROLE_NOT_PERMITTED", {"role": "read", "required_role": "write"})
        assert refused.value.message == "a 'read' token may not call CreateRun: it needs a 'write' or 'admin' token"
        with pytest.raises(PermissionDenied) as refused_lock:
            with reader.run_lock(run.run_id):
                pass
        assert refused_lock.value.reason == "ROLE_NOT_PERMITTED"
    with WorkflowStateClient(auth_server.target, retry=False) as anonymous:
        with pytest.raises(Unauthenticated) as anonymous_refused:
            anonymous.get_run(run.run_id)
        assert anonymous_refused.value.reason == "UNAUTHENTICATED"
        with pytest.raises(Unauthenticated) as stream_refused:  # at once: streams reconnect on UNAVAILABLE only
            next(iter(anonymous.watch_run(run.run_id)))
        assert stream_refused.value.reason == "UNAUTHENTICATED"


def test_the_client_takes_its_token_from_the_environment(auth_server, monkeypatch) -> None:
    monkeypatch.setenv("WORKFLOWSTATE_TOKEN", TOKENS[Role.READ])
    with WorkflowStateClient(auth_server.target) as client:
        assert client.get_run(str(uuid.uuid4())) is None  # allowed: the answer of the servicer
        with pytest.raises(PermissionDenied) as refused:
            client.create_run("auth-env")
        assert refused.value.reason == "ROLE_NOT_PERMITTED"
        # Concurrent reads travel as one Batch: a read token may send it.
        results: list[Any] = []
        threads = [threading.Thread(target=lambda: results.append(client.get_run(str(uuid.uuid4())))) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert results == [None] * 8


async def test_the_async_client_sends_its_token(auth_server, monkeypatch) -> None:
    monkeypatch.delenv("WORKFLOWSTATE_TOKEN", raising=False)
    async with AsyncWorkflowStateClient(auth_server.target, token=TOKENS[Role.WRITE]) as writer:
        run = await writer.create_run("auth-async")
        async with writer.run_lock(run.run_id) as lease:
            assert lease.fencing_token > 0
    async with AsyncWorkflowStateClient(auth_server.target, token=TOKENS[Role.READ]) as reader:
        assert (await reader.get_run(run.run_id)) == run
        async for event in reader.watch_run(run.run_id):  # a stream: the run's first event, then stop
            assert event.run_id == run.run_id
            break
        with pytest.raises(PermissionDenied) as cancel_refused:
            await reader.update_run_status(run.run_id, run.status.CANCELLED)
        assert cancel_refused.value.reason == "ROLE_NOT_PERMITTED"
    async with AsyncWorkflowStateClient(auth_server.target, token=WRONG_TOKEN) as stranger:
        with pytest.raises(Unauthenticated) as refused:
            await stranger.get_run(run.run_id)
        assert refused.value.reason == "UNAUTHENTICATED"
        assert WRONG_TOKEN not in str(refused.value)


def test_a_worker_needs_a_worker_token(auth_server, monkeypatch, rpc) -> None:
    monkeypatch.delenv("WORKFLOWSTATE_TOKEN", raising=False)
    with WorkflowStateClient(auth_server.target, token=TOKENS[Role.WRITE]) as orchestrator:
        run = orchestrator.create_run("auth-worker")
        step = orchestrator.insert_step_state(run.run_id, "work", rpc, {"n": 2})
        orchestrator.set_step_scheduled(step.step_id)
        with WorkflowStateClient(auth_server.target, token=TOKENS[Role.READ]) as reader:
            refused_worker = Worker(reader, {rpc: lambda task: None})
            with pytest.raises(PermissionDenied) as refused:
                refused_worker.run()
            assert (refused.value.reason, refused.value.metadata["required_role"]) == ("ROLE_NOT_PERMITTED", "worker")
            assert refused.value.message == "a 'read' token may not call StreamStepTasks: it needs a 'worker' or 'admin' token"
        with WorkflowStateClient(auth_server.target, token=TOKENS[Role.WORKER]) as worker_client:
            done = threading.Event()

            def double(task: StepTask) -> dict[str, int]:
                done.set()
                return {"n": task.data["n"] * 2}

            worker = Worker(worker_client, {rpc: double})
            thread = threading.Thread(target=worker.run)
            thread.start()
            try:
                for event in orchestrator.watch_run(run.run_id):
                    if event.step and event.step.status is StepStatus.SUCCEEDED:
                        break
            finally:
                worker.stop()
                thread.join(30)
            assert done.is_set() and not thread.is_alive()
            assert orchestrator.get_step_state(run.run_id, "work").result == {"n": 4}


# --- mutual TLS ---------------------------------------------------------------------------------


def test_mutual_tls_serves_clients_with_a_certificate_of_the_ca_only(start_server, tmp_path: Path, unique) -> None:
    from support.certificates import client_certificate, self_signed

    for folder in ("server", "ca", "other-ca"):
        (tmp_path / folder).mkdir()
    server_cert, server_key = self_signed(tmp_path / "server")
    ca_cert, ca_key = self_signed(tmp_path / "ca")
    other_cert, other_key = self_signed(tmp_path / "other-ca")
    client_cert, client_key = client_certificate(tmp_path / "client", ca_cert, ca_key)
    stranger_cert, stranger_key = client_certificate(tmp_path / "stranger", other_cert, other_key)
    server = start_server(
        "--tls-cert", str(server_cert), "--tls-key", str(server_key), "--tls-client-ca", str(ca_cert), schema=f"mtls_{unique}"
    )
    root = server_cert.read_bytes()

    def credentials(cert: Path | None, key: Path | None) -> grpc.ChannelCredentials:
        if cert is None or key is None:
            return grpc.ssl_channel_credentials(root_certificates=root)
        return grpc.ssl_channel_credentials(root_certificates=root, private_key=key.read_bytes(), certificate_chain=cert.read_bytes())

    with WorkflowStateClient(server.target, tls=credentials(client_cert, client_key)) as client:
        run = client.create_run(unique)
        assert client.get_run(run.run_id) == run
    # Without a certificate, or with one another CA signed, the handshake fails: nothing is served.
    for cert, key in ((None, None), (stranger_cert, stranger_key)):
        with WorkflowStateClient(server.target, tls=credentials(cert, key), retry=False) as refused, pytest.raises(Unavailable):
            refused.get_run(run.run_id)
    assert '"auth": "client certificates"' in server.log_text()


# --- the warning, and the checks at start ---------------------------------------------------------


def _warnings(log_text: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in log_text.splitlines() if line.startswith("{")]
    return [line for line in lines if line["level"] == "warning" and "NO AUTHENTICATION" in line["msg"]]


def test_listening_widely_without_auth_warns_loudly(start_server, tmp_path: Path) -> None:
    open_server = start_server("--listen", "0.0.0.0:0")
    (warning,) = _warnings(open_server.log_text())
    assert '"auth": "none"' in open_server.log_text()
    assert "anyone who can reach this address may read, change and delete every run" in warning["msg"]
    assert warning["address"].startswith("0.0.0.0:")
    tokens = tmp_path / "tokens.txt"
    tokens.write_text(token_line("x", Role.ADMIN) + "\n")
    assert _warnings(start_server("--listen", "0.0.0.0:0", "--auth-tokens", str(tokens)).log_text()) == []
    assert _warnings(start_server().log_text()) == []  # loopback only
    # Client certificates count as auth too.
    from support.certificates import self_signed

    cert, key = self_signed(tmp_path)
    mutual = start_server("--listen", "0.0.0.0:0", "--tls-cert", str(cert), "--tls-key", str(key), "--tls-client-ca", str(cert))
    assert _warnings(mutual.log_text()) == []


def test_auth_refusals_name_their_reason_and_the_roles(stub, rows) -> None:
    request = pb.GetRunRequest(run_id=rows.running_run)
    unknown = functools.partial(stub.GetRun, metadata=metadata(WRONG_TOKEN))
    assert reason_of(unknown, request)[:3] == (grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED", "workflowstate")
    write = pb.CreateRunRequest(workflow="auth-reasons")
    reading = functools.partial(stub.CreateRun, metadata=metadata(TOKENS[Role.READ]))
    code, reason, _, details = reason_of(reading, write)
    assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "ROLE_NOT_PERMITTED")
    assert details == {"role": "read", "required_role": "write"}
