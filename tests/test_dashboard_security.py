"""The dashboard is safe by default, over HTTP against real servers: only the hosts it serves are
answered (DNS rebinding), a change needs its own origin, every page carries the security headers,
logins are throttled and logged, sessions are the server's own and bounded per token, odd input is a
400, an open dashboard beyond loopback needs a flag and says so, and the dashboard's internal gRPC
socket answers only the dashboard."""

from __future__ import annotations

import http.client
import json
import ssl
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import grpc
import pytest
from support.certificates import client_certificate, self_signed
from support.dashboard import Browser, Reply, SeededRuns, dashboard_with_tokens, seed_runs, write_token_file
from support.error_info import error_info_of
from support.server_process import ServerProcess

from workflowstate.client import RunStatus, WorkflowStateClient
from workflowstate.server.rpc.tokens import Role
from workflowstate import v1 as pb
from workflowstate.v1 import workflow_state_pb2_grpc as pb_grpc

TOKENS = {Role.READ: f"read-{uuid.uuid4().hex}", Role.ADMIN: f"admin-{uuid.uuid4().hex}"}
# The name a rebinding attacker's page has, resolving to 127.0.0.1 once the browser has loaded it.
REBINDING_HOST = "rebind.attacker.example"
# A name the operator serves the dashboard under (a reverse proxy, an internal DNS name).
LISTED_HOST = "dash.internal.example"


@pytest.fixture(scope="module")
def dashboard_server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with dashboard_with_tokens(database_url, tmp_path_factory.mktemp("dashboard-security"), TOKENS, "--http-allowed-hosts", LISTED_HOST) as server:
        yield server


@pytest.fixture(scope="module")
def admin(dashboard_server: ServerProcess) -> Iterator[WorkflowStateClient]:
    with WorkflowStateClient(dashboard_server.target, token=TOKENS[Role.ADMIN]) as client:
        yield client


@pytest.fixture
def runs(admin: WorkflowStateClient) -> SeededRuns:
    return seed_runs(admin, f"orders-{uuid.uuid4().hex[:8]}")


def logged_in(server: ServerProcess, role: Role) -> Browser:
    browser = Browser(server.dashboard_url)
    assert browser.login(TOKENS[role]).status == 303
    return browser


def port_of(server: ServerProcess) -> int:
    port = urlsplit(server.dashboard_url).port
    assert port is not None
    return port


def run_status(admin: WorkflowStateClient, run_id: str) -> RunStatus:
    run = admin.get_run(run_id)
    assert run is not None
    return run.status


# --- the hosts it serves ---------------------------------------------------------------------------


def test_a_rebinding_host_is_refused_on_every_request_and_changes_nothing(
    dashboard_server: ServerProcess, admin: WorkflowStateClient, runs: SeededRuns
) -> None:
    """A page of a name that now resolves to 127.0.0.1 is same-origin with itself, not with us: the
    browser sends its name in Host. Reads are refused too (the page could read what they show)."""
    browser = logged_in(dashboard_server, Role.ADMIN)
    cancel = f"/runs/{runs.running_run_id}/cancel"
    csrf = browser.get(cancel).csrf_token()
    forged = {"Host": f"{REBINDING_HOST}:{port_of(dashboard_server)}"}
    for method, path in (("GET", "/"), ("GET", "/login"), ("GET", "/static/htmx.min.js"), ("GET", f"/runs/{runs.running_run_id}/events")):
        reply = browser.request(method, path, headers=forged)
        assert reply.status == 421 and REBINDING_HOST in reply.body and "--http-allowed-hosts" in reply.body, (path, reply.status, reply.body[:300])
        assert reply.headers["Content-Type"].startswith("text/plain")
    origin = f"http://{REBINDING_HOST}:{port_of(dashboard_server)}"
    refused = browser.post(cancel, {"csrf_token": csrf}, headers=forged | {"Origin": origin})
    assert refused.status == 421
    assert run_status(admin, runs.running_run_id) is RunStatus.RUNNING


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "[::1]"])
def test_loopback_names_on_the_dashboards_port_are_served(dashboard_server: ServerProcess, host: str) -> None:
    browser = logged_in(dashboard_server, Role.READ)
    assert browser.request("GET", "/", headers={"Host": f"{host}:{port_of(dashboard_server)}"}).status == 200
    other_port = port_of(dashboard_server) + 1 if port_of(dashboard_server) < 65535 else 1
    assert browser.request("GET", "/", headers={"Host": f"{host}:{other_port}"}).status == 421


