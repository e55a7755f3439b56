"""The dashboard's guards as plain functions: which hosts and origins it answers, the login
throttle's arithmetic, and session ids only the process itself mints."""

from __future__ import annotations

import pytest

from workflowstate.server.web.hosts import AllowedHosts, BadHostName, origin_refusal, parse_allowed_host
from workflowstate.server.web.login_throttle import LoginThrottle, client_key
from workflowstate.server.web.sessions import Sessions

HOSTS = AllowedHosts.of(listen_host="10.0.0.5", port=8080, listed=("dash.example.com", "proxy.example:9000"), tls=False)


@pytest.mark.parametrize("host", ["localhost:8080", "127.0.0.1:8080", "[::1]:8080", "LOCALHOST:8080", "10.0.0.5:8080", "dash.example.com", "dash.example.com:1234", "proxy.example:9000"])
def test_the_hosts_it_serves_are_answered(host: str) -> None:
    assert HOSTS.allows_host_header(host)


@pytest.mark.parametrize(
    "host",
    [None, "", "rebind.attacker.example:8080", "localhost:3000", "localhost", "10.0.0.5:80", "proxy.example", "proxy.example:9001",
     "user@localhost:8080", "localhost:8080/x", "localhost:notaport", "[::1:8080", "evil.dash.example.com", "localhost:99999"],
)  # fmt: skip
def test_other_hosts_are_refused(host: str | None) -> None:
    assert not HOSTS.allows_host_header(host)


def test_a_wildcard_listen_address_is_served_as_the_start_prints_it() -> None:
    wildcard = AllowedHosts.of(listen_host="0.0.0.0", port=8080, listed=(), tls=True)
    assert wildcard.allows_host_header("0.0.0.0:8080") and wildcard.allows_host_header("localhost:8080")
    assert not wildcard.allows_host_header("10.0.0.5:8080"), "an address of the machine is not named by a wildcard"
    assert AllowedHosts.of(listen_host="127.0.0.1", port=443, listed=(), tls=True).allows_host_header("localhost"), "443 is https's own port"


def test_a_change_needs_an_origin_of_a_served_host() -> None:
    assert origin_refusal(HOSTS, "http://localhost:8080", None) is None
    assert origin_refusal(HOSTS, "https://dash.example.com", None) is None
    assert origin_refusal(HOSTS, None, "http://127.0.0.1:8080/runs/x/cancel") is None
    for origin, referer in (("null", None), ("http://localhost:3000", None), ("http://evil.example", "http://localhost:8080/"), (None, None),
                            (None, "http://evil.example/"), ("ftp://localhost:8080", None), ("http://localhost:8080/path", None)):  # fmt: skip
        refusal = origin_refusal(HOSTS, origin, referer)
        assert refusal is not None and refusal.startswith("Refused"), (origin, referer)


def test_a_bad_allowed_host_names_what_it_takes() -> None:
    assert parse_allowed_host("Dash.Example.com:8443") == ("dash.example.com", 8443)
    with pytest.raises(BadHostName, match="host name or address"):
        parse_allowed_host("http://dash.example.com/")


def test_failed_logins_take_from_a_bucket_that_refills() -> None:
    now = [0.0]
    throttle = LoginThrottle(burst=3, refill_seconds=10.0, clock=lambda: now[0])
    assert [throttle.take("192.0.2.1") for _ in range(3)] == [None, None, None]
    assert throttle.take("192.0.2.1") == pytest.approx(10.0)
    assert throttle.take("192.0.2.2") is None, "another client has its own bucket"
    now[0] = 4.0
    assert throttle.take("192.0.2.1") == pytest.approx(6.0)
    now[0] = 10.0
    assert throttle.take("192.0.2.1") is None
    throttle.give_back("192.0.2.1")  # a success does not count
    assert throttle.take("192.0.2.1") is None and throttle.take("192.0.2.1") is not None
    assert throttle.first_refusal("192.0.2.1") and not throttle.first_refusal("192.0.2.1")


def test_ipv6_clients_count_per_64() -> None:
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:bbbb::2") == "2001:db8:1:2::/64"
    assert client_key("::ffff:192.0.2.1") == "192.0.2.1" and client_key(None) == "local"


def test_only_ids_the_process_minted_are_its_sessions() -> None:
    sessions = Sessions(max_sessions=10, max_per_token=2, idle_seconds=60)
    minted = sessions.mint()
    assert sessions.minted(minted)
    random_part = minted.partition(".")[0]
    for chosen in (None, "", "chosen-by-the-client", random_part, f"{random_part}.{'0' * 32}", minted + "x"):
        assert not sessions.minted(chosen), chosen
    assert not Sessions(max_sessions=10, max_per_token=2, idle_seconds=60).minted(minted), "another process's id"
