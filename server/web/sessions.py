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


def new_session_id() -> str:
    return secrets.token_urlsafe(32)


@dataclass
class Login:
    """A logged-in browser: its client carries the token it logged in with."""

    client: AsyncWorkflowStateClient
    last_seen: float = field(default_factory=time.monotonic)


class Sessions:
    """The logins of this process, by session id, least recently used first."""

    def __init__(self, *, max_sessions: int, idle_seconds: float) -> None:
        self._logins: OrderedDict[str, Login] = OrderedDict()
        self._max = max_sessions
        self._idle = idle_seconds
        self._secret = secrets.token_bytes(32)

    def csrf_token(self, session_id: str) -> str:
        return hmac.new(self._secret, session_id.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, session_id: str | None, token: str | None) -> bool:
        if not session_id or not token:
            return False
        return hmac.compare_digest(self.csrf_token(session_id), token)

    def login(self, session_id: str, client: AsyncWorkflowStateClient) -> None:
        self._logins[session_id] = Login(client)
        while len(self._logins) > self._max:
            _, oldest = self._logins.popitem(last=False)
            _close_later(oldest.client)

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