def test_a_name_given_by_http_allowed_hosts_is_served_and_may_post(
    dashboard_server: ServerProcess, admin: WorkflowStateClient, runs: SeededRuns
) -> None:
    """Behind a reverse proxy the browser's Host and Origin are the proxy's name, on its own port."""
    browser = logged_in(dashboard_server, Role.ADMIN)
    listed = {"Host": LISTED_HOST, "Origin": f"https://{LISTED_HOST}"}
    cancel = f"/runs/{runs.running_run_id}/cancel"
    page = browser.request("GET", cancel, headers={"Host": LISTED_HOST})
    assert page.status == 200
    assert browser.request("GET", cancel, headers={"Host": f"not-{LISTED_HOST}"}).status == 421, "only the names listed"
    done = browser.post(cancel, {"csrf_token": page.csrf_token()}, headers=listed)
    assert done.status == 303, done.body[:500]
    assert run_status(admin, runs.running_run_id) is RunStatus.CANCELLED


# --- the origin of a change ------------------------------------------------------------------------


@pytest.mark.parametrize("origin", ["null", None, "http://evil.example", f"http://{REBINDING_HOST}"])
def test_a_post_without_the_dashboards_own_origin_is_refused_and_changes_nothing(
    dashboard_server: ServerProcess, admin: WorkflowStateClient, runs: SeededRuns, origin: str | None
) -> None:
    """`Origin: null` comes from sandboxed frames and data: pages; no Origin (nor Referer) at all
    from no browser of today for a form POST."""
    browser = logged_in(dashboard_server, Role.ADMIN)
    cancel = f"/runs/{runs.running_run_id}/cancel"
    csrf = browser.get(cancel).csrf_token()
    headers = {} if origin is None else {"Origin": origin}
    reply = browser.request("POST", cancel, {"csrf_token": csrf}, headers=headers)
    assert reply.status == 403 and "Refused" in reply.body and "origin" in reply.body.lower(), reply.body[:500]
    assert run_status(admin, runs.running_run_id) is RunStatus.RUNNING


def test_a_referer_of_the_dashboard_stands_in_for_a_missing_origin(
    dashboard_server: ServerProcess, admin: WorkflowStateClient, runs: SeededRuns
) -> None:
    browser = logged_in(dashboard_server, Role.ADMIN)
    cancel = f"/runs/{runs.running_run_id}/cancel"
    csrf = browser.get(cancel).csrf_token()
    elsewhere = browser.request("POST", cancel, {"csrf_token": csrf}, headers={"Referer": "http://evil.example/page"})
    assert elsewhere.status == 403
    ours = browser.request("POST", cancel, {"csrf_token": csrf}, headers={"Referer": f"{browser.origin}{cancel}"})
    assert ours.status == 303
    assert run_status(admin, runs.running_run_id) is RunStatus.CANCELLED


# --- security headers -----------------------------------------------------------------------------


def _csp(reply: Reply) -> dict[str, str]:
    """The Content-Security-Policy header's directives, by name."""
    header = reply.headers.get("Content-Security-Policy")
    assert header, f"no Content-Security-Policy on {reply.status}: {dict(reply.headers)}"
    return {name: value.strip() for name, _, value in (part.strip().partition(" ") for part in header.split(";") if part.strip())}


def test_every_answer_carries_the_security_headers(dashboard_server: ServerProcess, runs: SeededRuns) -> None:
    browser = logged_in(dashboard_server, Role.READ)
    answers = {
        "page": browser.get(f"/runs/{runs.running_run_id}"),
        "static": browser.get("/static/htmx.min.js"),
        "not found": browser.get("/no-such-page"),
        "login redirect": Browser(dashboard_server.dashboard_url).get("/"),
        "host refused": browser.request("GET", "/", headers={"Host": f"{REBINDING_HOST}:{port_of(dashboard_server)}"}),
    }
    for name, reply in answers.items():
        csp = _csp(reply)
        assert csp["default-src"] == "'none'", name
        assert csp["script-src"] == "'self'", (name, csp)  # the vendored htmx and the dashboard's own file
        assert "'unsafe-inline'" not in reply.headers["Content-Security-Policy"] and "'unsafe-eval'" not in reply.headers["Content-Security-Policy"]
        assert csp["form-action"] == "'self'" and csp["base-uri"] == "'none'", name
        assert reply.headers["X-Content-Type-Options"] == "nosniff", name
        assert reply.headers["Referrer-Policy"] == "same-origin", name
        assert "Strict-Transport-Security" not in reply.headers, "HSTS over plain HTTP means nothing and is not sent"
    assert "<script>" not in answers["page"].body, "an inline script would need 'unsafe-inline'"
    assert " style=" not in answers["page"].body, "an inline style would need 'unsafe-inline'"


