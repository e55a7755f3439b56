"""Rendering: templates, redirects, and API errors turned into pages (never a stack trace)."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timezone
from typing import Any

import grpc
import jinja2
from aiohttp import web

from workflowstate.client import WorkflowStateError

from .retention_form import format_keep
from .timeline import format_duration

log = logging.getLogger("workflowstate.server.web")

TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("workflowstate.server.web", "templates"),
    autoescape=jinja2.select_autoescape(default=True),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _when(moment: datetime | None) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC") if moment else ""


TEMPLATES.filters["when"] = _when
TEMPLATES.filters["duration"] = format_duration
TEMPLATES.filters["keep"] = format_keep

# The HTTP status that says the same as each gRPC code the API answers a dashboard call with.
_HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 503,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.ABORTED: 409,
}


def render(request: web.Request, template: str, *, status: int = 200, **context: Any) -> web.Response:
    """A page: the template with what every page shows (who is logged in, the CSRF token, the flash)."""
    html = TEMPLATES.get_template(template).render(
        csrf_token=request.get("csrf_token", ""),
        logged_in=request.get("logged_in", False),
        login_required=request.app["settings"].login_required,
        path=request.path,
        **context,
    )
    return web.Response(text=html, status=status, content_type="text/html", headers={"Cache-Control": "no-store"})


def redirect(location: str) -> web.Response:
    """303 See Other: after a POST the browser GETs the page (reloading it never repeats the action)."""
    return web.Response(status=303, headers={"Location": location})


def describe(err: WorkflowStateError) -> tuple[int, str]:
    """The HTTP status and the message for an error the API answered."""
    return _HTTP_STATUS.get(err.status, 502), f"{err.status.name}: {err.message}"


def error_page(request: web.Request, err: WorkflowStateError) -> web.Response:
    status, message = describe(err)
    return render(request, "error.html", status=status, message=message)


def internal_error_page(request: web.Request, err: BaseException) -> web.Response:
    """A bug of the dashboard: logged with its stack and a reference; the browser gets the reference only."""
    reference = uuid.uuid4().hex[:12]
    log.error("unexpected error in the dashboard", exc_info=err, extra={"reference": reference, "path": request.path})
    return render(request, "error.html", status=500, message=f"Internal error (reference {reference}); the server's log has the details.")
