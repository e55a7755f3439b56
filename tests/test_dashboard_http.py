"""The dashboard over HTTP against a real server: login, cookie flags, CSRF refusals that change
nothing, API refusals shown as messages, the actions, filters, and --http-listen's values."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import urlsplit

import grpc
import pytest
from support.certificates import self_signed
from support.dashboard import Browser, SeededRuns, dashboard_with_tokens, seed_runs
from support.server_process import ServerProcess

from workflowstate.client import RetentionPolicy, RunStatus, StepStatus, StepTask, Worker, WorkflowStateClient
from workflowstate.server.rpc.tokens import Role
from workflowstate import v1 as pb
from workflowstate.v1 import workflow_state_pb2_grpc as pb_grpc

TOKENS = {Role.READ: f"read-{uuid.uuid4().hex}", Role.ADMIN: f"admin-{uuid.uuid4().hex}"}


@pytest.fixture(scope="module")
def dashboard_server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with dashboard_with_tokens(database_url, tmp_path_factory.mktemp("dashboard"), TOKENS) as server:
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


def test_pages_need_a_login_and_a_wrong_token_gets_the_form_again(dashboard_server: ServerProcess) -> None:
    browser = Browser(dashboard_server.dashboard_url)
    first = browser.get("/runs")
    assert first.status == 303 and first.location == "/login"
    wrong = browser.login("not-a-token-of-this-server")
    assert wrong.status == 401 and "Wrong token" in wrong.body and 'name="token"' in wrong.body
    anonymous_session = browser.cookie
    right = browser.login(TOKENS[Role.READ])
    assert right.status == 303 and right.location == "/"
    assert browser.cookie != anonymous_session, "the session id must change at login"
    assert browser.get("/runs").status == 200


def test_the_session_cookie_is_httponly_samesite_strict_and_holds_no_token(dashboard_server: ServerProcess) -> None:
    browser = logged_in(dashboard_server, Role.READ)
    for header in browser.set_cookie_headers:
        attributes = [part.strip().lower() for part in header.split(";")]
        assert "httponly" in attributes and "samesite=strict" in attributes and "path=/" in attributes, header
        assert "secure" not in attributes, "plain HTTP: a Secure cookie would never come back"
        assert TOKENS[Role.READ] not in header


def test_logout_ends_the_session_on_the_server(dashboard_server: ServerProcess) -> None:
    browser = logged_in(dashboard_server, Role.READ)
    old_cookie = browser.cookie
    page = browser.get("/")
    assert browser.post("/logout", {"csrf_token": page.csrf_token()}).location == "/login"
    replay = Browser(dashboard_server.dashboard_url, cookie=old_cookie)
    assert replay.get("/").location == "/login", "the old session id still opens pages after logout"


@pytest.mark.parametrize("csrf", [None, "", "0" * 64, "another session's"])
def test_a_post_without_this_sessions_csrf_token_is_refused_and_changes_nothing(
    dashboard_server: ServerProcess, admin: WorkflowStateClient, runs: SeededRuns, csrf: str | None
) -> None:
    browser = logged_in(dashboard_server, Role.ADMIN)
    if csrf == "another session's":
        csrf = logged_in(dashboard_server, Role.ADMIN).get("/").csrf_token()
    form = {"reason": "forged"} | ({} if csrf is None else {"csrf_token": csrf})
    for path in (f"/runs/{runs.running_run_id}/cancel", f"/runs/{runs.running_run_id}/delete", f"/runs/{runs.running_run_id}/steps/{runs.notify_step_id}/retry"):
        reply = browser.post(path, form | {"force": "yes"})
        assert reply.status == 403 and "CSRF token" in reply.body, (path, reply.status, reply.body[:500])
    run = admin.get_run(runs.running_run_id)
    assert run is not None and run.status is RunStatus.RUNNING
    assert admin.get_step_state(runs.running_run_id, "notify").attempt_count == 1


def test_a_post_from_another_origin_is_refused(dashboard_server: ServerProcess, admin: WorkflowStateClient, runs: SeededRuns) -> None:
    browser = logged_in(dashboard_server, Role.ADMIN)
    csrf = browser.get(f"/runs/{runs.running_run_id}/cancel").csrf_token()
    reply = browser.post(f"/runs/{runs.running_run_id}/cancel", {"csrf_token": csrf}, headers={"Origin": "http://evil.example"})
    assert reply.status == 403 and "another site" in reply.body
    assert admin.get_run(runs.running_run_id).status is RunStatus.RUNNING  # type: ignore[union-attr]


def test_a_read_token_cancelling_sees_permission_denied_and_nothing_changes(
    dashboard_server: ServerProcess, admin: WorkflowStateClient, runs: SeededRuns
) -> None:
    browser = logged_in(dashboard_server, Role.READ)
    confirm = browser.get(f"/runs/{runs.running_run_id}/cancel")
    reply = browser.post(f"/runs/{runs.running_run_id}/cancel", {"csrf_token": confirm.csrf_token()})
    assert reply.status == 403
    assert "PERMISSION_DENIED" in reply.body and "admin" in reply.body and "Traceback" not in reply.body
    assert admin.get_run(runs.running_run_id).status is RunStatus.RUNNING  # type: ignore[union-attr]


def test_cancel_retry_and_delete_through_the_dashboard(dashboard_server: ServerProcess, admin: WorkflowStateClient, runs: SeededRuns) -> None:
    browser = logged_in(dashboard_server, Role.ADMIN)
    run_path = f"/runs/{runs.running_run_id}"
    retry = browser.post(f"{run_path}/steps/{runs.notify_step_id}/retry", {"csrf_token": browser.get(f"{run_path}/steps/{runs.notify_step_id}/retry").csrf_token()})
    assert retry.status == 303 and retry.location == f"{run_path}?done=retried"
    step = admin.get_step_state(runs.running_run_id, "notify")
    assert (step.attempt_count, step.status) == (2, StepStatus.SCHEDULED)

    cancel = browser.post(f"{run_path}/cancel", {"csrf_token": browser.get(f"{run_path}/cancel").csrf_token(), "reason": "customer asked"})
    assert cancel.status == 303
    run = admin.get_run(runs.running_run_id)
    assert run is not None and run.status is RunStatus.CANCELLED and run.error is not None and run.error.message == "customer asked"
    page = browser.get(run_path)
    assert "cancelled" in page.body and "The run was cancelled." in browser.get(cancel.location or "").body

    again = browser.post(f"/runs/{runs.failed_run_id}/cancel", {"csrf_token": page.csrf_token()})
    assert again.status == 409 and "FAILED_PRECONDITION" in again.body  # a FAILED run cannot be cancelled

    delete = browser.post(f"{run_path}/delete", {"csrf_token": page.csrf_token()})
    assert delete.status == 303 and delete.location == "/runs?done=deleted"
    assert admin.get_run(runs.running_run_id) is None
    assert browser.get(run_path).status == 404


def test_run_page_shows_every_attempt_with_its_error(dashboard_server: ServerProcess, runs: SeededRuns) -> None:
    page = logged_in(dashboard_server, Role.READ).get(f"/runs/{runs.failed_run_id}")
    assert page.status == 200
    for text in ("attempt 1", "attempt 2", "card gateway timed out", "card declined by the bank", "gateway.py line 40", "TimeoutError"):
        assert text in page.body, text
    assert "hx-trigger" not in page.body, "a finished run's page must not poll"
    running = logged_in(dashboard_server, Role.READ).get(f"/runs/{runs.running_run_id}")
    assert 'hx-trigger="run-changed' in running.body and f'data-events="/runs/{runs.running_run_id}/events"' in running.body


def _sse(body: str) -> list[tuple[str, str, str]]:
    """(event, data, id) of each server-sent event of a body."""
    found = []
    for block in body.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        found.append((fields.get("event", ""), fields.get("data", ""), fields.get("id", "")))
    return found


def test_a_runs_events_come_as_server_sent_events_and_resume(dashboard_server: ServerProcess, runs: SeededRuns) -> None:
    browser = logged_in(dashboard_server, Role.READ)
    reply = browser.get(f"/runs/{runs.failed_run_id}/events")
    assert reply.status == 200 and reply.headers["Content-Type"].startswith("text/event-stream")
    events = _sse(reply.body)
    # The finished run's events (its creation, each attempt's changes, its end), then `end`.
    assert events[-1][:2] == ("end", "finished")
    changes = [event for event in events if event[0] == "change"]
    assert len(changes) >= 6 and all(data == event_id for _, data, event_id in changes)
    # A browser reconnecting with Last-Event-ID gets only what came after it.
    resumed = _sse(browser.request("GET", f"/runs/{runs.failed_run_id}/events", headers={"Last-Event-ID": changes[2][2]}).body)
    assert [event for event in resumed if event[0] == "change"] == changes[3:]
    gone = _sse(browser.get("/runs/00000000-0000-0000-0000-000000000000/events").body)
    assert gone == [("end", "NOT_FOUND", "")]


def test_runs_list_filters_and_keeps_them_in_its_links(dashboard_server: ServerProcess, runs: SeededRuns, admin: WorkflowStateClient) -> None:
    for _ in range(3):
        admin.create_run(runs.workflow, {})
    browser = logged_in(dashboard_server, Role.READ)
    failed = browser.get(f"/runs?workflow={runs.workflow}&status=failed&since=1h")
    assert runs.failed_run_id in failed.body and runs.running_run_id not in failed.body
    assert 'value="failed" checked' in failed.body and f'value="{runs.workflow}"' in failed.body
    # The sort link keeps the filters and reverses the order.
    assert f"/runs?workflow={runs.workflow}&amp;status=failed&amp;since=1h&amp;order=oldest" in failed.body

    bad = browser.get("/runs?since=yesterday-ish")
    assert bad.status == 400 and "since:" in bad.body
    foreign = browser.get(f"/runs?workflow={runs.workflow}&page_token=bm90LWEtdG9rZW4")
    assert foreign.status == 400 and "page_token" in foreign.body and "Traceback" not in foreign.body


def test_unknown_and_malformed_runs_are_messages(dashboard_server: ServerProcess) -> None:
    browser = logged_in(dashboard_server, Role.READ)
    assert browser.get(f"/runs/{uuid.uuid4()}").status == 404
    malformed = browser.get("/runs/not-a-uuid")
    assert malformed.status == 400 and "INVALID_ARGUMENT" in malformed.body and "Traceback" not in malformed.body


def test_workers_page_and_overview_show_a_connected_worker(dashboard_server: ServerProcess, admin: WorkflowStateClient, rpc: str) -> None:
    ran = threading.Event()

    def handle(task: StepTask) -> None:
        ran.set()

    worker_id = f"dash-{rpc}"
    with WorkflowStateClient(dashboard_server.target, token=TOKENS[Role.ADMIN]) as worker_client:
        worker = Worker(worker_client, {rpc: handle}, max_in_flight=4, worker_id=worker_id)
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        try:
            run = admin.create_run(f"workers-{rpc}", {})
            admin.set_step_scheduled(admin.insert_step_state(run.run_id, "s", rpc).step_id)
            assert ran.wait(30), "the worker got its step"  # so its stream is subscribed and noted
            browser = logged_in(dashboard_server, Role.READ)
            page = browser.get("/workers")
            assert page.status == 200
            for text in (worker_id, rpc, "/ 4", dashboard_server.target, 'href="/workers" aria-current="page"'):
                assert text in page.body, text
            overview = browser.get("/")
            count = len(admin.list_workers())
            assert f'<a href="/workers">{count} worker' in overview.body, overview.body[:3000]
        finally:
            assert worker.stop(timedelta(seconds=30))
            thread.join(30)


def _policies_of(admin: WorkflowStateClient, workflow: str) -> list[RetentionPolicy]:
    return [policy for policy in admin.list_retention_policies() if policy.workflow == workflow]


def test_retention_page_sets_lists_and_deletes_a_policy(dashboard_server: ServerProcess, admin: WorkflowStateClient, unique: str) -> None:
    browser = logged_in(dashboard_server, Role.ADMIN)
    page = browser.get("/retention")
    assert page.status == 200 and 'href="/retention" aria-current="page"' in page.body
    workflow = f"orders-{unique}"
    # Ticked checkboxes each send the field: two of them.
    done = browser.post("/retention", [("csrf_token", page.csrf_token()), ("workflow", workflow), ("status", "failed"), ("status", "cancelled"), ("keep", "1d12h")])
    assert done.status == 303 and done.location == "/retention?done=set"
    (policy,) = _policies_of(admin, workflow)
    assert (policy.statuses, policy.keep) == ((RunStatus.FAILED, RunStatus.CANCELLED), timedelta(hours=36))
    listed = browser.get(done.location or "")
    assert "The retention policy was set." in listed.body and workflow in listed.body and "1d12h" in listed.body
    assert f'href="/retention/{policy.policy_id}/delete"' in listed.body

    confirm = browser.get(f"/retention/{policy.policy_id}/delete")
    assert confirm.status == 200 and "Yes, delete" in confirm.body and "failed, cancelled" in confirm.body
    assert _policies_of(admin, workflow) == [policy], "showing the confirmation deleted it"
    deleted = browser.post(f"/retention/{policy.policy_id}/delete", {"csrf_token": confirm.csrf_token()})
    assert deleted.status == 303 and deleted.location == "/retention?done=deleted"
    assert _policies_of(admin, workflow) == []
    assert browser.get(f"/retention/{policy.policy_id}/delete").status == 404


@pytest.mark.parametrize(("keep", "expected"), [("soon", "keep: must be a length"), ("0m", "INVALID_ARGUMENT: keep must be positive")])
def test_a_bad_keep_is_a_message_and_nothing_is_stored(dashboard_server: ServerProcess, admin: WorkflowStateClient, unique: str, keep: str, expected: str) -> None:
    browser = logged_in(dashboard_server, Role.ADMIN)
    form = {"csrf_token": browser.get("/retention").csrf_token(), "workflow": f"orders-{unique}", "status": "failed", "keep": keep}
    reply = browser.post("/retention", form)
    assert reply.status == 400 and expected in reply.body and "Traceback" not in reply.body, reply.body[:3000]
    assert f'value="orders-{unique}"' in reply.body and 'value="failed" checked' in reply.body, "the form keeps what was typed"
    assert _policies_of(admin, f"orders-{unique}") == []


def test_a_read_token_is_refused_retention_changes_and_nothing_changes(dashboard_server: ServerProcess, admin: WorkflowStateClient, unique: str) -> None:
    kept = admin.set_retention_policy(keep=timedelta(days=7), workflow=f"kept-{unique}")
    browser = logged_in(dashboard_server, Role.READ)
    csrf = browser.get("/retention").csrf_token()
    refused = browser.post("/retention", {"csrf_token": csrf, "workflow": f"orders-{unique}", "keep": "30d"})
    assert refused.status == 403 and "PERMISSION_DENIED" in refused.body and "admin" in refused.body and "Traceback" not in refused.body
    assert _policies_of(admin, f"orders-{unique}") == []
    not_deleted = browser.post(f"/retention/{kept.policy_id}/delete", {"csrf_token": csrf})
    assert not_deleted.status == 403 and "PERMISSION_DENIED" in not_deleted.body
    assert _policies_of(admin, f"kept-{unique}") == [kept]
    admin.delete_retention_policy(kept.policy_id)


@pytest.mark.parametrize("csrf", [None, "0" * 64])
def test_retention_posts_without_the_csrf_token_are_refused_and_change_nothing(
    dashboard_server: ServerProcess, admin: WorkflowStateClient, unique: str, csrf: str | None
) -> None:
    kept = admin.set_retention_policy(keep=timedelta(days=7), workflow=f"kept-{unique}")
    browser = logged_in(dashboard_server, Role.ADMIN)
    token = {} if csrf is None else {"csrf_token": csrf}
    refused = browser.post("/retention", token | {"workflow": f"orders-{unique}", "keep": "30d"})
    assert refused.status == 403 and "CSRF token" in refused.body
    assert _policies_of(admin, f"orders-{unique}") == []
    not_deleted = browser.post(f"/retention/{kept.policy_id}/delete", token)
    assert not_deleted.status == 403 and "CSRF token" in not_deleted.body
    assert _policies_of(admin, f"kept-{unique}") == [kept]
    admin.delete_retention_policy(kept.policy_id)


def test_without_tokens_there_is_no_login_but_posts_still_need_the_csrf_token(start_server, unique) -> None:
    server = start_server("--http-listen", "127.0.0.1:0")
    with WorkflowStateClient(server.target) as client:
        runs = seed_runs(client, f"orders-{unique}")
        browser = Browser(server.dashboard_url)
        page = browser.get("/")
        assert page.status == 200 and runs.workflow in page.body and "Log out" not in page.body
        refused = browser.post(f"/runs/{runs.running_run_id}/cancel", {})
        assert refused.status == 403 and client.get_run(runs.running_run_id).status is RunStatus.RUNNING  # type: ignore[union-attr]
        confirm = browser.get(f"/runs/{runs.running_run_id}/cancel")
        done = browser.post(f"/runs/{runs.running_run_id}/cancel", {"csrf_token": confirm.csrf_token()})
        assert done.status == 303 and client.get_run(runs.running_run_id).status is RunStatus.CANCELLED  # type: ignore[union-attr]


def test_http_listen_off_serves_no_dashboard(start_server) -> None:
    server = start_server("--http-listen", "off")
    assert server.dashboard_line is None or not server.dashboard_line.startswith("workflowstate dashboard")
    assert "dashboard served" not in server.log_text()


def test_the_dashboard_line_follows_the_ready_line(start_server) -> None:
    server = start_server("--http-listen", "127.0.0.1:0")
    assert server.dashboard_url.startswith("http://127.0.0.1:") and not server.dashboard_url.endswith(":0")
    assert "dashboard served" in server.log_text()


def _serve(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workflowstate.server", "serve", "--no-embedded", "--database-url", "postgresql://nobody@127.0.0.1:1/none", *args],
        capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin", **env},
    )  # fmt: skip


@pytest.mark.parametrize("value", ["8080", "localhost:http", "127.0.0.1:70000", "[::1:80"])
def test_a_bad_http_listen_stops_the_start_naming_the_flag_or_variable(value: str) -> None:
    by_flag = _serve("--http-listen", value)
    assert by_flag.returncode == 2 and "--http-listen" in by_flag.stderr and "host:port" in by_flag.stderr, by_flag.stderr
    by_variable = _serve(WORKFLOWSTATE_HTTP_LISTEN=value)
    assert by_variable.returncode == 2 and "WORKFLOWSTATE_HTTP_LISTEN" in by_variable.stderr, by_variable.stderr


def test_an_http_port_in_use_stops_the_start_when_asked_for() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        result = _serve("--listen", "127.0.0.1:0", "--http-listen", address)
    assert result.returncode == 1 and f"another server already listens on {address}" in result.stderr and "--http-listen" in result.stderr, result.stderr


def test_with_tls_the_dashboard_is_https_and_its_cookie_secure(start_server, tmp_path, unique) -> None:
    """The dashboard reaches its own server's API over the private socket whatever the TLS set-up:
    a page that lists runs works, and the cookie only ever travels over HTTPS."""
    cert, key = self_signed(tmp_path)
    server = start_server("--tls-cert", str(cert), "--tls-key", str(key), "--http-listen", "127.0.0.1:0")
    assert server.dashboard_url.startswith("https://127.0.0.1:")
    context = ssl.create_default_context(cafile=str(cert))
    port = int(server.dashboard_url.rsplit(":", 1)[1])
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=30)
    try:
        connection.request("GET", "/runs")
        response = connection.getresponse()
        body = response.read().decode()
    finally:
        connection.close()
    assert response.status == 200 and "No run matches." in body
    cookie = response.headers["Set-Cookie"].lower()
    assert "secure" in [part.strip() for part in cookie.split(";")] and "httponly" in cookie and "samesite=strict" in cookie


def test_with_workers_the_first_one_serves_the_dashboard_and_the_parent_prints_it(start_server, unique) -> None:
    server = start_server("--workers", "2", "--http-listen", "127.0.0.1:0")
    with WorkflowStateClient(server.target) as client:
        client.create_run(f"orders-{unique}", {})
    page = Browser(server.dashboard_url).get("/")
    assert page.status == 200 and f"orders-{unique}" in page.body
    assert server.log_text().count("dashboard served") == 1


def test_the_default_dashboard_port_taken_leaves_the_dashboard_off_and_the_server_up(database_url: str, unique: str) -> None:
    """A second server on a machine (or anything on 8080) must not stop a start that never asked for
    the dashboard's port; it says so instead."""
    holder = socket.socket()
    try:
        holder.bind(("127.0.0.1", 8080))
        holder.listen()
    except OSError:
        pass  # taken already, which is the case under test
    env = {key: value for key, value in os.environ.items() if not key.startswith("WORKFLOWSTATE_")}
    command = [sys.executable, "-m", "workflowstate.server", "serve", "--listen", "127.0.0.1:0", "--database-url", database_url, "--schema", f"dflt_{unique}"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert process.stdout and process.stderr
        ready = process.stdout.readline()
        assert ready.startswith("workflowstate listening on "), ready + process.stderr.read()
        assert process.stdout.readline().strip() == "workflowstate dashboard not started: 127.0.0.1:8080 is taken (pass --http-listen)"
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
        assert "dashboard not started" in process.stderr.read()
    finally:
        holder.close()
        if process.poll() is None:
            process.kill()
            process.wait(60)
        for pipe in (process.stdout, process.stderr):
            if pipe:
                pipe.close()


def test_an_open_event_stream_does_not_hold_up_the_stop(database_url: str) -> None:
    """A running run's event stream lasts as long as the run; the server's stop ends it. Without
    that, the stop would wait out aiohttp's shutdown timeout (60 s) and this stop's 20 s fails."""
    server = ServerProcess(database_url, f"dash_{uuid.uuid4().hex[:8]}", "--http-listen", "127.0.0.1:0").start()
    parts = urlsplit(server.dashboard_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        with WorkflowStateClient(server.target) as client:
            run = client.create_run("sse-stop", {})
        connection.request("GET", f"/runs/{run.run_id}/events")
        response = connection.getresponse()
        assert response.readline().startswith(b"id: ")  # the run's first event: the stream is open
        assert server.stop(timeout=20) == 0
        try:
            rest = response.read()
        except http.client.IncompleteRead as cut:  # the server closed it mid-stream
            rest = cut.partial
        assert b"event: end" not in rest  # ended by the stop, not by the run
    finally:
        connection.close()
        server.kill()


def test_a_grpc_client_at_the_dashboard_port_gets_a_plain_answer_and_one_log_line_without_a_traceback(start_server) -> None:
    server = start_server("--http-listen", "127.0.0.1:0", "--log-format", "json")
    dashboard = urlsplit(server.dashboard_url)
    with grpc.insecure_channel(f"{dashboard.hostname}:{dashboard.port}") as channel:
        stub = pb_grpc.WorkflowStateServiceStub(channel)
        with pytest.raises(grpc.RpcError) as refused:
            stub.GetRun(pb.GetRunRequest(run_id=str(uuid.uuid4())), timeout=30)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert server.stop() == 0
    records = [json.loads(line) for line in server.log_text().splitlines()]
    assert [record for record in records if record["level"] in ("error", "critical") or "exception" in record] == []
    told = [record for record in records if "gRPC client called the dashboard port" in record["msg"]]
    assert len(told) == 1 and server.target in told[0]["msg"], told


@pytest.mark.parametrize("sent", [b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", b"GET / HTTP/7.1\r\nHost: 127.0.0.1\r\n\r\n"], ids=["http2-preface", "unknown-version"])
def test_bytes_that_are_not_http1_get_a_plain_400_and_at_most_one_line_without_a_traceback(start_server, sent: bytes) -> None:
    server = start_server("--http-listen", "127.0.0.1:0", "--log-format", "json")
    dashboard = urlsplit(server.dashboard_url)
    with socket.create_connection((dashboard.hostname, dashboard.port), timeout=30) as conn:
        conn.sendall(sent)
        answer = conn.makefile("rb").read()  # the server answers and closes the connection
    assert answer.startswith((b"HTTP/1.0 400 ", b"HTTP/1.1 400 ")), answer[:200]
    assert server.stop() == 0
    records = [json.loads(line) for line in server.log_text().splitlines()]
    assert [record for record in records if record["level"] in ("error", "critical") or "exception" in record] == []
    assert len([record for record in records if record["logger"] == "workflowstate.server.web.http"]) <= 1
