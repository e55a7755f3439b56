"""Retention policies over the wire: their CRUD with exact codes, and the background erasing of
the runs they match (and of nothing else) by two servers sharing a schema."""

from __future__ import annotations

import uuid
from datetime import timedelta

import grpc
import psycopg
import pytest
from google.protobuf.duration_pb2 import Duration
from psycopg import sql
from support.bidi_stream import duration
from support.flows import new_run, new_step, reason_of, status_of
from support.metrics import metrics_address, scrape
from support.polling import wait_until
from support.waiting import wait_in_database

from workflowstate.client import InvalidArgument, NotFound, RunStatus, WorkflowStateClient
from workflowstate import v1 as pb
from workflowstate.v1 import workflow_state_pb2_grpc as pb_grpc

DAY = timedelta(days=1)


# --- the policies --------------------------------------------------------------


def test_a_policy_is_set_listed_replaced_by_workflow_and_statuses_and_deleted(server_target: str) -> None:
    workflow = f"ret-{uuid.uuid4().hex[:8]}"
    with WorkflowStateClient(server_target) as client:
        failed = client.set_retention_policy(workflow=workflow, statuses=[RunStatus.FAILED, RunStatus.CANCELLED], keep=7 * DAY)
        assert (failed.workflow, failed.statuses, failed.keep) == (workflow, (RunStatus.FAILED, RunStatus.CANCELLED), 7 * DAY)
        # The same workflow and set of statuses, in another order and repeated: the same policy, a new keep.
        again = client.set_retention_policy(
            workflow=workflow, statuses=[RunStatus.CANCELLED, RunStatus.FAILED, RunStatus.CANCELLED], keep=DAY
        )
        assert (again.policy_id, again.keep, again.create_time) == (failed.policy_id, DAY, failed.create_time)
        assert again.update_time > failed.update_time
        # No statuses means every finished one: another policy than the one above.
        every = client.set_retention_policy(workflow=workflow, keep=30 * DAY)
        assert every.statuses == (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED)
        assert every.policy_id != failed.policy_id
        explicit = client.set_retention_policy(
            workflow=workflow, statuses=[RunStatus.CANCELLED, RunStatus.COMPLETED, RunStatus.FAILED], keep=31 * DAY
        )
        assert explicit.policy_id == every.policy_id

        mine = [policy for policy in client.list_retention_policies() if policy.workflow == workflow]
        assert [(policy.policy_id, policy.keep) for policy in mine] == sorted([(failed.policy_id, DAY), (every.policy_id, 31 * DAY)])

        client.delete_retention_policy(failed.policy_id)
        with pytest.raises(NotFound) as gone:
            client.delete_retention_policy(failed.policy_id)
        assert gone.value.reason == "NOT_FOUND"
        assert [policy.policy_id for policy in client.list_retention_policies() if policy.workflow == workflow] == [every.policy_id]
        client.delete_retention_policy(every.policy_id)


def test_a_policy_for_every_workflow_has_no_workflow(server_target: str) -> None:
    with WorkflowStateClient(server_target) as client:
        # A century: this policy erases nothing the other tests make while it exists.
        policy = client.set_retention_policy(statuses=[RunStatus.CANCELLED], keep=36500 * DAY)
        try:
            assert policy.workflow is None
            assert policy in client.list_retention_policies()
        finally:
            client.delete_retention_policy(policy.policy_id)


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (
            pb.SetRetentionPolicyRequest(statuses=[pb.RUN_STATUS_RUNNING], keep=duration(DAY)),
            "statuses may only hold finished statuses (RUN_STATUS_COMPLETED, RUN_STATUS_FAILED, RUN_STATUS_CANCELLED): "
            "retention never erases a run that is not finished (running or suspended)",
        ),
        (
            pb.SetRetentionPolicyRequest(statuses=[pb.RUN_STATUS_UNSPECIFIED], keep=duration(DAY)),
            "statuses must be one of RUN_STATUS_RUNNING, RUN_STATUS_COMPLETED, RUN_STATUS_FAILED, RUN_STATUS_CANCELLED, RUN_STATUS_SUSPENDED, "
            "got RUN_STATUS_UNSPECIFIED",
        ),
        (pb.SetRetentionPolicyRequest(statuses=[pb.RUN_STATUS_FAILED]), "keep is required"),
        (pb.SetRetentionPolicyRequest(keep=duration(timedelta(0))), "keep must be positive and at most 36525 days, got 0:00:00"),
        (pb.SetRetentionPolicyRequest(keep=duration(-DAY)), "keep must be positive and at most 36525 days, got -1 day, 0:00:00"),
        (
            pb.SetRetentionPolicyRequest(keep=duration(timedelta(days=36526))),
            "keep must be positive and at most 36525 days, got 36526 days, 0:00:00",
        ),
        (pb.SetRetentionPolicyRequest(keep=Duration(seconds=1, nanos=-1)), "keep is not a valid duration"),
        (pb.SetRetentionPolicyRequest(workflow="w" * 257, keep=duration(DAY)), "workflow is 257 characters long; the limit is 256"),
        (pb.SetRetentionPolicyRequest(workflow="a\x00b", keep=duration(DAY)), "workflow must not contain the NUL character"),
    ],
)
def test_bad_policies_are_invalid_argument_and_nothing_is_stored(stub, db, request_, message) -> None:
    before = db.execute("SELECT count(*) FROM workflows_test.retention_policies").fetchone()
    code, details = status_of(stub.SetRetentionPolicy, request_)
    assert (code, details[: len(message)]) == (grpc.StatusCode.INVALID_ARGUMENT, message)
    assert db.execute("SELECT count(*) FROM workflows_test.retention_policies").fetchone() == before


