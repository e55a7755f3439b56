"""Each caller may hold a bounded number of streams open (--max-streams-per-peer without tokens,
--max-streams-per-token with them): one more is RESOURCE_EXHAUSTED naming the bound and its flag,
every kind of stream counts, other callers are untouched, and a stream frees its slot however it
ends (the client's cancel, an error)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from support.flows import error_info_of
from support.metrics import metrics_address, scrape
from support.polling import wait_until
from support.server_process import ServerProcess

from workflowstate.server.rpc.tokens import Role, token_line
from workflowstate import v1 as pb
from workflowstate.v1 import workflow_state_pb2_grpc as pb_grpc


def _open_streams(server: ServerProcess) -> float:
    address = metrics_address(server.log_text())
    return sum(value for (name, _), value in scrape(address).items() if name == "workflowstate_open_streams")


def _wait_open(server: ServerProcess, count: int) -> None:
    wait_until(lambda: _open_streams(server) == count, f"{count} streams open on the server")


def _refusal(call: grpc.Call) -> tuple[grpc.StatusCode, str, str]:
    """The stream's refusal: its code, message and reason."""
    with pytest.raises(grpc.RpcError) as refused:
        next(call)
    return refused.value.code(), refused.value.details(), error_info_of(refused.value)[0]


@pytest.fixture
def channel_of() -> Iterator:
    opened: list[grpc.Channel] = []

    def open_channel(target: str) -> grpc.Channel:
        opened.append(grpc.insecure_channel(target))
        return opened[-1]

    yield open_channel
    for channel in opened:
        channel.close()


def test_streams_past_the_bound_of_a_peer_host_are_refused_until_one_closes(start_server, channel_of) -> None:
    server = start_server("--max-streams-per-peer", "3", "--metrics-listen", "127.0.0.1:0")
    stub = pb_grpc.WorkflowStateServiceStub(channel_of(server.target))
    run = stub.CreateRun(pb.CreateRunRequest(workflow="caps", input_json="{}")).run
    held = [stub.StreamRunEvents(pb.StreamRunEventsRequest(workflow=f"caps-{i}")) for i in range(2)]
    held.append(stub.WatchRun(pb.WatchRunRequest(run_id=run.run_id)))
    _wait_open(server, 3)

    # Any kind of stream counts, over one connection or another.
    other = pb_grpc.WorkflowStateServiceStub(channel_of(server.target))
    code, details, reason = _refusal(other.StreamRunEvents(pb.StreamRunEventsRequest()))
    assert (code, reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "LIMIT_REACHED")
    assert details == (
        "peer host 127.0.0.1 has 3 streams open, the most this server allows (--max-streams-per-peer 3); "
        "close one before opening another StreamRunEvents"
    )
    assert _refusal(other.WatchRun(pb.WatchRunRequest(run_id=run.run_id)))[0] == grpc.StatusCode.RESOURCE_EXHAUSTED
    # Unary calls are not streams: they go on.
    assert stub.GetRun(pb.GetRunRequest(run_id=run.run_id)).run.run_id == run.run_id

    # The client's cancel frees the slot: a new stream is taken.
    held.pop().cancel()
    _wait_open(server, 2)
    held.append(other.StreamRunEvents(pb.StreamRunEventsRequest()))
    _wait_open(server, 3)
    assert _refusal(other.StreamRunEvents(pb.StreamRunEventsRequest()))[0] == grpc.StatusCode.RESOURCE_EXHAUSTED
    for call in held:
        call.cancel()
    _wait_open(server, 0)


def test_a_stream_that_ends_in_an_error_frees_its_slot(start_server, channel_of) -> None:
    server = start_server("--max-streams-per-peer", "2", "--metrics-listen", "127.0.0.1:0")
    stub = pb_grpc.WorkflowStateServiceStub(channel_of(server.target))
    idle = stub.StreamRunEvents(pb.StreamRunEventsRequest())
    _wait_open(server, 1)
    # Each takes the last slot and ends NOT_FOUND; a slot it kept would refuse the next one.
    for _ in range(4):
        code, _, _ = _refusal(stub.WatchRun(pb.WatchRunRequest(run_id=str(uuid.uuid4()))))
        assert code == grpc.StatusCode.NOT_FOUND
    idle.cancel()
    _wait_open(server, 0)


def test_with_tokens_each_token_has_its_own_bound_and_the_refusal_never_shows_it(start_server, channel_of, tmp_path: Path) -> None:
    first, second = f"first-{uuid.uuid4().hex}", f"second-{uuid.uuid4().hex}"
    tokens = tmp_path / "tokens"
    tokens.write_text(token_line(first, Role.READ) + "\n" + token_line(second, Role.READ) + "\n")
    server = start_server("--auth-tokens", str(tokens), "--max-streams-per-token", "2", "--metrics-listen", "127.0.0.1:0")
    stub = pb_grpc.WorkflowStateServiceStub(channel_of(server.target))

    def events(token: str) -> grpc.Call:
        return stub.StreamRunEvents(pb.StreamRunEventsRequest(), metadata=(("authorization", f"Bearer {token}"),))

    held = [events(first), events(first)]
    _wait_open(server, 2)
    code, details, reason = _refusal(events(first))
    assert (code, reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "LIMIT_REACHED")
    assert details.startswith("this token has 2 streams open, the most this server allows (--max-streams-per-token 2)")
    assert first not in details
    # Another token, from the same host, has its own slots.
    held += [events(second), events(second)]
    _wait_open(server, 4)
    held.pop(0).cancel()
    _wait_open(server, 3)
    held.append(events(first))
    _wait_open(server, 4)
    for call in held:
        call.cancel()
