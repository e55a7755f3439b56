"""Generated requests for every RPC on the server's port: none gets INTERNAL or UNKNOWN.

Each request is built from the RPC's input descriptor (tests/support/fuzz_messages.py: odd and
oversized strings, JSON no parser likes, integers at their limits, timestamps and durations past
theirs, unknown enum numbers, repeated fields by the thousand) and sent to a real server. Whatever
the server answers must be a deliberate answer: any code but INTERNAL and UNKNOWN, and a reply no
larger than REPLY_LIMIT. After each RPC's examples the server still answers health, and at the end
its log holds no "unexpected error". Hypothesis runs derandomized with no example database, so the
same requests are sent on every run and nothing is written beside the tests.

The server has its own schema: generated CancelRuns, DeleteRuns or retention policies act on
every run they match, and must not touch the runs of other tests.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from support.server_process import assert_no_internal_errors
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from support.fuzz_messages import Generated, MessageStrategies, Sizes
from support.server_process import ServerProcess

from workflowstate.server.rpc.reply_bounds import max_item_bytes
from workflowstate import v1 as pb
from workflowstate.v1 import workflow_state_pb2_grpc as pb_grpc

# database=None keeps no examples, but Hypothesis still caches its Unicode tables and the constants
# it reads from our source: in the temporary folder, not in a .hypothesis folder of the work tree.
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "workflowstate-hypothesis")

# A small payload limit keeps oversized values cheap to build and send; the rules are the same.
PAYLOAD_LIMIT = 64 * 1024
# What gRPC lets into the server in one message (server/ops/app.py: every payload field of the
# largest request at the limit, plus room for the rest).
MESSAGE_LIMIT = 4 * PAYLOAD_LIMIT + 64 * 1024
# The bound on a reply of one record. A record carries at most four payloads (a step's data, result
# and error; a run's input, output and state), each within the payload limit, beside fields of
# bounded size, which is what MESSAGE_LIMIT makes room for. A reply past it means the server sends
# more than anyone could have stored through the API: a payload that grew on the way in (a JSON
# number written out in full).
REPLY_LIMIT = MESSAGE_LIMIT
# Replies of many records (pages, histories, batches) are bounded by the server's --max-reply-bytes,
# given here as the least it accepts, so a page with no byte bound shows.
MANY_RECORDS_LIMIT = max_item_bytes(PAYLOAD_LIMIT)


def _reply_limit(method) -> int:
    many = method.name.startswith("List") or method.name in ("Batch", "GetRunHistory")
    return MANY_RECORDS_LIMIT if many else REPLY_LIMIT

SERVICES = [
    pb.SERVICE_DESCRIPTOR,
    health_pb2.DESCRIPTOR.services_by_name["Health"],
    reflection_pb2.DESCRIPTOR.services_by_name["ServerReflection"],
]
UNARY = [method for service in SERVICES for method in service.methods if not method.client_streaming and not method.server_streaming]
STREAMING = [method for service in SERVICES for method in service.methods if method.client_streaming or method.server_streaming]

NEVER = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}
UNARY_TIMEOUT = 60.0  # a unary call that takes this long is hung, and fails
STREAM_TIMEOUT = 1.0  # a stream may rightly wait for work that never comes: the deadline ends it
STREAM_MESSAGES = 3  # requests sent on one stream, and replies read from it
# Per RPC; the whole tier (about fifty RPCs) stays within a minute on a 2-core machine.
UNARY_EXAMPLES = 40
STREAM_EXAMPLES = 6

FUZZ_SETTINGS = dict(
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=False,
    # No shrinking: each step is a call to the server, and the short repr of Generated already
    # shows the failing request.
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)


@pytest.fixture(scope="module")
def fuzz_server(database_url: str) -> Iterator[ServerProcess]:
    process = ServerProcess(
        database_url, f"fuzz_{uuid.uuid4().hex[:10]}", "--max-payload-bytes", str(PAYLOAD_LIMIT),
        "--max-reply-bytes", str(MANY_RECORDS_LIMIT), "--health-interval", "0.2",
    ).start()
    yield process
    assert process.stop() == 0, process.log_text()[-4000:]
    assert_no_internal_errors(process)


@pytest.fixture(scope="module")
def channel(fuzz_server: ServerProcess) -> Iterator[grpc.Channel]:
    # No receive limit on this side: an oversized reply must arrive whole to be measured.
    with grpc.insecure_channel(fuzz_server.target, options=[("grpc.max_receive_message_length", -1)]) as channel:
        yield channel


@pytest.fixture(scope="module")
def seed(channel: grpc.Channel) -> dict[str, str]:
    """A real run and step: generated ids and names sometimes name them, so handlers get past NOT_FOUND."""
    stub = pb_grpc.WorkflowStateServiceStub(channel)
    run = stub.CreateRun(pb.CreateRunRequest(workflow="fuzz-seed", input_json='{"n": 1}')).run
    step = stub.InsertStepState(pb.InsertStepStateRequest(run_id=run.run_id, step_name="seed-step", rpc_name="seed-rpc")).step
    return {"run_id": run.run_id, "step_id": step.step_id, "workflow": "fuzz-seed", "step_name": "seed-step", "rpc_name": "seed-rpc"}


@pytest.fixture(scope="module")
def strategies(seed: dict[str, str]) -> MessageStrategies:
    ids = [seed["run_id"], seed["step_id"]]
    return MessageStrategies(Sizes(PAYLOAD_LIMIT, MESSAGE_LIMIT), known_ids=ids, known_names=[seed["workflow"], seed["step_name"], seed["rpc_name"]])


def _path(method) -> str:
    return f"/{method.containing_service.full_name}/{method.name}"


def _serialize(message) -> bytes:
    return message.SerializeToString()


def _check_reply(method, raw: bytes, request: Generated) -> None:
    limit = _reply_limit(method)
    assert len(raw) <= limit, f"{method.name} replied {len(raw)} bytes (limit {limit}) to {request!r}"


def _check_status(method, err: grpc.RpcError, request: Generated) -> None:
    assert err.code() not in NEVER, f"{method.name} answered {err.code().name} ({err.details()}) to {request!r}"


def _assert_serving(channel: grpc.Channel) -> None:
    reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=30)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize("method", UNARY, ids=lambda method: method.name)
def test_unary_rpc_answers_generated_requests_deliberately(fuzz_server, channel, seed, strategies, method) -> None:
    call = channel.unary_unary(_path(method), request_serializer=_serialize, response_deserializer=None)

    @settings(max_examples=UNARY_EXAMPLES, **FUZZ_SETTINGS)
    @given(strategies.request(method.input_type))
    def send(request: Generated) -> None:
        try:
            raw = call(request.message, timeout=UNARY_TIMEOUT)
        except grpc.RpcError as err:
            assert err.code() != grpc.StatusCode.DEADLINE_EXCEEDED, f"{method.name} hung on {request!r}"
            _check_status(method, err, request)
        else:
            _check_reply(method, raw, request)

    # First every odd value of every field on a request about the seed run and step, then random ones.
    base = {name: value for name, value in seed.items() if name in method.input_type.fields_by_name}
    for request in strategies.sweep(method.input_type, base):
        send = example(request)(send)
    send()
    _assert_serving(channel)
    assert_no_internal_errors(fuzz_server)


@pytest.mark.parametrize("method", STREAMING, ids=lambda method: method.name)
def test_stream_rpc_answers_generated_requests_deliberately(fuzz_server, channel, strategies, method) -> None:
    if method.client_streaming:
        open_stream = channel.stream_stream(_path(method), request_serializer=_serialize, response_deserializer=None)
    else:
        open_stream = channel.unary_stream(_path(method), request_serializer=_serialize, response_deserializer=None)
    messages = strategies.request(method.input_type)

    @settings(max_examples=STREAM_EXAMPLES, **FUZZ_SETTINGS)
    @given(messages if not method.client_streaming else messages.flatmap(lambda first: _more(messages, first)))
    def send(requests) -> None:
        sent = requests if isinstance(requests, list) else [requests]
        argument = iter([request.message for request in sent]) if method.client_streaming else sent[0].message
        stream = open_stream(argument, timeout=STREAM_TIMEOUT)
        try:
            for count, raw in enumerate(stream, start=1):
                _check_reply(method, raw, sent[0])
                if count == STREAM_MESSAGES:
                    stream.cancel()
        except grpc.RpcError as err:
            _check_status(method, err, sent[0])

    send()
    _assert_serving(channel)
    assert_no_internal_errors(fuzz_server)


def _more(messages, first: Generated):
    """A client stream: the first request and up to two more (sent, then the stream half-closed)."""
    return st.lists(messages, max_size=STREAM_MESSAGES - 1).map(lambda rest: [first, *rest])
