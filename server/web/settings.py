"""What the dashboard needs to know about the server it belongs to; ops fills it from ServerConfig."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class WebSettings:
    """How to serve the dashboard and how to reach the gRPC API it is a client of."""

    # The gRPC address the dashboard's client calls: the server's own (see ops.app for which).
    grpc_target: str
    # Whether the server checks bearer tokens: then every page needs a login first.
    login_required: bool
    # PEM files: with both, the dashboard serves HTTPS with the gRPC server's certificate, and its
    # session cookie is Secure.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # With TLS: the browser must present a client certificate these CAs sign, as gRPC callers must.
    tls_client_ca: Path | None = None
    # The host of --http-listen: a name the dashboard answers (with localhost, 127.0.0.1 and [::1]) on its port.
    listen_host: str = "127.0.0.1"
    # More names it answers, from --http-allowed-hosts: `name` (on any port) or `name:port`.
    allowed_hosts: tuple[str, ...] = ()
    # Most logged-in sessions kept at once and per token (a token's least recently used is ended
    # first, never another token's), and how long an unused one lives: bounded memory whatever the
    # number of logins.
    max_sessions: int = 1000
    max_sessions_per_token: int = 50
    session_idle_seconds: float = 8 * 3600.0
    # Failed logins per client address: this many at once, then one more every login_refill_seconds.
    login_burst: int = 5
    login_refill_seconds: float = 12.0
    # Sent as the token of the dashboard's calls when no user token is (no --auth-tokens): the secret
    # the server's internal socket asks for under mutual TLS (see ops.app); None sends none.
    internal_token: str | None = None
    # Where the gRPC API listens, named in the log line about a gRPC client that called the dashboard port.
    api_address: str = "the --listen address"

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None and self.tls_key is not None
