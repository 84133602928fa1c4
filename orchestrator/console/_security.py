"""What every console response carries and every form post must pass.

A strict Content-Security-Policy: scripts, styles and connections only from the console
itself (no inline script or style, no ``eval``), no framing, no plugins; pages are not
cached, and the browser is told not to sniff types or send a referrer to other sites. A post whose
``Origin`` is not the console's own is refused (a second line beside the CSRF token).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    )
)
HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",  # no-referrer would make form posts send Origin: null
    "cross-origin-opener-policy": "same-origin",
}


class SecurityHeaders:
    """ASGI middleware adding :data:`HEADERS` (and ``no-store`` on all but static files)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = "/static/" in scope.get("path", "")

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    headers[name] = value
                if not static:
                    headers["cache-control"] = "no-store"
            await send(message)

        await self.app(scope, receive, sending)


def check_origin(request: Request) -> None:
    """Refuse (403) a post from a page of another origin; a post without ``Origin`` (an
    old browser, a script) must still carry the CSRF token."""
    origin = request.headers.get("origin")
    if origin is None:
        return
    parts = urlsplit(origin)
    if parts.scheme != request.url.scheme or parts.netloc != request.headers.get("host"):
        raise HTTPException(403, "this form was posted from another site")
