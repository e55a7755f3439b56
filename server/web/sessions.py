"""Logins and CSRF tokens.

The cookie holds a random session id, never the token: the token stays in this process, so a
cookie that leaks (a shared screenshot of devtools, a proxy log) stops working at logout or after
it is idle for a while, and logout really ends it. The price: sessions live in the memory of the
one process serving HTTP, and a restart logs everyone out.

Every browser gets a session id, logged in or not; the CSRF token of a form is an HMAC of that id
under a secret of this process. A page of another site can make the browser send the cookie
(were it not SameSite=Strict) but can read neither the cookie (HttpOnly) nor our pages, so it
cannot compute the token. Anonymous ids are not stored: only logins take memory, and those are
bounded.

Every id is minted here: it carries an HMAC tag under the process's secret, and a cookie without a
valid one (an id a client chose, or planted in a browser through a sibling host or port) is
ignored and replaced, so nobody can choose the id whose CSRF token a form needs. Login mints a new
one again, so an id known before the login is worth nothing after it.

Sessions are bounded per token as well as in all: logging in again and again with one token ends
that token's least recently used session, never another token's; when every slot is taken by
live sessions of different tokens, a new login is refused rather than ending someone's.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field

from workflowstate.client import AsyncWorkflowStateClient

COOKIE_NAME = "workflowstate_session"
# Of the id's random part, and of its tag (hex of an HMAC-SHA256, shortened: 128 bits is plenty).
_RANDOM_BYTES = 32
_TAG_CHARACTERS = 32


class SessionsFull(Exception):
    """Every session slot holds a live login of another token."""


@dataclass
class Login:
    """A logged-in browser: its client carries the token it logged in with."""

    client: AsyncWorkflowStateClient
    # Which token it logged in with: an HMAC of the token under the process's secret, never the token.
    token_key: str
    last_seen: float = field(default_factory=time.monotonic)


class Sessions:
    """The logins of this process, by session id, least recently used first."""

    def __init__(self, *, max_sessions: int, max_per_token: int, idle_seconds: float) -> None:
        self._logins: OrderedDict[str, Login] = OrderedDict()
        self._max = max_sessions
        self._max_per_token = max_per_token
        self._idle = idle_seconds
        self._secret = secrets.token_bytes(32)

    def _mac(self, purpose: str, text: str) -> str:
        return hmac.new(self._secret, f"{purpose}:{text}".encode(), hashlib.sha256).hexdigest()

    def mint(self) -> str:
        """A new session id: random, with this process's tag."""
        random_part = secrets.token_urlsafe(_RANDOM_BYTES)
        return f"{random_part}.{self._mac('id', random_part)[:_TAG_CHARACTERS]}"

    def minted(self, session_id: str | None) -> bool:
        """Whether an id (from a cookie) is one this process minted."""
        if not session_id or len(session_id) > 128:
            return False
        random_part, _, tag = session_id.partition(".")
        return hmac.compare_digest(self._mac("id", random_part)[:_TAG_CHARACTERS], tag)

    def csrf_token(self, session_id: str) -> str:
        return self._mac("csrf", session_id)

    def csrf_ok(self, session_id: str | None, token: str | None) -> bool:
        if not session_id or not token:
            return False
        return hmac.compare_digest(self.csrf_token(session_id), token)

    def login(self, session_id: str, client: AsyncWorkflowStateClient, token: str) -> None:
        """Keep a login. SessionsFull when every slot holds a live login of another token."""
        token_key = self._mac("token", token)
        own = [known for known, login in self._logins.items() if login.token_key == token_key]
        for ended in own[: max(len(own) - self._max_per_token + 1, 0)]:
            self.logout(ended)  # this token's least recently used first
        if len(self._logins) >= self._max:
            self._end_idle()
        if len(self._logins) >= self._max:
            raise SessionsFull(f"the dashboard holds its most logged-in sessions ({self._max}), all in use")
        self._logins[session_id] = Login(client, token_key)

    def _end_idle(self) -> None:
        """End the sessions unused for too long (least recently used first, so they lead)."""
        now = time.monotonic()
        for session_id, login in list(self._logins.items()):
            if now - login.last_seen <= self._idle:
                break
            self.logout(session_id)

    def find(self, session_id: str | None) -> Login | None:
        """The login of a session id, if it is live; touching it keeps it live."""
        if not session_id:
            return None
        login = self._logins.get(session_id)
        if login is None:
            return None
        now = time.monotonic()
        if now - login.last_seen > self._idle:
            self.logout(session_id)
            return None
        login.last_seen = now
        self._logins.move_to_end(session_id)
        return login

    def logout(self, session_id: str | None) -> None:
        login = self._logins.pop(session_id, None) if session_id else None
        if login is not None:
            _close_later(login.client)

    async def close(self) -> None:
        logins, self._logins = list(self._logins.values()), OrderedDict()
        for login in logins:
            await login.client.close()


_closing: set[asyncio.Task[None]] = set()


def _close_later(client: AsyncWorkflowStateClient) -> None:
    """Close a client's channel without making the request that ended it wait for it."""
    task = asyncio.get_running_loop().create_task(client.close())
    _closing.add(task)
    task.add_done_callback(_closing.discard)
