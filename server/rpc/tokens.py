"""Bearer tokens: the roles, the token file (`--auth-tokens`), and making a new token.

The file holds no secret: each line is the SHA-256 (hex) of a token and the role it gets, so the
file can be read by whoever deploys the server without giving them a token. Blank lines and
`#` comments (whole lines, or after the role) are ignored:

    # ci deploys
    5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8 write  # ci

The standard library only: the command line reads the file before the server extras load.
"""

from __future__ import annotations

import enum
import hashlib
import secrets
from pathlib import Path


class Role(enum.Enum):
    """What a token may do. Each effect requires a role (server/rpc/auth.py keeps the one table,
    ROLE_FOR); a token may have it when its own role covers that one (COVERS)."""

    READ = "read"  # gets, lists, watching runs and events
    WORKER = "worker"  # workers' tasks (StreamStepTasks), and what read may
    WRITE = "write"  # runs, steps the engine runs, leases, schedules, and what read may
    ADMIN = "admin"  # everything, including what no other role may (cancels, erasing runs, settings)


# Not a ladder: a worker token cannot write state, a write token cannot take worker tasks (not
# through ClaimStep or the set-status calls either: auth.py, caller.py).
COVERS: dict[Role, frozenset[Role]] = {
    Role.READ: frozenset({Role.READ}),
    Role.WORKER: frozenset({Role.READ, Role.WORKER}),
    Role.WRITE: frozenset({Role.READ, Role.WRITE}),
    Role.ADMIN: frozenset(Role),
}

ROLE_NAMES = ", ".join(role.value for role in Role)


class TokenFileError(ValueError):
    """The token file cannot be used; the message says where and why (never a token)."""


def token_hash(token: str) -> bytes:
    """The SHA-256 of a token: what the file stores and what a presented token is looked up by."""
    return hashlib.sha256(token.encode("utf-8")).digest()


# Before the random part of every token made here. URL-safe base64 may start with '-', and a token
# that does is read as an option by a command line (`--token -abc`); behind a fixed letter it never
# is. The prefix is added, not drawn: the 32 random bytes after it keep all their 256 bits (redrawing
# tokens that start with '-' would make the first character less random instead). It also tells a
# leaked token apart from other secrets in logs and secret scanners.
TOKEN_PREFIX = "wfs_"


def new_token() -> str:
    """A fresh token: TOKEN_PREFIX, then 32 random bytes as URL-safe base64 (47 characters in all, fits
    an HTTP header)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_line(token: str, role: Role, comment: str = "") -> str:
    """The line of the token file that gives `token` the role `role`."""
    line = f"{token_hash(token).hex()} {role.value}"
    return f"{line}  # {comment}" if comment else line


def parse_token_file(text: str, source: str) -> dict[bytes, Role]:
    """{SHA-256 digest: role} of every line; TokenFileError naming `source` and the line otherwise."""
    roles: dict[bytes, Role] = {}
    first_line_of: dict[bytes, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"{source}, line {number}"
        fields = line.split()
        if len(fields) != 2:
            raise TokenFileError(f"{where}: expected '<sha256 of the token, 64 hex digits> <role>', got {len(fields)} fields")
        digest_hex, role_name = fields
        if len(digest_hex) != 64 or any(c not in "0123456789abcdefABCDEF" for c in digest_hex):
            raise TokenFileError(
                f"{where}: the first field must be the token's SHA-256 as 64 hex digits "
                f"(got {len(digest_hex)} characters); put the hash there, never the token itself"
            )
        try:
            role = Role(role_name.lower())
        except ValueError:
            # Echoed only when short: a long word there may be a token pasted in the wrong place.
            shown = repr(role_name) if len(role_name) <= 12 else f"of {len(role_name)} characters"
            raise TokenFileError(f"{where}: unknown role {shown} (roles: {ROLE_NAMES})") from None
        digest = bytes.fromhex(digest_hex)
        if digest in roles:
            raise TokenFileError(f"{where}: the same token hash is already on line {first_line_of[digest]}")
        roles[digest] = role
        first_line_of[digest] = number
    if not roles:
        raise TokenFileError(f"{source}: no token in the file: every call would be refused")
    return roles


def read_token_file(path: Path) -> dict[bytes, Role]:
    """The token file at `path`, parsed; TokenFileError when it cannot be read or used."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise TokenFileError(f"cannot read {path}: {err.strerror or err}") from None
    except UnicodeDecodeError:
        raise TokenFileError(f"cannot read {path}: not UTF-8 text") from None
    return parse_token_file(text, str(path))


__all__ = [
    "COVERS",
    "TOKEN_PREFIX",
    "Role",
    "TokenFileError",
    "new_token",
    "parse_token_file",
    "read_token_file",
    "token_hash",
    "token_line",
]
