"""Console sign-in sessions, kept on the server: the browser holds only a random session id.

The tenant's API key stays in this process's memory for the session's life; it never goes
back to the browser, into a URL or into browser storage. The cookie is ``HttpOnly``,
``Secure`` and ``SameSite=Strict`` and scoped to ``/ui``. Each session has its own CSRF token,
which every state-changing request must carry (a form field or the ``X-CSRF-Token`` header).
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.responses import Response

COOKIE = "latm_console"
# Before sign-in, the sign-in form's own CSRF token (double-submit: cookie and field).
LOGIN_COOKIE = "latm_console_login"
PATH = "/ui"
IDLE_S = 60 * 60  # a session unused for an hour is gone
MAX_AGE_S = 12 * 60 * 60
MAX_SESSIONS = 10_000


@dataclass
class Session:
    """One signed-in browser: whose key, its CSRF token, and when it lapses."""

    key: str = field(repr=False)
    tenant: str
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    started: float = 0.0
    seen: float = 0.0
    jobs: dict[str, Any] = field(default_factory=dict, repr=False)  # id -> MakeToolRequest

    def expired(self, now: float) -> bool:
        return now - self.seen > IDLE_S or now - self.started > MAX_AGE_S

    def csrf_ok(self, token: str | None) -> bool:
        return token is not None and hmac.compare_digest(token.encode(), self.csrf.encode())


class Sessions:
    """The signed-in sessions of this server, by id (bounded; the oldest go first)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._sessions: dict[str, Session] = {}
        self._clock = clock

    def open(self, key: str, tenant: str) -> tuple[str, Session]:
        self._sweep()
        while len(self._sessions) >= MAX_SESSIONS:
            self._sessions.pop(next(iter(self._sessions)))
        sid = secrets.token_urlsafe(32)
        now = self._clock()
        session = self._sessions[sid] = Session(key=key, tenant=tenant, started=now, seen=now)
        return sid, session

    def get(self, sid: str | None) -> Session | None:
        session = self._sessions.get(sid or "")
        now = self._clock()
        if session is None or session.expired(now):
            self._sessions.pop(sid or "", None)
            return None
        session.seen = now
        return session

    def close(self, sid: str | None) -> None:
        self._sessions.pop(sid or "", None)

    def _sweep(self) -> None:
        now = self._clock()
        for sid in [sid for sid, s in self._sessions.items() if s.expired(now)]:
            del self._sessions[sid]


def set_cookie(response: Response, name: str, value: str, max_age: int = MAX_AGE_S) -> None:
    response.set_cookie(
        name, value, max_age=max_age, path=PATH, secure=True, httponly=True, samesite="strict"
    )


def clear_cookie(response: Response, name: str) -> None:
    response.delete_cookie(name, path=PATH, secure=True, httponly=True, samesite="strict")