@pytest.mark.parametrize("policy_id", [0, -3])
def test_a_policy_id_must_be_positive(stub, policy_id: int) -> None:
    code, details = status_of(stub.DeleteRetentionPolicy, pb.DeleteRetentionPolicyRequest(policy_id=policy_id))
    assert (code, details) == (grpc.StatusCode.INVALID_ARGUMENT, f"policy_id must be positive, got {policy_id}")


def test_an_unknown_policy_is_not_found(stub) -> None:
    code, reason, _, _ = reason_of(stub.DeleteRetentionPolicy, pb.DeleteRetentionPolicyRequest(policy_id=2**62))
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "NOT_FOUND")


def test_the_client_raises_invalid_argument_for_a_running_status(server_target: str) -> None:
    with WorkflowStateClient(server_target) as client, pytest.raises(InvalidArgument, match="^INVALID_ARGUMENT: statuses may only hold finished"):
        client.set_retention_policy(statuses=[RunStatus.RUNNING], keep=DAY)


# --- the erasing -----------------------------------------------------------------


def _finished(stub: pb_grpc.WorkflowStateServiceStub, workflow: str, status: int, *, with_step: bool = False) -> str:
    """A run of workflow moved to status (a step failed first when with_step: attempts and events)."""
    run = new_run(stub, workflow)
    if with_step:
        step = new_step(stub, run.run_id)
        stub.SetStepError(pb.SetStepErrorRequest(step_id=step.step_id, error=pb.Failure(message="boom")))
    if status != pb.RUN_STATUS_RUNNING:
        stub.UpdateRunStatus(pb.UpdateRunStatusRequest(run_id=run.run_id, status=status))
    return run.run_id


def _age(db: psycopg.Connection, schema: str, run_id: str, age: timedelta) -> None:
    """Make a run look as if it last changed `age` ago (no event: only a status change makes one)."""
    db.execute(sql.SQL("UPDATE {}.runs SET update_time = now() - %s WHERE run_id = %s").format(sql.Identifier(schema)), (age, run_id))


def _rows_of(db: psycopg.Connection, schema: str, run_ids: list[str]) -> dict[str, int]:
    counts = {}
    for table in ("runs", "steps", "step_attempts", "run_events"):
        query = sql.SQL("SELECT count(*) FROM {}.{} WHERE run_id = ANY(%s::uuid[])").format(sql.Identifier(schema), sql.Identifier(table))
        counts[table] = db.execute(query, (run_ids,)).fetchone()[0]
    return counts


def _gone(schema: str, run_ids: list[str]) -> tuple[str, tuple[object, ...]]:
    return f"NOT EXISTS (SELECT FROM {schema}.runs WHERE run_id = ANY({{}}::uuid[]))", (run_ids,)


