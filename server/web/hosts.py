"""Which hosts the dashboard answers, and which origins may change something.

DNS rebinding: a page of the attacker's name loads, then the name is made to resolve to 127.0.0.1,
and the page's scripts (same-origin with the page's name, not with us) reach the dashboard. The
browser still sends the attacker's name in Host, so every request whose Host is not a name the
dashboard serves is refused, reads too (the page could read what they show). A change (any method
but GET/HEAD/OPTIONS) must also come from a page of a name the dashboard serves: its Origin (or,
without one, its Referer) must be one; `Origin: null` (a sandboxed frame, a data: page) never is.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

# Names that reach this machine only, served on the dashboard's own port.
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
_DEFAULT_PORT = {"http": 80, "https": 443}
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class BadHostName(ValueError):
    """A name for --http-allowed-hosts that is not host or host:port."""


def split_host(text: str, default_port: int | None) -> tuple[str, int | None] | None:
    """(lower-case name without brackets, port) of `name`, `name:port`, `[v6]:port`; None when malformed."""
    if not text or any(character in text for character in "/?#@\\ \t") or not text.isascii():
        return None
    try:
        parts = urlsplit(f"//{text}")
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    return parts.hostname.rstrip("."), port if port is not None else default_port


def parse_allowed_host(text: str) -> tuple[str, int | None]:
    """A name the operator serves the dashboard under: `name` (any port) or `name:port`."""
    found = split_host(text.strip(), None)
    if found is None:
        raise BadHostName(f"must be a host name or address, optionally with :port (such as dash.example.com or 10.0.0.5:8080), not {text!r}")
    return found


@dataclass(frozen=True)
class AllowedHosts:
    """The (name, port) pairs the dashboard answers; a port of None allows the name on any port."""

    pairs: frozenset[tuple[str, int | None]]
    scheme: str

    @classmethod
    def of(cls, *, listen_host: str, port: int, listed: tuple[str, ...], tls: bool) -> AllowedHosts:
        pairs: set[tuple[str, int | None]] = {(name, port) for name in LOOPBACK_NAMES}
        # Also a wildcard (0.0.0.0, ::): the start prints the URL with it, and no attacker's page has it as its name.
        own = listen_host.strip("[]").lower()
        if own:
            pairs.add((own, port))
        pairs.update(parse_allowed_host(name) for name in listed)
        return cls(frozenset(pairs), "https" if tls else "http")

    def allows(self, name: str, port: int | None) -> bool:
        return (name, port) in self.pairs or (name, None) in self.pairs

    def allows_host_header(self, host: str | None) -> bool:
        found = split_host(host or "", _DEFAULT_PORT[self.scheme])
        return found is not None and self.allows(*found)

    def allows_origin(self, origin: str) -> bool:
        """Whether a page of `origin` (scheme://host[:port], as Origin says it) is the dashboard's."""
        try:
            parts = urlsplit(origin)
        except ValueError:
            return False
        if parts.scheme not in _DEFAULT_PORT or parts.path or parts.query or parts.fragment:
            return False
        found = split_host(parts.netloc, _DEFAULT_PORT[parts.scheme])
        return found is not None and self.allows(*found)

    def described(self) -> str:
        """The served names, as a person types them into the address bar."""
        shown = []
        for name, port in sorted(self.pairs, key=lambda pair: (pair[0], pair[1] or 0)):
            host = f"[{name}]" if ":" in name else name
            shown.append(host if port is None else f"{host}:{port}")
        return ", ".join(shown)


def origin_refusal(allowed: AllowedHosts, origin: str | None, referer: str | None) -> str | None:
    """Why a change must be refused for where it came from; None when it came from the dashboard."""
    if origin is not None:
        if origin.strip() == "null":
            return "Refused: this form was sent from a page without an origin (Origin: null: a sandboxed frame or a local file)."
        if allowed.allows_origin(origin.strip()):
            return None
        return f"Refused: this form was sent from another site (origin {origin[:200]!r}), not from a page of this dashboard."
    if referer:
        try:
            parts = urlsplit(referer)
        except ValueError:
            parts = None
        if parts is not None and allowed.allows_origin(f"{parts.scheme}://{parts.netloc}"):
            return None
        return "Refused: this form was sent from another site (by its Referer), not from a page of this dashboard."
    return "Refused: the request names no origin (no Origin or Referer header), so it cannot be told from one another site sent."
