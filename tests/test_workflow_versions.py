"""Workflow versions over the wire: upsert keeps the first graph of a hash, get, and
every status move of the table (written out here from the contract's text), legal and illegal."""

from __future__ import annotations

import json

import grpc
import pytest
from support.flows import ending_of, reason_of, refusal_of, status_of

from workflowstate import v1 as pb

DRAFT, ACTIVE, DECLINED = pb.WORKFLOW_VERSION_STATUS_DRAFT, pb.WORKFLOW_VERSION_STATUS_ACTIVE, pb.WORKFLOW_VERSION_STATUS_DECLINED
STATUSES = [DRAFT, ACTIVE, DECLINED]
LEGAL = {DRAFT: {ACTIVE, DECLINED}, ACTIVE: {DECLINED}, DECLINED: {ACTIVE}}
INVALID = grpc.StatusCode.INVALID_ARGUMENT
LIMIT = 1024 * 1024


def _name(status: int) -> str:
    return pb.WorkflowVersionStatus.Name(status).removeprefix("WORKFLOW_VERSION_STATUS_")


def _upsert(stub, workflow: str, graph_hash: str = "h1", graph_json: str = '{"nodes": ["a"]}', **fields) -> pb.UpsertWorkflowVersionResponse:
    return stub.UpsertWorkflowVersion(pb.UpsertWorkflowVersionRequest(workflow=workflow, graph_hash=graph_hash, graph_json=graph_json, **fields))


def _get(stub, workflow: str, graph_hash: str = "h1") -> pb.WorkflowVersion:
    return stub.GetWorkflowVersion(pb.GetWorkflowVersionRequest(workflow=workflow, graph_hash=graph_hash)).version


def test_upsert_creates_once_and_keeps_the_first_graph(stub, unique) -> None:
    first = _upsert(stub, unique, source="dsl")
    assert first.created
    version = first.version
    assert (version.workflow, version.graph_hash, version.source, version.status) == (unique, "h1", "dsl", ACTIVE)
    assert json.loads(version.graph_json) == {"nodes": ["a"]}
    again = _upsert(stub, unique, graph_json='{"nodes": ["b"]}', source="graph", status=DRAFT)
    assert not again.created and again.version == version, "a hash names one graph: the existing version is returned unchanged"
    assert _get(stub, unique) == version
    other = _upsert(stub, f"{unique}-other")
    assert other.created, "the same hash in another workflow is another version"


def test_upsert_with_a_status_and_an_empty_graph(stub, unique) -> None:
    version = _upsert(stub, unique, graph_json="", status=DRAFT).version
    assert version.status == DRAFT and version.graph_json == "null" and version.source == ""


def test_get_an_unknown_version_is_not_found(stub, unique) -> None:
    refused = refusal_of(stub.GetWorkflowVersion, pb.GetWorkflowVersionRequest(workflow=unique, graph_hash="nope"))
    assert (refused.code, refused.reason) == (grpc.StatusCode.NOT_FOUND, "MISSING"), refused
    assert refused.metadata == {"workflow": unique, "graph_hash": "nope"}, refused
    assert unique in refused.message and "nope" in refused.message, refused


@pytest.mark.parametrize("source", STATUSES, ids=_name)
@pytest.mark.parametrize("target", STATUSES, ids=_name)
def test_version_status_moves(stub, unique, source: int, target: int) -> None:
    before = _upsert(stub, unique, status=source).version
    request = pb.UpdateWorkflowVersionStatusRequest(workflow=unique, graph_hash="h1", status=target)
    ended = ending_of(stub.UpdateWorkflowVersionStatus, request)
    code, message = ended.code, ended.message
    after = _get(stub, unique)
    if source == target:
        assert code == grpc.StatusCode.OK, message
        assert after == before, "setting the status it has is a no-op"
    elif target in LEGAL[source]:
        assert code == grpc.StatusCode.OK, message
        assert after.status == target and after.update_time.ToDatetime() >= before.update_time.ToDatetime()
        assert stub.UpdateWorkflowVersionStatus(request).version == after
    else:
        assert (code, ended.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "ILLEGAL_TRANSITION"), ended
        assert (ended.metadata["prior_status"], ended.metadata["target_status"]) == (_name(source), _name(target)), ended
        assert (ended.metadata["workflow"], ended.metadata["graph_hash"]) == (unique, "h1"), ended
        assert _name(target) in message, message
        assert after == before


def test_update_status_of_an_unknown_version_is_not_found(stub, unique) -> None:
    request = pb.UpdateWorkflowVersionStatusRequest(workflow=unique, graph_hash="nope", status=ACTIVE)
    code, reason, _, metadata = reason_of(stub.UpdateWorkflowVersionStatus, request)
    assert (code, reason, metadata["graph_hash"]) == (grpc.StatusCode.NOT_FOUND, "MISSING", "nope"), metadata


def test_bad_input_names_the_field_and_writes_nothing(stub, db, unique) -> None:
    cases = [
        (stub.UpsertWorkflowVersion, pb.UpsertWorkflowVersionRequest(graph_hash="h"), "workflow"),
        (stub.UpsertWorkflowVersion, pb.UpsertWorkflowVersionRequest(workflow="w" * 257, graph_hash="h"), "workflow"),
        (stub.UpsertWorkflowVersion, pb.UpsertWorkflowVersionRequest(workflow=unique), "graph_hash"),
        (stub.UpsertWorkflowVersion, pb.UpsertWorkflowVersionRequest(workflow=unique, graph_hash="h" * 257), "graph_hash"),
        (stub.UpsertWorkflowVersion, pb.UpsertWorkflowVersionRequest(workflow=unique, graph_hash="h", graph_json="{"), "graph_json"),
        (
            stub.UpsertWorkflowVersion,
            pb.UpsertWorkflowVersionRequest(workflow=unique, graph_hash="h", graph_json='"' + "x" * LIMIT + '"'),
            "graph_json",
        ),
        (stub.UpsertWorkflowVersion, pb.UpsertWorkflowVersionRequest(workflow=unique, graph_hash="h", source="s" * 257), "source"),
        (stub.UpsertWorkflowVersion, pb.UpsertWorkflowVersionRequest(workflow=unique, graph_hash="h", status=42), "status"),
        (stub.GetWorkflowVersion, pb.GetWorkflowVersionRequest(graph_hash="h"), "workflow"),
        (stub.GetWorkflowVersion, pb.GetWorkflowVersionRequest(workflow=unique), "graph_hash"),
        (stub.UpdateWorkflowVersionStatus, pb.UpdateWorkflowVersionStatusRequest(workflow=unique, graph_hash="h"), "status"),
        (stub.UpdateWorkflowVersionStatus, pb.UpdateWorkflowVersionStatusRequest(workflow=unique, graph_hash="h", status=9), "status"),
        (stub.UpdateWorkflowVersionStatus, pb.UpdateWorkflowVersionStatusRequest(graph_hash="h", status=ACTIVE), "workflow"),
    ]
    for call, request, field in cases:
        code, message = status_of(call, request)
        assert code == INVALID and field in message, (request, message)
    assert db.execute("SELECT count(*) FROM workflows_test.workflow_versions WHERE workflow = %s", (unique,)).fetchone()[0] == 0