def test_two_servers_erase_what_the_policies_match_and_nothing_else(start_server, db) -> None:
    schema = f"t_{uuid.uuid4().hex[:10]}"
    servers = [start_server("--retention-interval", "0.1", "--metrics-listen", "127.0.0.1:0", schema=schema) for _ in range(2)]
    mine, other = f"ret-{uuid.uuid4().hex[:6]}", f"other-{uuid.uuid4().hex[:6]}"
    with grpc.insecure_channel(servers[0].target) as channel:
        stub = pb_grpc.WorkflowStateServiceStub(channel)
        old, ancient = timedelta(hours=2), 11 * DAY
        runs = {
            # Erased: matched by a policy and finished long enough ago.
            "mine failed, old": (_finished(stub, mine, pb.RUN_STATUS_FAILED, with_step=True), old, True),
            "mine cancelled, old": (_finished(stub, mine, pb.RUN_STATUS_CANCELLED, with_step=True), old, True),
            "mine completed, ancient": (_finished(stub, mine, pb.RUN_STATUS_COMPLETED), ancient, True),
            "other completed, ancient": (_finished(stub, other, pb.RUN_STATUS_COMPLETED, with_step=True), ancient, True),
            # Kept: another status, too young, running, another workflow.
            "mine completed, old": (_finished(stub, mine, pb.RUN_STATUS_COMPLETED), old, False),
            "mine failed, young": (_finished(stub, mine, pb.RUN_STATUS_FAILED, with_step=True), timedelta(minutes=30), False),
            "mine running, ancient": (_finished(stub, mine, pb.RUN_STATUS_RUNNING, with_step=True), ancient, False),
            "other failed, old": (_finished(stub, other, pb.RUN_STATUS_FAILED, with_step=True), old, False),
            "other cancelled, ancient-ish": (_finished(stub, other, pb.RUN_STATUS_CANCELLED), 9 * DAY, False),
        }
        for run_id, age, _ in runs.values():
            _age(db, schema, run_id, age)
        erased = [run_id for run_id, _, gone in runs.values() if gone]
        kept = [run_id for run_id, _, gone in runs.values() if not gone]
        assert _rows_of(db, schema, erased)["step_attempts"] == 3 and _rows_of(db, schema, erased)["run_events"] > 0

        # Set through different servers: both apply both, read from the database.
        stub.SetRetentionPolicy(
            pb.SetRetentionPolicyRequest(workflow=mine, statuses=[pb.RUN_STATUS_FAILED, pb.RUN_STATUS_CANCELLED], keep=duration(timedelta(hours=1)))
        )
    with WorkflowStateClient(servers[1].target) as client:
        client.set_retention_policy(statuses=[RunStatus.COMPLETED], keep=10 * DAY)

        wait_in_database(db, *_gone(schema, erased))
        assert _rows_of(db, schema, erased) == {"runs": 0, "steps": 0, "step_attempts": 0, "run_events": 0}
        # A run matched by the last policy, made after: once it is gone, a whole pass over every
        # policy ran after the runs above were made, and left the kept ones alone.
        sentinel = client.create_run(f"sentinel-{uuid.uuid4().hex[:6]}", None)
        client.update_run_status(sentinel.run_id, RunStatus.COMPLETED)
        _age(db, schema, sentinel.run_id, ancient)
        wait_in_database(db, *_gone(schema, [sentinel.run_id]))
        kept_rows = _rows_of(db, schema, kept)
        assert kept_rows["runs"] == len(kept) and kept_rows["step_attempts"] == 3

    # Each erased run is counted once, by the server that erased it.
    def counted() -> float:
        return sum(scrape(metrics_address(s.log_text())).get(("workflowstate_runs_deleted_by_retention_total", ()), 0) for s in servers)

    wait_until(lambda: counted() >= len(erased) + 1, "the erased runs counted")
    assert counted() == len(erased) + 1


def test_runs_someone_holds_locked_are_skipped_until_released(start_server, db) -> None:
    """Retention waits for no lock: the other runs go at once, a run whose row or one of whose steps
    someone holds (a late worker report would next wait for the run) once it is free."""
    schema = f"t_{uuid.uuid4().hex[:10]}"
    server = start_server("--retention-interval", "0.1", "--metrics-listen", "127.0.0.1:0", schema=schema)
    workflow = f"many-{uuid.uuid4().hex[:6]}"
    table = sql.Identifier(schema)
    with WorkflowStateClient(server.target) as client:
        run_ids, step_ids = [], []
        for _ in range(30):
            run = client.create_run(workflow, None)
            step_ids.append(client.insert_step_state(run.run_id, "only", "rpc", None).step_id)
            client.update_run_status(run.run_id, RunStatus.FAILED)
            run_ids.append(run.run_id)
        db.execute(sql.SQL("UPDATE {}.runs SET update_time = now() - interval '1 day' WHERE workflow = %s").format(table), (workflow,))
        with psycopg.connect(db.info.dsn) as holder:
            holder.execute(sql.SQL("SELECT FROM {}.runs WHERE run_id = %s FOR UPDATE").format(table), (run_ids[0],))
            holder.execute(sql.SQL("SELECT FROM {}.steps WHERE step_id = %s FOR NO KEY UPDATE").format(table), (step_ids[1],))
            client.set_retention_policy(workflow=workflow, keep=timedelta(hours=1))
            wait_in_database(db, *_gone(schema, run_ids[2:]))
            assert _rows_of(db, schema, run_ids[:2]) == {"runs": 2, "steps": 2, "step_attempts": 2, "run_events": 6}
        wait_in_database(db, *_gone(schema, run_ids[:2]))
    address = metrics_address(server.log_text())
    wait_until(lambda: scrape(address)[("workflowstate_runs_deleted_by_retention_total", ())] >= 30, "the erased runs counted")
    assert scrape(address)[("workflowstate_runs_deleted_by_retention_total", ())] == 30
