"""ListWorkers over the wire: the worker streams connected to every server sharing a schema, from
any of them; a worker that leaves, or whose server dies, disappears."""

from __future__ import annotations

import uuid
from datetime import timedelta

import grpc
from support.flows import scheduled_steps
from support.polling import wait_until
from support.task_stream import TaskStream
from support.waiting import wait_in_database

from workflowstate.client import WorkerInfo, WorkflowStateClient
from workflowstate.v1 import workflow_state_pb2_grpc as pb_grpc


def _by_worker(workers: list[WorkerInfo]) -> dict[str, WorkerInfo]:
    return {worker.worker_id: worker for worker in workers}


def _rows_of(schema: str, worker_id: str) -> tuple[str, tuple[str]]:
    return f"(SELECT count(*) FROM {schema}.worker_streams WHERE worker_id = {{}})", (worker_id,)


def test_workers_on_two_servers_are_listed_from_either_and_one_that_leaves_disappears(start_server, db, rpc) -> None:
    schema = f"t_{uuid.uuid4().hex[:10]}"
    servers = [start_server(schema=schema) for _ in range(2)]
    channels = [grpc.insecure_channel(server.target) for server in servers]
    stubs = [pb_grpc.WorkflowStateServiceStub(channel) for channel in channels]
    clients = [WorkflowStateClient(server.target) for server in servers]
    only_first = f"{rpc}-first"
    try:
        first, second = TaskStream(stubs[0]), TaskStream(stubs[1])
        first.subscribe([rpc, only_first], worker_id="first", max_in_flight=3)
        second.subscribe([rpc], worker_id="second", max_in_flight=5, task_lease=timedelta(seconds=20))

        seen = [_by_worker(client.list_workers()) for client in clients]
        assert seen[0] == seen[1] and set(seen[0]) == {"first", "second"}
        one, two = seen[0]["first"], seen[0]["second"]
        assert (one.rpc_names, one.max_in_flight, one.tasks_in_flight, one.task_lease) == (sorted([rpc, only_first]), 3, 0, timedelta(seconds=30))
        assert (two.rpc_names, two.max_in_flight, two.tasks_in_flight, two.task_lease) == ([rpc], 5, 0, timedelta(seconds=20))
        assert (one.server_address, two.server_address) == (servers[0].target, servers[1].target)
        assert one.server_id != two.server_id and one.stream_id != two.stream_id
        assert one.heartbeat_time >= one.connect_time

        # Tasks in flight are noted at the worker's heartbeat, not at every task (that stays cheap).
        scheduled_steps(stubs[1], only_first, 1)
        task = first.expect("task")
        first.heartbeat()
        wait_in_database(db, f"(SELECT tasks_in_flight FROM {schema}.worker_streams WHERE worker_id = {{}}) = 1", ("first",))
        after = _by_worker(clients[1].list_workers())["first"]
        assert after.tasks_in_flight == 1 and after.heartbeat_time > one.heartbeat_time
        first.complete(task)
        first.expect("accepted")

        first.close()  # a worker that ends its stream
        assert first.next() == grpc.StatusCode.OK
        query, params = _rows_of(schema, "first")
        wait_in_database(db, query + " = 0", params)
        assert [worker.worker_id for worker in clients[0].list_workers()] == ["second"]
        assert [worker.worker_id for worker in clients[1].list_workers()] == ["second"]
        second.cancel()  # a worker that goes away without a word
        query, params = _rows_of(schema, "second")
        wait_in_database(db, query + " = 0", params)
        assert clients[0].list_workers() == []
    finally:
        for client in clients:
            client.close()
        for channel in channels:
            channel.close()


def test_the_workers_of_a_dead_server_disappear_once_their_task_lease_passed(start_server, db, rpc) -> None:
    schema = f"t_{uuid.uuid4().hex[:10]}"
    # The survivor's sweeper waits a minute: its ListWorkers must leave the dead rows out by itself.
    survivor = start_server("--dispatch-poll-interval", "60", schema=schema)
    doomed = start_server(schema=schema)
    with grpc.insecure_channel(doomed.target) as channel, WorkflowStateClient(survivor.target) as client:
        stranded = TaskStream(pb_grpc.WorkflowStateServiceStub(channel))
        stranded.subscribe([rpc], worker_id="stranded", task_lease=timedelta(seconds=1))
        query, params = _rows_of(schema, "stranded")
        wait_in_database(db, query + " = 1", params)
        doomed.kill()  # no stream end, no delete: the row stays behind
        wait_until(lambda: "stranded" not in _by_worker(client.list_workers()), "the dead server's worker left out of ListWorkers")
        rows = db.execute(f"SELECT count(*) FROM {schema}.worker_streams WHERE worker_id = 'stranded'").fetchone()[0]
        assert rows == 1, "left out at read time, not deleted"

        # Any server's sweeper deletes such rows.
        start_server("--dispatch-poll-interval", "0.1", schema=schema)
        wait_in_database(db, query + " = 0", params)
