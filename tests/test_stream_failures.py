"""Streams that fail under the server: a message it cannot read, a worker gone while a batch of
tasks is being written. The stream ends with a clear status and releases what it held at once."""

from __future__ import annotations

import queue
import uuid
from datetime import timedelta

import grpc
import psycopg
from psycopg import sql
from support.bidi_stream import BidiStream, duration
from support.flows import new_run, scheduled_steps, status_of
from support.waiting import wait_in_database

from workflowstate import v1 as pb
from workflowstate.v1 import workflow_state_pb2_grpc as pb_grpc

SERVICE = "/workflowstate.v1.WorkflowStateService/"
NOT_A_MESSAGE = b"\xff\xff\xff\xff"  # field number 0 with a bad wire type: no protobuf parses it


def raw_stream(channel: grpc.Channel, method: str, response: type) -> BidiStream:
    """A stream whose requests are bytes, so a test can send what no client library would."""
    return BidiStream(channel.stream_stream(SERVICE + method, request_serializer=None, response_deserializer=response.FromString))


def test_an_unreadable_lease_message_ends_the_stream_and_releases_the_lease(server_target, stub, unique) -> None:
    key = f"unreadable-{unique}"
    with grpc.insecure_channel(server_target) as channel:
        stream = raw_stream(channel, "Lease", pb.LeaseResponse)
        acquire = pb.LeaseAcquire(key=key, ttl=duration(timedelta(minutes=5)), holder="garbled")
        stream.send(pb.LeaseRequest(acquire=acquire).SerializeToString())
        stream.expect("granted")
        stream.send(NOT_A_MESSAGE)
        details = stream.expect_end(grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
        assert "not a valid request" in details
    # Released before the stream ended, not at the ttl of five minutes.
    assert status_of(stub.GetLease, pb.GetLeaseRequest(key=key))[0] == grpc.StatusCode.NOT_FOUND


def test_an_unreadable_worker_message_ends_the_stream_and_fails_its_tasks(server_target, stub, db, unique) -> None:
    rpc_name = f"unreadable-{unique}"
    with grpc.insecure_channel(server_target) as channel:
        stream = raw_stream(channel, "StreamStepTasks", pb.StreamStepTasksResponse)
        subscribe = pb.StepTaskSubscribe(worker_id="garbled", rpc_names=[rpc_name], max_in_flight=1, task_lease=duration(timedelta(minutes=5)))
        stream.send(pb.StreamStepTasksRequest(subscribe=subscribe).SerializeToString())
        stream.expect("subscribed")
        [step] = scheduled_steps(stub, rpc_name, 1)
        task = stream.expect("task")
        assert task.step_id == step.step_id
        stream.send(NOT_A_MESSAGE)
        assert "not a valid request" in stream.expect_end(grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    # Failed as lost before the stream ended, not when its task lease of five minutes passed.
    state = db.execute("SELECT status, attempt_count FROM workflows_test.steps WHERE step_id = %s", (step.step_id,)).fetchone()
    assert state != ("running", 1), state


def test_tasks_claimed_but_not_yet_written_are_failed_when_the_worker_goes(start_server, database_url, unique) -> None:
    """A worker that takes a batch of large tasks and vanishes before the server has written them
    all: every attempt of the batch is failed when its stream ends, not left RUNNING for the sweeper."""
    server = start_server()
    batch = 8
    rpc_name = f"batch-{unique}"
    # A receive window that never grows: the server's writes of the large tasks wait on it.
    options = [("grpc.http2.bdp_probe", 0), ("grpc.use_local_subchannel_pool", 1)]
    with grpc.insecure_channel(server.target) as channel, grpc.insecure_channel(server.target, options=options) as worker_channel:
        stub = pb_grpc.WorkflowStateServiceStub(channel)
        run = new_run(stub)
        big = '"' + "x" * (900 * 1024) + '"'
        step_ids = []
        for i in range(batch):
            insert = pb.InsertStepStateRequest(run_id=run.run_id, step_name=f"big-{i}", rpc_name=rpc_name, data_json=big)
            step = stub.InsertStepState(insert).step
            stub.SetStepScheduled(pb.SetStepScheduledRequest(step_id=step.step_id))
            step_ids.append(uuid.UUID(step.step_id))
        requests: queue.Queue[pb.StreamStepTasksRequest | None] = queue.Queue()
        subscribe = pb.StepTaskSubscribe(worker_id="vanishing", rpc_names=[rpc_name], max_in_flight=batch, task_lease=duration(timedelta(minutes=5)))
        requests.put(pb.StreamStepTasksRequest(subscribe=subscribe))
        # Never iterated: the worker reads no answer, so the tasks stay in the server's writes.
        call = pb_grpc.WorkflowStateServiceStub(worker_channel).StreamStepTasks(iter(requests.get, None))
        try:
            with psycopg.connect(database_url, autocommit=True) as db:
                steps_table = sql.Identifier(server.schema, "steps")
                running = sql.SQL("(SELECT count(*) FROM {} WHERE step_id = ANY({{}}) AND status = 'running') = {{}}").format(steps_table)
                wait_in_database(db, running.as_string(db), (step_ids, batch))
                call.cancel()
                # Well before the sweeper, which would wait for the task lease of five minutes
                # (a minute of room: seen once past 15 s in a full run on the loaded 2-core machine).
                wait_in_database(db, running.as_string(db), (step_ids, 0), timeout=60)
        finally:
            requests.put(None)
