"""Whether the dashboard would be open to the network, and what `serve` says about it.

Without --auth-tokens (or client certificates) the dashboard has no login: whoever reaches it may
cancel and delete every run. That is right on loopback (the default) and nowhere else, so a start
that would serve it beyond loopback that way is refused unless --http-allow-unauthenticated-network
says it is meant, and then it is logged as a warning at every start.
"""

from __future__ import annotations

import logging

from .config import ServerConfig
from .ports import is_loopback

log = logging.getLogger("workflowstate.server")

ALLOW_FLAG = "--http-allow-unauthenticated-network"


def serves_open_dashboard(config: ServerConfig) -> bool:
    """Whether the dashboard is served beyond loopback with no authentication at all."""
    unauthenticated = config.auth_tokens is None and config.tls_client_ca is None
    return config.http_listen is not None and unauthenticated and not is_loopback(config.http_listen)


def open_dashboard_refusal(config: ServerConfig) -> str | None:
    """Why the start is refused, or None."""
    if not serves_open_dashboard(config) or config.http_allow_unauthenticated_network:
        return None
    return (
        f"--http-listen {config.http_listen} would serve the dashboard beyond this machine without authentication: "
        "anyone who reaches it could cancel and delete every run. Pass --auth-tokens FILE (or --tls-client-ca with TLS), "
        f"serve it on 127.0.0.1 (or --http-listen off), or pass {ALLOW_FLAG} to serve it open anyway"
    )


def warn_if_open(config: ServerConfig, url: str) -> None:
    """Say it loudly, at every start, when the flag let an open dashboard out."""
    if serves_open_dashboard(config):
        log.warning(
            "DASHBOARD WITHOUT AUTHENTICATION: anyone who can reach it may read, cancel and delete every run "
            f"({ALLOW_FLAG}); pass --auth-tokens FILE, or serve it on 127.0.0.1 only (README: Dashboard)",
            extra={"url": url},
        )
