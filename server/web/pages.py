"""The pages that only read: overview, runs list, run page (its live part and the run's events),
workers, leases, login."""

from __future__ import annotations

import asyncio
import math
from datetime import datetime, timedelta, timezone
from typing import TypedDict

from aiohttp import web

from workflowstate.client import InvalidArgument, Run, RunStatus, Unauthenticated, WorkflowStateError

from .login_throttle import LoginThrottle
from .api import CLIENT, client_for
from .responses import error_page, log, redirect, render
from .sessions import Sessions, SessionsFull
from .run_filters import BadFilter, RunsQuery
from .timeline import Timeline, build_timeline

routes = web.RouteTableDef()
PAGE_SIZE = 50
# A run in one of these may still change (a suspended one may run again): its page stays live.
OPEN_RUN_STATUSES = frozenset({RunStatus.RUNNING, RunStatus.SUSPENDED})
# What the page says after an action redirected to it (a fixed set: nothing from the URL is echoed).
DONE = {
    "cancelled": "The run was cancelled.",
    "deleted": "The run was deleted.",
    "retried": "A new attempt of the step was created and scheduled.",
}


@routes.get("/")
async def overview(request: web.Request) -> web.Response:
    client = request[CLIENT]
    workflows, workers = await asyncio.gather(client.list_workflows(), client.list_workers())
    totals = {status: sum(w.run_counts.get(status, 0) for w in workflows) for status in RunStatus}
    return render(request, "overview.html", workflows=workflows, workers=workers, statuses=list(RunStatus), totals=totals)


@routes.get("/workers")
async def workers(request: web.Request) -> web.Response:
    return render(request, "workers.html", workers=await request[CLIENT].list_workers())


@routes.get("/runs")
async def runs(request: web.Request) -> web.Response:
    try:
        query = RunsQuery.from_query(request.query)
    except BadFilter as err:
        return render(request, "runs.html", status=400, query=RunsQuery(), runs=[], next_url=None,
                      statuses=list(RunStatus), message=str(err), done=None)  # fmt: skip
    try:
        page = await request[CLIENT].list_runs(
            workflow=query.workflow or None,
            statuses=query.statuses,
            created_after=query.created_after(),
            oldest_first=query.order == "oldest",
            page_size=PAGE_SIZE,
            page_token=query.page_token or None,
        )
    except InvalidArgument as err:
        return render(request, "runs.html", status=400, query=query, runs=[], next_url=None,
                      statuses=list(RunStatus), message=f"INVALID_ARGUMENT: {err.message}", done=None)  # fmt: skip
    next_url = query.url(page_token=page.next_page_token) if page.next_page_token else None
    return render(request, "runs.html", query=query, runs=page.runs, next_url=next_url, statuses=list(RunStatus),
                  message=None, done=DONE.get(request.query.get("done", "")))  # fmt: skip


class RunView(TypedDict):
    """What the run page and its live part show."""

    run: Run
    timeline: Timeline
    live: bool


async def _run_view(request: web.Request) -> RunView | None:
    """Everything the run page shows, or None for a run that does not exist."""
    client = request[CLIENT]
    run_id = request.match_info["run_id"]
    run = await client.get_run(run_id)
    if run is None:
        return None
    steps = await client.list_steps(run_id)
    history = await client.get_run_history(run_id)
    timeline = build_timeline(run, steps, history, datetime.now(timezone.utc))
    return {"run": run, "timeline": timeline, "live": run.status in OPEN_RUN_STATUSES}


@routes.get("/runs/{run_id}")
async def run_page(request: web.Request) -> web.Response:
    view = await _run_view(request)
    if view is None:
        return render(request, "error.html", status=404, message=f"No run {request.match_info['run_id']} (deleted, or never created).")
    return render(request, "run.html", done=DONE.get(request.query.get("done", "")), **view)


@routes.get("/runs/{run_id}/live")
async def run_live(request: web.Request) -> web.Response:
    """The run page's changing part, fetched again on each of the run's events (below); once the run
    has finished the fragment comes without its trigger, so the page stops listening."""
    view = await _run_view(request)
    if view is None:
        return render(request, "error.html", status=404, message="The run is gone (deleted).")
    return render(request, "run_live.html", **view)


# How long watch_run keeps trying when the gRPC server is away before the event stream ends (the
# browser's EventSource then reconnects by itself, resuming after the last event it got).
EVENTS_RECONNECT = timedelta(seconds=30)