def test_framing_by_any_page_is_refused(dashboard_server: ServerProcess, runs: SeededRuns) -> None:
    """A page on another port of the same host framed the confirmation page: one click cancelled."""
    browser = logged_in(dashboard_server, Role.ADMIN)
    confirm = browser.get(f"/runs/{runs.running_run_id}/cancel")
    assert _csp(confirm)["frame-ancestors"] == "'none'"
    assert confirm.headers["X-Frame-Options"] == "DENY"


# --- logins ----------------------------------------------------------------------------------------


def _log_lines(server: ServerProcess) -> list[dict[str, object]]:
    return [json.loads(line) for line in server.log_text().splitlines() if line.startswith("{")]


def test_failed_logins_are_throttled_per_client_and_logged_without_the_token(start_server, tmp_path: Path) -> None:
    tokens = write_token_file(tmp_path, TOKENS)
    server = start_server("--auth-tokens", str(tokens), "--http-listen", "127.0.0.1:0")
    browser = Browser(server.dashboard_url)
    wrong = [f"wrong-{index}-{uuid.uuid4().hex}" for index in range(5)]
    for token in wrong:
        assert browser.login(token).status == 401
    throttled = browser.login(f"wrong-{uuid.uuid4().hex}")
    assert throttled.status == 429, throttled.body[:500]
    assert int(throttled.headers["Retry-After"]) >= 1 and "Too many failed logins" in throttled.body
    # While throttled even the right token waits: trying it would tell a guesser when it guessed right.
    assert browser.login(TOKENS[Role.READ]).status == 429
    failures = [line for line in _log_lines(server) if line["msg"] == "dashboard login failed"]
    assert len(failures) == 5 and all(line["client"] == "127.0.0.1" and line["level"] == "warning" for line in failures), failures
    log = server.log_text()
    assert "dashboard login throttled" in log
    for token in wrong:
        assert token not in log


def test_a_tokens_sessions_are_capped_without_ending_another_tokens(dashboard_server: ServerProcess) -> None:
    """Logging in again and again with one token ends that token's oldest sessions only: a holder of
    any token cannot log everyone else out."""
    other = logged_in(dashboard_server, Role.ADMIN)
    first = logged_in(dashboard_server, Role.READ)
    later = [logged_in(dashboard_server, Role.READ) for _ in range(50)]
    assert first.get("/").location == "/login", "the token's oldest session was kept past the cap"
    assert all(browser.get("/").status == 200 for browser in later[-5:])
    assert other.get("/").status == 200, "another token's session was ended"


# --- sessions, input -------------------------------------------------------------------------------


def test_a_session_id_chosen_by_the_client_is_ignored(start_server, unique: str) -> None:
    """An id planted in a browser (a cookie set by a page of a sibling host or port) must not be the
    session the server uses: its CSRF token would be known to whoever planted it."""
    server = start_server("--http-listen", "127.0.0.1:0")
    with WorkflowStateClient(server.target) as client:
        runs = seed_runs(client, f"orders-{unique}")
        planter = Browser(server.dashboard_url, cookie="planted-by-an-attacker")
        csrf = planter.get(f"/runs/{runs.running_run_id}/cancel").csrf_token()
        assert planter.cookie != "planted-by-an-attacker", "the server kept a session id it did not mint"
        victim = Browser(server.dashboard_url, cookie="planted-by-an-attacker")
        refused = victim.post(f"/runs/{runs.running_run_id}/cancel", {"csrf_token": csrf})
        assert refused.status == 403 and client.get_run(runs.running_run_id).status is RunStatus.RUNNING  # type: ignore[union-attr]


@pytest.mark.parametrize("last_event_id", ["²", "-1", "1e3", "0x10", "9" * 30])
def test_a_bad_last_event_id_is_a_400_naming_the_header(dashboard_server: ServerProcess, runs: SeededRuns, last_event_id: str) -> None:
    browser = logged_in(dashboard_server, Role.READ)
    reply = browser.request("GET", f"/runs/{runs.failed_run_id}/events", headers={"Last-Event-ID": last_event_id})
    assert reply.status == 400 and "Last-Event-ID" in reply.body and "whole number" in reply.body, (reply.status, reply.body[:500])


def test_a_retry_posted_under_another_runs_url_is_refused_and_changes_nothing(
    dashboard_server: ServerProcess, admin: WorkflowStateClient, runs: SeededRuns
) -> None:
    browser = logged_in(dashboard_server, Role.ADMIN)
    csrf = browser.get(f"/runs/{runs.running_run_id}/steps/{runs.notify_step_id}/retry").csrf_token()
    # The notify step is the running run's, not the failed run's.
    reply = browser.post(f"/runs/{runs.failed_run_id}/steps/{runs.notify_step_id}/retry", {"csrf_token": csrf})
    assert reply.status == 404 and "has no step" in reply.body, (reply.status, reply.body[:500])
    assert admin.get_step_state(runs.running_run_id, "notify").attempt_count == 1


