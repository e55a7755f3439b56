"""Without tokens, streams are counted per peer host (server/rpc/stream_caps.py): the host part of
gRPC's peer string, whatever its port, and one host for every Unix-socket caller."""

from __future__ import annotations

import pytest

from workflowstate.server.rpc.stream_caps import peer_host


@pytest.mark.parametrize(
    ("peer", "host"),
    [
        ("ipv4:10.0.0.7:5123", "10.0.0.7"),
        ("ipv4:127.0.0.1:1", "127.0.0.1"),
        ("ipv6:[::1]:5123", "::1"),
        ("ipv6:%5B2001:db8::1%5D:443", "2001:db8::1"),
        ("unix:/tmp/x/grpc.sock", "unix"),
        ("unix:", "unix"),
    ],
)
def test_the_host_of_a_peer(peer: str, host: str) -> None:
    assert peer_host(peer) == host
