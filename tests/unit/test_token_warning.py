"""The Python clients warn (InsecureTokenWarning) when a token would go without TLS to another
machine, once per client, and say nothing for TLS, no token, or a server on this machine."""

from __future__ import annotations

import warnings

import grpc
import pytest

from workflowstate.client import AsyncWorkflowStateClient, InsecureTokenWarning, WorkflowStateClient
from workflowstate.client._channel import is_loopback_target

# TEST-NET-1 (RFC 5737): an address of another machine that no test reaches; no call is made.
REMOTE = "192.0.2.10:50051"


def test_a_token_without_tls_to_another_machine_is_warned_about_once_per_client() -> None:
    with pytest.warns(InsecureTokenWarning) as warned:
        WorkflowStateClient(REMOTE, token="secret-token", connections=3).close()
    assert len(warned) == 1
    message = str(warned[0].message)
    assert message.startswith(f"the token is sent without TLS to {REMOTE}, which is not this machine") and "secret-token" not in message
    assert warned[0].filename == __file__  # pointed at the caller's line


async def test_the_async_client_warns_too() -> None:
    with pytest.warns(InsecureTokenWarning, match="the token is sent without TLS to dns:///example.com:443"):
        client = AsyncWorkflowStateClient("dns:///example.com:443", token="t")
    await client.close()


def test_only_a_token_without_tls_to_another_machine_is_warned_about(monkeypatch) -> None:
    monkeypatch.delenv("WORKFLOWSTATE_TOKEN", raising=False)
    cases = [
        (REMOTE, "t", False),
        (REMOTE, "t", True),
        (REMOTE, "t", grpc.ssl_channel_credentials()),
        (REMOTE, None, False),
        ("127.0.0.1:50051", "t", False),
        ("127.8.9.10:50051", "t", False),
        ("localhost:50051", "t", False),
        ("[::1]:50051", "t", False),
        ("ipv6:[::1]:50051", "t", False),
        ("unix:/tmp/workflowstate.sock", "t", False),
    ]
    warned = []
    for target, token, tls in cases:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            WorkflowStateClient(target, token=token, tls=tls).close()
        warned += [(target, token, tls) for warning in caught if issubclass(warning.category, InsecureTokenWarning)]
    assert warned == [(REMOTE, "t", False)]


def test_what_counts_as_this_machine() -> None:
    local = ["127.0.0.1:1", "localhost", "LOCALHOST:1", "app.localhost:1", "[::1]:1", "::1", "dns:///localhost:1", "ipv4:127.0.0.1:1", "unix-abstract:x"]
    remote = ["10.0.0.1:1", "example.com:1", "[2001:db8::1]:1", "128.0.0.1:1", "dns://8.8.8.8/example.com:1", "127.0.0.1.example.com:1"]
    assert [target for target in local if not is_loopback_target(target)] == []
    assert [target for target in remote if is_loopback_target(target)] == []
