"""The dashboard in a real browser: Debian's Chromium driven by Playwright clicks through login (a
wrong token, then a right one), filters to failed runs, opens one and sees both attempts and their
errors, watches a running run update by itself, and cancels it with the confirmation step. Then
the same pages under the Content-Security-Policy: htmx and the live part work with no violation in
the console, and a page of another origin cannot frame the dashboard.

Screenshots (named by step) go to tests/screenshots/, printed at the end; they are not committed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import playwright.sync_api as playwright_api
import pytest
from support.chromium import ARGS, ensure_chromium
from support.dashboard import SeededRuns, seed_runs, write_token_file
from support.server_process import ServerProcess

from workflowstate.client import RunStatus, WorkflowStateClient
from workflowstate.server.rpc.tokens import Role

SCREENSHOTS = Path(__file__).parent / "screenshots"
TOKENS = {Role.ADMIN: f"admin-{uuid.uuid4().hex}"}
# Playwright's wait for what the page shows (not a sleep: it returns as soon as it is there).
SHOWN_WITHIN_MS = 15_000


@pytest.fixture(scope="module")
def chromium() -> Path:
    return ensure_chromium()


@pytest.fixture(scope="module")
def dashboard_server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tokens = write_token_file(tmp_path_factory.mktemp("browser"), TOKENS)
    server = ServerProcess(database_url, f"browse_{uuid.uuid4().hex[:8]}", "--auth-tokens", str(tokens), "--http-listen", "127.0.0.1:0").start()
    yield server
    assert server.stop() == 0, server.log_text()[-4000:]
    assert "unexpected error" not in server.log_text()


@pytest.fixture(scope="module")
def admin(dashboard_server: ServerProcess) -> Iterator[WorkflowStateClient]:
    with WorkflowStateClient(dashboard_server.target, token=TOKENS[Role.ADMIN]) as client:
        yield client


@pytest.fixture(scope="module")
def browser(chromium: Path) -> Iterator[playwright_api.Browser]:
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(chromium), args=ARGS, headless=True)
        yield launched
        launched.close()
    print(f"\ndashboard screenshots in {SCREENSHOTS}")


@pytest.fixture(scope="module")
def page(browser: playwright_api.Browser) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(SHOWN_WITHIN_MS)
    yield context.new_page()
    context.close()


@pytest.fixture
def fresh_page(browser: playwright_api.Browser) -> Iterator[playwright_api.Page]:
    """A page of its own browser context: no cookie of the other tests."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(SHOWN_WITHIN_MS)
    yield context.new_page()
    context.close()


def shot(page: object, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]


