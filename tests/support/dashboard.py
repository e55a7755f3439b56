"""For the dashboard's tests: a server with the dashboard and tokens, a small HTTP client that keeps
its session cookie and never follows redirects (the tests look at them), and runs to look at."""

from __future__ import annotations

import http.client
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from support.server_process import ServerProcess

from workflowstate.client import Failure, RunStatus, StepStatus, WorkflowStateClient
from workflowstate.server.rpc.tokens import Role, token_line

COOKIE = "workflowstate_session"
# A form's fields: a dict, or pairs when a field comes more than once (ticked checkboxes).
Form = dict[str, str] | list[tuple[str, str]]


def write_token_file(folder: Path, tokens: dict[Role, str]) -> Path:
    path = folder / "tokens.txt"
    path.write_text("".join(token_line(token, role, role.value) + "\n" for role, token in tokens.items()))
    return path


@contextmanager
def dashboard_with_tokens(database_url: str, folder: Path, tokens: dict[Role, str], *extra_args: str) -> Iterator[ServerProcess]:
    """A server with tokens and its dashboard on a free loopback port; at its stop, its log holds
    no unexpected error, no traceback and none of the tokens."""
    path = write_token_file(folder, tokens)
    server = ServerProcess(
        database_url, f"dash_{uuid.uuid4().hex[:8]}", "--auth-tokens", str(path), "--http-listen", "127.0.0.1:0", *extra_args
    ).start()
    yield server
    assert server.stop() == 0, server.log_text()[-4000:]
    log = server.log_text()
    assert "unexpected error" not in log and "Traceback" not in log, log[-4000:]
    for token in tokens.values():
        assert token not in log


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: str

    @property
    def location(self) -> str | None:
        return self.headers.get("Location")

    def csrf_token(self) -> str:
        found = re.search(r'name="csrf_token" value="([^"]+)"', self.body)
        assert found, f"no CSRF token in the page:\n{self.body[:2000]}"
        return found.group(1)


@dataclass
class Browser:
    """An HTTP client with one cookie jar slot: the session cookie, as a browser keeps it."""

    base_url: str
    cookie: str | None = None
    set_cookie_headers: list[str] = field(default_factory=list)

    def request(self, method: str, path: str, form: Form | None = None, headers: dict[str, str] | None = None) -> Reply:
        parts = urlsplit(self.base_url)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        sent = dict(headers or {})
        body = None
        if form is not None:
            body = urlencode(form)
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        if self.cookie:
            sent["Cookie"] = f"{COOKIE}={self.cookie}"
        try:
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            reply = Reply(response.status, response.headers, response.read().decode())
        finally:
            connection.close()
        for header in reply.headers.get_all("Set-Cookie") or []:
            self.set_cookie_headers.append(header)
            parsed = SimpleCookie(header)
            if COOKIE in parsed:
                self.cookie = parsed[COOKIE].value
        return reply

    def get(self, path: str) -> Reply:
        return self.request("GET", path)

    def post(self, path: str, form: Form, headers: dict[str, str] | None = None) -> Reply:
        """A form sent from one of the dashboard's own pages: with its Origin, as browsers send it."""
        return self.request("POST", path, form, {"Origin": self.origin} | (headers or {}))

    @property
    def origin(self) -> str:
        parts = urlsplit(self.base_url)
        return f"{parts.scheme}://{parts.netloc}"

    def login(self, token: str) -> Reply:
        page = self.get("/login")
        return self.post("/login", {"token": token, "csrf_token": page.csrf_token()})


@dataclass(frozen=True)
class SeededRuns:
    failed_run_id: str
    failed_step_id: str
    running_run_id: str
    notify_step_id: str
    workflow: str


def seed_runs(client: WorkflowStateClient, workflow: str) -> SeededRuns:
    """A FAILED run whose step failed twice (two attempts, two errors), and a RUNNING run with a
    RUNNING step and a FAILED one (which may be retried: its run is not finished)."""
    failed = client.create_run(workflow, {"order": 1})
    step = client.insert_step_state(failed.run_id, "charge", "payments.charge", {"amount": 10}, retries=1)
    client.set_step_running(step.step_id)
    client.set_step_error(step.step_id, Failure("card gateway timed out", stack="Traceback: gateway.py line 12", code="TimeoutError"))
    client.create_retry_attempt(step.step_id, StepStatus.RUNNING)
    client.set_step_error(step.step_id, Failure("card declined by the bank", stack="Traceback: gateway.py line 40", code="Declined"))
    client.update_run_status(failed.run_id, RunStatus.FAILED, error=Failure("charge failed"))
    running = client.create_run(workflow, {"order": 2})
    ship = client.insert_step_state(running.run_id, "ship", "shipping.ship", {"parcel": 7})
    client.set_step_running(ship.step_id)
    notify = client.insert_step_state(running.run_id, "notify", "mail.notify", {"to": "ops"})
    client.set_step_error(notify.step_id, Failure("mail server refused", code="SMTPError"))
    return SeededRuns(failed.run_id, step.step_id, running.run_id, notify.step_id, workflow)