# --- an open dashboard beyond loopback -------------------------------------------------------------


def _serve(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workflowstate.server", "serve", "--no-embedded", "--database-url", "postgresql://nobody@127.0.0.1:1/none", *args],
        capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin", **env},
    )  # fmt: skip


@pytest.mark.parametrize("address", ["0.0.0.0:0", "[::]:0", ":0"])
def test_an_unauthenticated_dashboard_beyond_loopback_stops_the_start_naming_the_flag(address: str) -> None:
    by_flag = _serve("--listen", "127.0.0.1:0", "--http-listen", address)
    assert by_flag.returncode == 2, by_flag.stderr
    assert "--http-allow-unauthenticated-network" in by_flag.stderr and "--auth-tokens" in by_flag.stderr, by_flag.stderr
    by_variable = _serve("--listen", "127.0.0.1:0", WORKFLOWSTATE_HTTP_LISTEN=address)
    assert by_variable.returncode == 2 and "--http-allow-unauthenticated-network" in by_variable.stderr, by_variable.stderr


def _dashboard_warnings(server: ServerProcess) -> list[dict[str, object]]:
    return [line for line in _log_lines(server) if line["level"] == "warning" and "DASHBOARD WITHOUT AUTHENTICATION" in str(line["msg"])]


def test_the_flag_serves_it_open_and_warns_loudly(start_server, tmp_path: Path) -> None:
    server = start_server("--http-listen", "0.0.0.0:0", "--http-allow-unauthenticated-network")
    (warning,) = _dashboard_warnings(server)
    assert "anyone who can reach" in str(warning["msg"]) and "--auth-tokens" in str(warning["msg"])
    port = port_of(server)
    assert Browser(f"http://127.0.0.1:{port}").get("/").status == 200
    # With tokens the same address needs no flag and gets no warning.
    tokens = write_token_file(tmp_path, TOKENS)
    guarded = start_server("--http-listen", "0.0.0.0:0", "--auth-tokens", str(tokens))
    assert _dashboard_warnings(guarded) == []
    assert Browser(f"http://127.0.0.1:{port_of(guarded)}").get("/").location == "/login"


# --- the internal socket under mutual TLS ----------------------------------------------------------


def test_under_mutual_tls_the_internal_socket_answers_only_the_dashboard(start_server, tmp_path: Path, unique: str) -> None:
    """Without tokens, mutual TLS is the only check, and the Unix socket the dashboard calls through
    has no TLS: another process of the same user must not get in through it without a certificate."""
    for folder in ("server", "ca"):
        (tmp_path / folder).mkdir()
    server_cert, server_key = self_signed(tmp_path / "server")
    ca_cert, ca_key = self_signed(tmp_path / "ca")
    client_cert, client_key = client_certificate(tmp_path / "client", ca_cert, ca_key)
    server = start_server("--tls-cert", str(server_cert), "--tls-key", str(server_key), "--tls-client-ca", str(ca_cert), "--http-listen", "127.0.0.1:0")
    (served,) = [line for line in _log_lines(server) if line["msg"] == "dashboard served"]
    socket_path = str(served["internal_socket"])
    assert Path(socket_path).is_socket()
    with grpc.insecure_channel(f"unix:{socket_path}") as channel, pytest.raises(grpc.RpcError) as refused:
        pb_grpc.WorkflowStateServiceStub(channel).ListWorkflows(pb.ListWorkflowsRequest(), timeout=10)
    assert refused.value.code() is grpc.StatusCode.UNAUTHENTICATED, refused.value
    assert error_info_of(refused.value) == ("UNAUTHENTICATED", "workflowstate", {}), "the auth interceptor's refusal, named alike"
    # The dashboard itself still reads through it (the browser shows a certificate of the CA).
    context = ssl.create_default_context(cafile=str(server_cert))
    context.load_cert_chain(client_cert, client_key)
    connection = http.client.HTTPSConnection("127.0.0.1", port_of(server), context=context, timeout=30)
    try:
        connection.request("GET", "/runs")
        response = connection.getresponse()
        body = response.read().decode()
    finally:
        connection.close()
    assert response.status == 200 and "No run matches." in body, body[:500]
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    # And callers over TCP with a certificate are served as before.
    credentials = grpc.ssl_channel_credentials(server_cert.read_bytes(), client_key.read_bytes(), client_cert.read_bytes())
    with WorkflowStateClient(server.target, tls=credentials) as client:
        assert client.create_run(f"orders-{unique}").status is RunStatus.RUNNING
