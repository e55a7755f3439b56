"""ListLeases over the wire: the leases held now, by key, filtered by prefix, in pages bound to it."""

from __future__ import annotations

import uuid
from contextlib import ExitStack
from datetime import timedelta

import grpc
import pytest
from support.flows import refusal_of, status_of

from workflowstate.client import InvalidArgument, WorkflowStateClient
from workflowstate import v1 as pb


def test_the_held_leases_are_listed_by_key_in_pages_and_released_ones_are_not(server_target: str, stub) -> None:
    prefix = f"list-{uuid.uuid4().hex[:8]}:"
    with WorkflowStateClient(server_target) as client, ExitStack() as held:
        # Acquired out of key order, so an order of acquisition would show.
        leases = {key: held.enter_context(client.lease(prefix + key, ttl=timedelta(seconds=60), holder=f"h-{key}")) for key in "dbeac"}
        with client.lease(prefix + "released", ttl=timedelta(seconds=60)):
            pass
        client.lease(f"other-{uuid.uuid4().hex[:8]}", ttl=timedelta(seconds=60))  # never entered: not held

        keys, token, pages = [], None, 0
        while True:
            page = client.list_leases(key_prefix=prefix, page_size=2, page_token=token)
            keys += [lease.key for lease in page.leases]
            pages += 1
            token = page.next_page_token
            if token is None:
                break
        assert keys == [prefix + key for key in "abcde"] and pages == 3
        [first] = client.list_leases(key_prefix=prefix + "a").leases
        assert (first.holder, first.fencing_token) == ("h-a", leases["a"].fencing_token)
        assert first.expire_time > first.acquire_time

        everything = stub.ListLeases(pb.ListLeasesRequest(page_size=1000)).leases
        assert {prefix + key for key in "abcde"} <= {lease.key for lease in everything}
        assert prefix + "released" not in {lease.key for lease in everything}

        token = client.list_leases(key_prefix=prefix, page_size=1).next_page_token
        with pytest.raises(InvalidArgument, match="page_token"):
            client.list_leases(key_prefix=prefix + "b", page_token=token)


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (pb.ListLeasesRequest(page_size=-1), "page_size"),
        (pb.ListLeasesRequest(page_size=1001), "page_size"),
        (pb.ListLeasesRequest(page_token="zzz"), "page_token"),
        (pb.ListLeasesRequest(key_prefix="k" * 1025), "key_prefix"),
        (pb.ListLeasesRequest(key_prefix="a\x00"), "key_prefix"),
    ],
)
def test_bad_requests_are_invalid_argument_naming_the_field(stub, request_, field) -> None:
    refused = refusal_of(stub.ListLeases, request_)
    assert (refused.code, refused.reason, refused.metadata.get("field")) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT", field), refused
    assert refused.message.startswith(field), refused


def test_a_run_list_token_is_no_lease_list_token(stub) -> None:
    for _ in range(2):
        stub.CreateRun(pb.CreateRunRequest(workflow="token-kinds"))
    token = stub.ListRuns(pb.ListRunsRequest(filter=pb.RunFilter(workflow="token-kinds"), page_size=1)).next_page_token
    code, message = status_of(stub.ListLeases, pb.ListLeasesRequest(page_token=token))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "page_token" in message
