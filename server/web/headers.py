"""The security headers every answer of the dashboard carries, pages, static files and refusals alike.

The Content-Security-Policy lets in the dashboard's own files only: the vendored htmx and run.js
(no inline script, no inline style, no eval: the pages have none), fetches and the run's event
stream from the page's own origin, and forms posted to it. No page may frame the dashboard
(frame-ancestors, and X-Frame-Options for older browsers): a page of another port of the same host
framed the cancel confirmation once, and one click cancelled a run.
"""

from __future__ import annotations

from aiohttp import web

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ]
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # Our own requests keep it (the origin check falls back on it); other sites never see a run's URL.
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
# Under TLS only (over plain HTTP browsers ignore it). No includeSubDomains: the dashboard cannot
# speak for the other hosts of its domain.
STRICT_TRANSPORT_SECURITY = "max-age=31536000"


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """An on_response_prepare hook: it sees every answer, also those of exceptions and static files."""
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if request.app["settings"].tls:
        response.headers.setdefault("Strict-Transport-Security", STRICT_TRANSPORT_SECURITY)