@routes.get("/runs/{run_id}/events")
async def run_events(request: web.Request) -> web.StreamResponse:
    """The run's events as server-sent events, from watch_run: a `change` per event (its id as the
    SSE id, so a reconnecting browser resumes after it), then `end` once the run has finished, is
    gone, or may not be watched. The stream ends with the server's shutdown too (app.py)."""
    try:
        after_event_id = _last_event_id(request)
    except BadLastEventId as err:
        return render(request, "error.html", status=400, message=str(err))
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"})
    await response.prepare(request)
    streams: set[asyncio.Task[object]] = request.app["event_streams"]
    task = asyncio.current_task()
    assert task is not None
    streams.add(task)
    try:
        events = request[CLIENT].watch_run(
            request.match_info["run_id"], after_event_id=after_event_id, reconnect_timeout=EVENTS_RECONNECT
        )
        try:
            async for event in events:
                await response.write(f"id: {event.event_id}\nevent: change\ndata: {event.event_id}\n\n".encode())
            ending = "finished"
        except WorkflowStateError as err:  # NOT_FOUND (deleted), PERMISSION_DENIED, UNAVAILABLE at last
            ending = err.status.name
        await response.write(f"event: end\ndata: {ending}\n\n".encode())
    except ConnectionResetError:  # the browser left
        pass
    finally:
        streams.discard(task)
    return response


# Event ids are PostgreSQL bigints: never more than this.
_MOST_EVENT_ID = 2**63 - 1
_DIGITS = frozenset("0123456789")


class BadLastEventId(ValueError):
    pass


def _last_event_id(request: web.Request) -> int:
    """Where a reconnecting EventSource resumes (its Last-Event-ID header), 0 at first. Only ASCII
    digits: str.isdigit() also takes "²", which int() then refuses."""
    text = request.headers.get("Last-Event-ID", "")
    if not text:
        return 0
    if len(text) > len(str(_MOST_EVENT_ID)) or not set(text) <= _DIGITS or int(text) > _MOST_EVENT_ID:
        raise BadLastEventId(
            f"Last-Event-ID: must be a whole number from 0 to {_MOST_EVENT_ID} (the id of an event this stream sent), not {text[:40]!r}"
        )
    return int(text)


@routes.get("/leases")
async def leases(request: web.Request) -> web.Response:
    prefix = request.query.get("prefix", "")
    try:
        page = await request[CLIENT].list_leases(key_prefix=prefix or None, page_size=PAGE_SIZE, page_token=request.query.get("page_token") or None)
    except InvalidArgument as err:
        return error_page(request, err)
    return render(request, "leases.html", prefix=prefix, leases=page.leases, next_token=page.next_page_token)


@routes.get("/login")
async def login_form(request: web.Request) -> web.Response:
    if not request.app["settings"].login_required or request["logged_in"]:
        return redirect("/")
    message = "Your session ended; log in again." if request.query.get("expired") else None
    return render(request, "login.html", message=message)


@routes.post("/login")
async def login(request: web.Request) -> web.Response:
    """Each attempt is throttled per client address and each failure logged with the address (never
    the token); see login_throttle.py."""
    settings = request.app["settings"]
    if not settings.login_required:
        return redirect("/")
    throttle: LoginThrottle = request.app["login_throttle"]
    address = request.remote
    wait = throttle.take(address)
    if wait is not None:
        if throttle.first_refusal(address):
            log.warning("dashboard login throttled", extra={"client": address, "retry_after_s": math.ceil(wait)})
        response = render(request, "login.html", status=429, message=f"Too many failed logins from your address: try again in {math.ceil(wait)} s.")
        response.headers["Retry-After"] = str(math.ceil(wait))
        return response
    form = await request.post()
    token = str(form.get("token", "")).strip()
    if not token or not all("!" <= character <= "~" for character in token):
        log.warning("dashboard login failed", extra={"client": address, "reason": "not a token"})
        return render(request, "login.html", status=401, message="That is not a token: paste the line `workflowstate token new` printed.")
    client = client_for(settings, token)
    try:
        await client.list_workflows()  # every role may read: a token the server knows passes
    except Unauthenticated:
        await client.close()
        log.warning("dashboard login failed", extra={"client": address, "reason": "unknown token"})
        return render(request, "login.html", status=401, message="Wrong token: the server does not know it.")
    except BaseException:
        await client.close()
        throttle.give_back(address)  # not judged (the server is away): not a failure
        raise
    throttle.give_back(address)
    sessions: Sessions = request.app["sessions"]
    # A new session id at login, so an id planted in the browser before cannot ride the login.
    sessions.logout(request["session_id"])
    new_id = sessions.mint()
    try:
        sessions.login(new_id, client, token)
    except SessionsFull as err:
        await client.close()
        return render(request, "login.html", status=503, message=f"Cannot log in now: {err}. "
                      f"Try again once some end (at logout, or after {settings.session_idle_seconds / 3600:g} hours unused).")  # fmt: skip
    request["session_id"] = new_id
    return redirect("/")


@routes.post("/logout")
async def logout(request: web.Request) -> web.Response:
    request.app["sessions"].logout(request["session_id"])
    request["session_id"] = request.app["sessions"].mint()
    return redirect("/login" if request.app["settings"].login_required else "/")