def test_click_through_the_dashboard(page, dashboard_server: ServerProcess, admin: WorkflowStateClient) -> None:  # type: ignore[no-untyped-def]
    expect = playwright_api.expect
    runs: SeededRuns = seed_runs(admin, f"orders-{uuid.uuid4().hex[:8]}")
    for _ in range(2):
        admin.update_run_status(admin.create_run(runs.workflow, {}).run_id, RunStatus.COMPLETED, output={"ok": True})
    base = dashboard_server.dashboard_url

    # Log in: a wrong token gets the form again with a message, the right one the overview.
    page.goto(f"{base}/")
    expect(page).to_have_url(f"{base}/login")
    page.fill("input[name=token]", "certainly-not-a-token")
    page.click("button[type=submit]")
    expect(page.locator(".message.error")).to_contain_text("Wrong token")
    shot(page, "01-login-wrong-token")
    page.fill("input[name=token]", TOKENS[Role.ADMIN])
    page.click("form.login button[type=submit]")
    expect(page).to_have_url(f"{base}/")
    expect(page.locator("table.counts")).to_contain_text(runs.workflow)
    shot(page, "02-overview")

    # Filter to the workflow's failed runs: one row, and the URL keeps the filters.
    page.click("nav >> text=Runs")
    page.fill("input[name=workflow]", runs.workflow)
    page.check("input[name=status][value=failed]")
    page.click("form.filters button[type=submit]")
    expect(page).to_have_url(f"{base}/runs?workflow={runs.workflow}&status=failed&since=&order=newest")
    rows = page.locator("table.runs tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(runs.failed_run_id)
    shot(page, "03-runs-filtered-to-failed")

    # The failed run: both attempts of its step, each with its error, and the stack on demand.
    page.click(f"text={runs.failed_run_id}")
    expect(page).to_have_url(f"{base}/runs/{runs.failed_run_id}")
    attempts = page.locator("#step-charge li.attempt")
    expect(attempts).to_have_count(2)
    expect(attempts.nth(0)).to_contain_text("card gateway timed out")
    expect(attempts.nth(1)).to_contain_text("card declined by the bank")
    attempts.nth(1).locator("summary").click()
    expect(attempts.nth(1).locator("pre")).to_contain_text("gateway.py line 40")
    shot(page, "04-run-failed-two-attempts")

    # A running run updates by itself: a step finishing elsewhere shows up without a reload.
    page.goto(f"{base}/runs/{runs.running_run_id}")
    expect(page.locator("#run-status")).to_have_text("running")
    ship = admin.get_step_state(runs.running_run_id, "ship")
    admin.set_step_result(ship.step_id, {"tracking": "XY123"})
    expect(page.locator("#step-ship h3 .status")).to_have_text("succeeded")
    shot(page, "05-running-run-updated-live")

    # Cancel it, through the confirmation page; the page then says CANCELLED.
    page.click("text=Cancel run…")
    expect(page).to_have_url(f"{base}/runs/{runs.running_run_id}/cancel")
    shot(page, "06-cancel-confirmation")
    page.fill("input[name=reason]", "customer asked")
    page.click("text=Yes, cancel")
    expect(page).to_have_url(f"{base}/runs/{runs.running_run_id}?done=cancelled")
    expect(page.locator("#run-status")).to_have_text("cancelled")
    expect(page.locator("dl.run")).to_contain_text("customer asked")
    shot(page, "07-run-cancelled")
    assert admin.get_run(runs.running_run_id).status is RunStatus.CANCELLED  # type: ignore[union-attr]


def _is_csp_report(message: playwright_api.ConsoleMessage) -> bool:
    """Chromium reports each thing the policy refused as a console error naming it."""
    return "Content Security Policy" in message.text


def test_the_pages_work_under_the_content_security_policy(
    fresh_page: playwright_api.Page, dashboard_server: ServerProcess, admin: WorkflowStateClient
) -> None:
    expect = playwright_api.expect
    page = fresh_page
    refused: list[str] = []
    page.on("console", lambda message: refused.append(message.text) if _is_csp_report(message) else None)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    runs: SeededRuns = seed_runs(admin, f"csp-{uuid.uuid4().hex[:8]}")
    base = dashboard_server.dashboard_url

    response = page.goto(f"{base}/login")
    assert response is not None and "script-src 'self'" in response.headers.get("content-security-policy", ""), response and response.headers
    page.fill("input[name=token]", TOKENS[Role.ADMIN])
    page.click("form.login button[type=submit]")
    expect(page).to_have_url(f"{base}/")

    # The run page: htmx (a file of our own) loaded, the event stream and the live part work.
    page.goto(f"{base}/runs/{runs.running_run_id}")
    expect(page.locator("#run-status")).to_have_text("running")
    assert page.evaluate("typeof htmx") == "object", "htmx did not load"
    ship = admin.get_step_state(runs.running_run_id, "ship")
    admin.set_step_result(ship.step_id, {"tracking": "CSP1"})
    expect(page.locator("#step-ship h3 .status")).to_have_text("succeeded")
    expect(page.locator("#step-ship svg.track rect.status-succeeded")).to_have_count(1)
    shot(page, "08-run-under-the-csp")
    # A form, through the policy's form-action: the cancel confirmation and its POST.
    page.click("text=Cancel run…")
    page.click("text=Yes, cancel")
    expect(page.locator("#run-status")).to_have_text("cancelled")
    assert refused == [] and errors == [], (refused, errors)


def test_another_page_cannot_frame_the_dashboard(fresh_page: playwright_api.Page, dashboard_server: ServerProcess) -> None:
    """A page of another origin (another port of the same host did it once) framing the dashboard
    gets nothing: the browser refuses the frame, so no click in it can act."""
    page = fresh_page  # about:blank: an origin of its own
    with page.expect_console_message(_is_csp_report) as refusal:
        page.set_content(f'<iframe src="{dashboard_server.dashboard_url}/login" width="800" height="600"></iframe>')
    assert "frame-ancestors 'none'" in refusal.value.text
    assert page.frame_locator("iframe").locator("input[name=token]").count() == 0
