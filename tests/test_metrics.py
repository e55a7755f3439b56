"""Prometheus metrics over HTTP: every RPC counted by method and code, unary durations, open
streams, dispatched tasks, the pool and the database's health."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import grpc
import pytest
from psycopg import sql
from support.flows import new_run, scheduled_steps, status_of
from support.lease_stream import LeaseStream
from support.metrics import metrics_address, scrape
from support.task_stream import TaskStream
from support.waiting import SOMEONE_WAITS_FOR_A_LOCK, wait_in_database

from workflowstate import v1 as pb
from workflowstate.v1 import workflow_state_pb2_grpc as pb_grpc


@pytest.fixture
def served(start_server):
    server = start_server("--metrics-listen", "127.0.0.1:0")
    with grpc.insecure_channel(server.target) as channel:
        yield pb_grpc.WorkflowStateServiceStub(channel), metrics_address(server.log_text())


def test_rpcs_are_counted_by_method_and_code_with_unary_durations(served) -> None:
    stub, address = served
    new_run(stub)
    new_run(stub)
    assert status_of(stub.GetRun, pb.GetRunRequest(run_id="nope"))[0] == grpc.StatusCode.INVALID_ARGUMENT
    samples = scrape(address)
    assert samples[("workflowstate_rpcs_total", (("code", "OK"), ("method", "CreateRun")))] == 2
    assert samples[("workflowstate_rpcs_total", (("code", "INVALID_ARGUMENT"), ("method", "GetRun")))] == 1
    assert samples[("workflowstate_rpc_duration_seconds_count", (("method", "CreateRun"),))] == 2
    assert samples[("workflowstate_rpc_duration_seconds_sum", (("method", "CreateRun"),))] > 0
    assert samples[("workflowstate_database_serving", ())] == 1
    assert samples[("workflowstate_db_pool_size", ())] >= 1
    assert ("process_cpu_seconds_total", ()) in samples


def test_open_streams_and_dispatched_tasks(served) -> None:
    stub, address = served
    lease = LeaseStream(stub)
    lease.acquire(f"metrics-{uuid.uuid4().hex[:8]}", timedelta(seconds=30))
    lease.expect("granted")
    worker = TaskStream(stub)
    rpc = f"rpc-{uuid.uuid4().hex[:8]}"
    worker.subscribe([rpc])
    scheduled_steps(stub, rpc, 2)
    for _ in range(2):
        worker.expect("task")
    samples = scrape(address)
    assert samples[("workflowstate_open_streams", (("method", "Lease"),))] == 1
    assert samples[("workflowstate_open_streams", (("method", "StreamStepTasks"),))] == 1
    assert samples[("workflowstate_tasks_dispatched_total", ())] == 2

    worker.cancel()
    lease.close()
    assert lease.next() == grpc.StatusCode.OK  # the server counted the stream closed before ending it
    samples = scrape(address)
    assert samples[("workflowstate_open_streams", (("method", "Lease"),))] == 0
    assert samples[("workflowstate_rpcs_total", (("code", "OK"), ("method", "Lease")))] == 1
    assert ("workflowstate_rpc_duration_seconds_count", (("method", "Lease"),)) not in samples, "a stream's length is no latency"


def _until(condition, timeout: float = 30.0):
    """Poll condition() (scraping is the only way to see the counters) until it returns a truthy value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


def test_cancelled_calls_are_counted_cancelled_and_close_their_streams(start_server, db, unique) -> None:
    server = start_server("--metrics-listen", "127.0.0.1:0")
    address = metrics_address(server.log_text())
    streams = 4
    with grpc.insecure_channel(server.target) as channel:
        stub = pb_grpc.WorkflowStateServiceStub(channel)
        leases, workers = [LeaseStream(stub) for _ in range(streams)], [TaskStream(stub) for _ in range(streams)]
        for i, lease in enumerate(leases):
            lease.acquire(f"cancelled-{unique}-{i}", timedelta(seconds=30))
            lease.expect("granted")
        for worker in workers:
            worker.subscribe([f"rpc-{unique}"])
        run = new_run(stub)

        def counted() -> bool:
            samples = scrape(address)
            return (
                samples.get(("workflowstate_open_streams", (("method", "Lease"),))) == 0
                and samples.get(("workflowstate_open_streams", (("method", "StreamStepTasks"),))) == 0
                and samples.get(("workflowstate_rpcs_total", (("code", "CANCELLED"), ("method", "Lease")))) == streams
                and samples.get(("workflowstate_rpcs_total", (("code", "CANCELLED"), ("method", "StreamStepTasks")))) == streams
                and samples.get(("workflowstate_rpcs_total", (("code", "CANCELLED"), ("method", "UpdateRunStatus")))) == 1
            )

        with db.transaction():
            # A unary call cancelled while it waits on a row lock of ours (held until the end, so
            # the call cannot finish before the cancel reaches the server).
            db.execute(sql.SQL("SELECT FROM {} WHERE run_id = %s FOR UPDATE").format(sql.Identifier(server.schema, "runs")), (run.run_id,))
            waiting = stub.UpdateRunStatus.future(pb.UpdateRunStatusRequest(run_id=run.run_id, status=pb.RUN_STATUS_COMPLETED), timeout=60)
            wait_in_database(db, SOMEONE_WAITS_FOR_A_LOCK)
            assert _until(lambda: scrape(address)[("workflowstate_open_streams", (("method", "Lease"),))] == streams)
            for stream in (*leases, *workers):
                stream.cancel()
            waiting.cancel()
            calls = ("workflowstate_rpcs_total", "workflowstate_open_streams")
            assert _until(counted), sorted((key, value) for key, value in scrape(address).items() if key[0] in calls)
