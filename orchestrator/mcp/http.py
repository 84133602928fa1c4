"""MCP over Streamable HTTP at ``/mcp``, beside the gRPC server and in its event loop.

Before a request reaches the MCP session manager it passes a guard:

* ``Origin``: absent (a non-browser client), a loopback origin, or one listed in
  ``mcp_allowed_origins``; any other is refused with 403, so a web page the user
  visits cannot drive the endpoint through the browser (DNS rebinding);
* ``Authorization: Bearer KEY``: checked by the gRPC API's own authenticator (401
  otherwise), and each MCP request is authenticated again on its way to the service;
* a session belongs to the tenant that opened it: another tenant's key cannot use it.

The listener takes the gRPC listener's TLS and mutual-TLS files and the same refusal
of plaintext beyond loopback (:func:`orchestrator.api.server.check_listen`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import ssl
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit

import uvicorn
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Mount, Route
from starlette.types import Message, Receive, Scope, Send

from orchestrator.api.server import check_listen, is_loopback
from orchestrator.config import Settings
from orchestrator.console import console_app
from orchestrator.errors import InvalidRequest, LatmError, Unauthenticated
from orchestrator.mcp.tools import UNAUTHORIZED, ToolServer

log = logging.getLogger("latm.mcp")
PATH = "/mcp"
MAX_REQUEST_BYTES = 1024 * 1024  # one JSON-RPC message; a tool's arguments are capped at 1 MiB
MAX_SESSIONS = 10_000
START_TIMEOUT_S = 10.0


def origin_allowed(origin: str, allowed: Sequence[str]) -> bool:
    """Whether a browser page at ``origin`` may call the endpoint: loopback or listed."""
    if origin.rstrip("/") in {entry.rstrip("/") for entry in allowed}:
        return True
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and is_loopback(parts.hostname or "")


class Guard:
    """The ASGI endpoint at ``/mcp``: Origin, API key and session owner, then MCP."""

    def __init__(
        self, tools: ToolServer, manager: StreamableHTTPSessionManager, origins: Sequence[str]
    ) -> None:
        self.tools = tools
        self.manager = manager
        self.origins = tuple(origins)
        self.owners: dict[str, str] = {}  # MCP session id -> tenant

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope)
        origin = request.headers.get("origin")
        if origin is not None and not origin_allowed(origin, self.origins):
            await _refuse(send, 403, f"origin {origin!r} is not allowed to call this endpoint")
            return
        service = self.tools.service
        if service.draining:
            await _refuse(send, 503, "the server is shutting down; retry on another instance")
            return
        metadata = [("authorization", request.headers.get("authorization", ""))]
        try:
            who = await service.auth.authenticate(metadata if metadata[0][1] else [])
        except Unauthenticated as exc:
            await _refuse(send, 401, exc.public_message or str(exc))
            return
        except LatmError as exc:
            await _refuse(send, 503, exc.public_message or "authentication is unavailable")
            return
        session = request.headers.get("mcp-session-id")
        if session is not None and self.owners.get(session, who.tenant) != who.tenant:
            await _refuse(send, 404, "no such session")
            return
        await self.manager.handle_request(scope, receive, self._owned(send, who.tenant))

    def _owned(self, send: Send, tenant: str) -> Send:
        """``send``, noting the tenant of the session a response opens."""

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                for name, value in message.get("headers", ()):
                    if name.lower() == b"mcp-session-id":
                        if len(self.owners) >= MAX_SESSIONS:
                            self.owners.pop(next(iter(self.owners)))
                        self.owners[value.decode("latin-1")] = tenant
            await send(message)

        return sending


async def _refuse(send: Send, status: int, message: str) -> None:
    """A JSON-RPC error body with an HTTP status; 401 says how to authenticate."""
    body = json.dumps(
        {"jsonrpc": "2.0", "id": None, "error": {"code": UNAUTHORIZED, "message": message}}
    ).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    if status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="latm"'))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def http_app(tools: ToolServer, origins: Sequence[str] = ()) -> Starlette:
    """The ASGI app serving MCP at ``/mcp`` (its lifespan runs the session manager)."""
    manager = StreamableHTTPSessionManager(
        app=tools.server, max_request_body_size=MAX_REQUEST_BYTES, max_sessions=MAX_SESSIONS
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        async with manager.run():
            yield
        await tools.aclose()

    guard = Guard(tools, manager, origins)
    routes = [Route(PATH, endpoint=guard), Mount("/ui", app=console_app(tools.service))]
    return Starlette(routes=routes, lifespan=lifespan)


class _Uvicorn(uvicorn.Server):
    """uvicorn without its own signal handlers: ``latm serve`` owns SIGTERM and SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class HttpListener:
    """The HTTP listener of ``latm serve`` (``http_listen``), in the running loop."""

    def __init__(self, app: Starlette, settings: Settings, listen: str) -> None:
        check_listen(settings, listen)
        if listen.startswith("unix:"):
            raise InvalidRequest("http_listen takes HOST:PORT")
        self.settings = settings
        self.listen = listen
        self.port = 0
        config = uvicorn.Config(
            app,
            log_config=None,
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=max(1, int(settings.shutdown_grace_s)),
            **_tls(settings),
        )
        self._server = _Uvicorn(config)
        self._task: asyncio.Task[None] | None = None

    @property
    def address(self) -> str:
        return f"{self.listen.rpartition(':')[0]}:{self.port}"

    async def start(self) -> None:
        sock = _bind(self.listen)
        self.port = sock.getsockname()[1]
        self._task = asyncio.get_running_loop().create_task(self._server.serve([sock]))
        async with asyncio.timeout(START_TIMEOUT_S):
            while not self._server.started:
                if self._task.done():
                    self._task.result()
                    raise InvalidRequest(f"the HTTP listener on {self.listen} did not start")
                await asyncio.sleep(0.01)
        log.info(
            "serving MCP on %s%s", self.address, PATH, extra={"tls": _tls(self.settings) != {}}
        )

    async def stop(self) -> None:
        if self._task is None:
            return
        self._server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


def _bind(listen: str) -> socket.socket:
    host, _, port = listen.rpartition(":")
    family, kind, proto, _, address = socket.getaddrinfo(
        host.strip("[]"), int(port), type=socket.SOCK_STREAM
    )[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(address)
    sock.set_inheritable(True)
    return sock


def _tls(settings: Settings) -> dict[str, Any]:
    """uvicorn's TLS options from the gRPC listener's settings (mutual TLS: a client
    certificate signed by ``tls_client_ca_file`` is required)."""
    if not settings.tls_cert_file or not settings.tls_key_file:
        return {}
    options: dict[str, Any] = {
        "ssl_certfile": str(settings.tls_cert_file),
        "ssl_keyfile": str(settings.tls_key_file),
    }
    if settings.tls_client_ca_file:
        options["ssl_ca_certs"] = str(settings.tls_client_ca_file)
        options["ssl_cert_reqs"] = ssl.CERT_REQUIRED
    return options
