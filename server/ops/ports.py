"""Whether a server already listens on an address, so a second one refuses instead of sharing it.

gRPC binds with SO_REUSEPORT by default, and the kernel then lets a second server on the same port
start silently and take half of the connections. `serve` turns that off unless asked to share
(--reuse-port; the processes of --workers share their port on purpose), and looks first, so the
refusal says why.
"""

from __future__ import annotations

import errno
import ipaddress
import socket


class CannotListen(Exception):
    """The server cannot bind its listen address."""


class AddressInUse(CannotListen):
    """Another server listens on the address and sharing it was not asked for."""

    def __init__(self, listen: str, flag: str = "--listen") -> None:
        share = ", or pass --reuse-port to share the port with it" if flag == "--listen" else " (or off)"
        super().__init__(f"another server already listens on {listen}; stop it, choose another {flag}{share}")


def refuse_if_in_use(listen: str, flag: str = "--listen") -> None:
    """Raise AddressInUse when something is bound to host:port (never for port 0)."""
    host, _, port = listen.rpartition(":")
    if int(port) == 0:
        return
    try:
        addresses = socket.getaddrinfo(host.strip("[]") or None, int(port), type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        return  # the bind that follows reports the unknown host
    for family, kind, proto, _, address in addresses:
        with socket.socket(family, kind, proto) as probe:
            # As gRPC binds: SO_REUSEADDR, so connections of an earlier server in TIME_WAIT do not count.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as err:
                if err.errno == errno.EADDRINUSE:
                    raise AddressInUse(listen, flag) from None
                # Any other refusal (an address not on this machine) is the bind's to report.


def is_loopback(listen: str) -> bool:
    """Whether a listen address (host:port, [v6]:port, unix:path) takes connections from this machine only."""
    if listen.startswith(("unix:", "unix-abstract:")):
        return True
    host = listen.rpartition(":")[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name other than localhost, or empty (every address)


__all__ = ["AddressInUse", "CannotListen", "is_loopback", "refuse_if_in_use"]
