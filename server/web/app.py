"""The dashboard's aiohttp application: sessions, CSRF, error pages, routes; started on a bound socket
in the gRPC server's own event loop (so it needs no thread and no process of its own)."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import hdrs, web

from workflowstate.client import Unauthenticated, WorkflowStateError

from . import actions, pages, retention
from .api import CLIENT, client_for
from .headers import add_security_headers
from .hosts import READ_METHODS, AllowedHosts, origin_refusal
from .login_throttle import LoginThrottle
from .not_http import not_http_logger
from .responses import error_page, internal_error_page, redirect, render
from .sessions import COOKIE_NAME, Sessions
from .settings import WebSettings

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
STATIC = Path(__file__).parent / "static"
# Paths served before login: the login form itself and the files it needs.
_OPEN_PATHS = ("/login", "/static/")


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """API errors become a page with their message; anything unexpected a page with a reference."""
    try:
        return await handler(request)
    except web.HTTPException:
        raise
    except Unauthenticated:
        # The server no longer knows the token (restarted with another token file): log in again.
        request.app["sessions"].logout(request.get("session_id"))
        return redirect("/login?expired=1")
    except WorkflowStateError as err:
        return error_page(request, err)
    except Exception as err:  # noqa: BLE001 -- the browser never gets a stack trace
        return internal_error_page(request, err)


@web.middleware
async def hosts(request: web.Request, handler: Handler) -> web.StreamResponse:
    """421 for a Host the dashboard does not serve, before anything else runs (hosts.py says why)."""
    allowed: AllowedHosts = request.app["allowed_hosts"]
    host = request.headers.get(hdrs.HOST)
    if allowed.allows_host_header(host):
        return await handler(request)
    shown = repr(host[:200]) if host is not None else "(no Host header)"
    return web.Response(
        status=421, content_type="text/plain",
        text=f"Refused: this dashboard does not serve the host {shown}: a name it does not know may be a DNS rebinding attack.\n"
        f"It serves {allowed.described()}; to serve it under another name, start the server with --http-allowed-hosts NAME.\n",
    )  # fmt: skip


@web.middleware
async def session(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give every browser a session id, find its login, check the origin and CSRF token of every change."""
    app = request.app
    settings: WebSettings = app["settings"]
    sessions: Sessions = app["sessions"]
    session_id = request.cookies.get(COOKIE_NAME)
    fresh = not sessions.minted(session_id)
    if fresh or session_id is None:
        session_id = sessions.mint()
    request["session_id"] = session_id
    request["csrf_token"] = sessions.csrf_token(session_id)
    if request.method not in READ_METHODS:
        refusal = await _change_refusal(request, sessions, fresh)
        if refusal is not None:
            return refusal
    if settings.login_required:
        login = sessions.find(session_id)
        request["logged_in"] = login is not None
        if login is not None:
            request[CLIENT] = login.client
        elif not request.path.startswith(_OPEN_PATHS):
            response: web.StreamResponse = redirect("/login")
            if request.headers.get("HX-Request"):
                # htmx follows redirects itself and would swap the login form into the page.
                response = web.Response(status=401, headers={"HX-Redirect": "/login"})
            _set_cookie(response, session_id, settings, fresh)
            return response
    else:
        request[CLIENT] = app["anonymous_client"]
    response = await handler(request)
    _set_cookie(response, request["session_id"], settings, fresh or request["session_id"] != session_id)
    return response


async def _change_refusal(request: web.Request, sessions: Sessions, fresh: bool) -> web.Response | None:
    """403, before anything is done, when a change comes from another origin or lacks this session's CSRF token."""
    refusal = origin_refusal(request.app["allowed_hosts"], request.headers.get(hdrs.ORIGIN), request.headers.get(hdrs.REFERER))
    if refusal is not None:
        return render(request, "error.html", status=403, message=refusal)
    form = await request.post()
    token = form.get("csrf_token")
    # A fresh id is not the one the form was made for: no token can match it.
    if fresh or not sessions.csrf_ok(request["session_id"], token if isinstance(token, str) else None):
        return render(
            request, "error.html", status=403,
            message="Refused: the form's CSRF token is missing or out of date (was the page open before a login or a restart?). "
            "Reload the page and try again.",
        )  # fmt: skip
    return None


def _set_cookie(response: web.StreamResponse, session_id: str, settings: WebSettings, changed: bool) -> None:
    if changed:
        response.set_cookie(COOKIE_NAME, session_id, httponly=True, samesite="Strict", secure=settings.tls, path="/")


def build_app(settings: WebSettings, *, port: int) -> web.Application:
    """The application of a dashboard served on `port` (which the hosts it answers include)."""
    app = web.Application(middlewares=[hosts, errors, session], client_max_size=64 * 1024)
    app["settings"] = settings
    app["allowed_hosts"] = AllowedHosts.of(listen_host=settings.listen_host, port=port, listed=settings.allowed_hosts, tls=settings.tls)
    app["sessions"] = Sessions(
        max_sessions=settings.max_sessions, max_per_token=settings.max_sessions_per_token, idle_seconds=settings.session_idle_seconds
    )
    app["login_throttle"] = LoginThrottle(burst=settings.login_burst, refill_seconds=settings.login_refill_seconds)
    app.on_response_prepare.append(add_security_headers)
    app["event_streams"] = set()
    app.on_startup.append(_open_anonymous_client)
    app.on_shutdown.append(_end_event_streams)
    app.on_cleanup.append(_close_clients)
    app.add_routes(pages.routes)
    app.add_routes(actions.routes)
    app.add_routes(retention.routes)
    app.router.add_static("/static/", STATIC, append_version=True)
    return app


async def _open_anonymous_client(app: web.Application) -> None:
    settings: WebSettings = app["settings"]
    app["anonymous_client"] = None if settings.login_required else client_for(settings, None)


async def _end_event_streams(app: web.Application) -> None:
    """A run's event stream lasts as long as the run: end them all, or the stop waits for them."""
    for task in list(app["event_streams"]):
        task.cancel()


async def _close_clients(app: web.Application) -> None:
    await app["sessions"].close()
    if app["anonymous_client"] is not None:
        await app["anonymous_client"].close()


def bind(listen: str) -> socket.socket:
    """A listening socket on host:port (port 0 picks one). OSError when it cannot be bound."""
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    family, kind, proto, _, address = socket.getaddrinfo(host or None, int(port), type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        # TIME_WAIT connections of an earlier server do not count; a live listener still does (Linux).
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def _ssl_context(settings: WebSettings) -> ssl.SSLContext | None:
    if not settings.tls:
        return None
    assert settings.tls_cert and settings.tls_key
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings.tls_cert, settings.tls_key)
    if settings.tls_client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(settings.tls_client_ca)
    return context


class Dashboard:
    """The running dashboard: start it on a bound socket, stop it on shutdown."""

    def __init__(self, settings: WebSettings, sock: socket.socket) -> None:
        self.settings = settings
        self._sock = sock
        app = build_app(settings, port=sock.getsockname()[1])
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, logger=not_http_logger(settings.api_address))

    @property
    def url(self) -> str:
        host, port = self._sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        return f"{'https' if self.settings.tls else 'http'}://{shown}:{port}/"

    async def start(self) -> None:
        await self._runner.setup()
        await web.SockSite(self._runner, self._sock, ssl_context=_ssl_context(self.settings)).start()

    async def stop(self) -> None:
        await self._runner.cleanup()
