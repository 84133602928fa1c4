"""``latm serve``: the orchestrator, its sandbox pools and its registry behind one gRPC server.

The server listens on TCP (TLS or mutual TLS from certificate files) or a Unix socket.
Plaintext TCP is refused on anything but loopback unless ``allow_insecure`` says otherwise.
On SIGTERM or SIGINT it drains: it reports NOT_SERVING, refuses new calls with UNAVAILABLE
(a client or load balancer retries them on another replica), stops listening, gives
in-flight calls ``shutdown_grace_s`` to finish, and then removes its sandboxes.

Replicas: on PostgreSQL any number of servers share one registry, its quotas
(:mod:`orchestrator.api.shared_quotas`) and its change notices
(:mod:`orchestrator.registry.notices`); a SQLite registry is served by one process, and a
second ``latm serve`` on the same file is refused (:func:`hold_sqlite`).

A role's model that cannot be used yet (a local model not fetched) does not keep the server
from starting: tools still execute. Health reports each role's model under its own service
name (``latm.model.user``, ``latm.model.maker``) while the server as a whole is SERVING, and
the calls that need the model fail with FAILED_PRECONDITION until it is there.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fcntl
import ipaddress
import logging
import os
import signal
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import IO, Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from latm.orchestrator.v1 import orchestrator_pb2

from orchestrator.api.auth import Authenticator
from orchestrator.api.observability import register_backend, start_metrics
from orchestrator.api.quotas import MemoryQuotaGate, QuotaGate
from orchestrator.api.service import OrchestratorService, add_to_server
from orchestrator.config import Settings
from orchestrator.errors import InvalidRequest, PermissionDenied, PreconditionFailed
from orchestrator.latm.engine import Engine
from orchestrator.latm.user import UserConfig
from orchestrator.models import ModelAdapter
from orchestrator.models.deferred import deferred
from orchestrator.registry import ToolRegistry
from orchestrator.registry.notices import KEYS, TOOLS, NoticeListener
from orchestrator.registry.tenants import Quotas, TenantStore
from orchestrator.sandboxes import SandboxBackend
from orchestrator.telemetry import MODEL_AVAILABLE

log = logging.getLogger("latm.api")
SERVICE_NAME = orchestrator_pb2.DESCRIPTOR.services_by_name["OrchestratorService"].full_name
USAGE_FLUSH_S = 1.0
MODEL_HEALTH = "latm.model."  # + a role: the health service name of that role's model
MODEL_CHECK_S = 2.0  # how often a model missing at the start is looked for again
M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter
LARGE_BLOCK_BYTES = 256 * 1024


def return_large_blocks() -> bool:
    """Have glibc map every block of 256 KiB or more on its own, and so give it back to
    the system when it is freed.

    Requests and results may reach 8 MiB. glibc's default raises its threshold to the
    largest block freed so far, after which such buffers come from the heap and stay
    resident once freed: the server's RSS then depends on what the last large call left
    (an unkept trace: ±8% around 129 MB under the soak's mix; with the fixed threshold
    ±5% around 118 MB). Returns whether it was set (False off glibc).
    """
    try:
        libc = ctypes.CDLL(None)
        return bool(libc.mallopt(M_MMAP_THRESHOLD, LARGE_BLOCK_BYTES))
    except (OSError, AttributeError):
        return False


def default_quotas(settings: Settings) -> Quotas:
    """A new tenant's quotas: each ``LATM_QUOTA_<NAME>`` setting."""
    return Quotas(**{item.name: getattr(settings, f"quota_{item.name}") for item in fields(Quotas)})


def check_listen(settings: Settings, listen: str) -> None:
    """Refuse plaintext TCP beyond loopback unless TLS is set up or insecure is allowed.

    Raises:
        InvalidRequest: a malformed address, or half of a TLS key pair.
        PermissionDenied: plaintext on a non-loopback address without ``allow_insecure``.
    """
    if bool(settings.tls_cert_file) != bool(settings.tls_key_file):
        raise InvalidRequest("TLS needs both tls_cert_file and tls_key_file")
    if settings.tls_client_ca_file and not settings.tls_cert_file:
        raise InvalidRequest("mutual TLS (tls_client_ca_file) needs tls_cert_file/tls_key_file")
    if listen.startswith("unix:"):
        if not listen[len("unix:") :].strip():
            raise InvalidRequest("unix: needs a socket path, e.g. unix:/run/latm/latm.sock")
        return
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise InvalidRequest(f"listen address {listen!r} is not HOST:PORT or unix:PATH")
    if settings.tls_cert_file or settings.allow_insecure or is_loopback(host):
        return
    raise PermissionDenied(
        f"refusing plaintext on {listen}: give tls_cert_file and tls_key_file, listen on "
        "loopback or a Unix socket, or set allow_insecure=true"
    )


def is_loopback(host: str) -> bool:
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    if not settings.tls_cert_file or not settings.tls_key_file:
        return None
    pair = (settings.tls_key_file.read_bytes(), settings.tls_cert_file.read_bytes())
    if settings.tls_client_ca_file:
        return grpc.ssl_server_credentials(
            [pair],
            root_certificates=settings.tls_client_ca_file.read_bytes(),
            require_client_auth=True,
        )
    return grpc.ssl_server_credentials([pair])


@dataclass
class ApiServer:
    """A running API server and what it owns."""

    settings: Settings
    engine: Engine
    backend: SandboxBackend
    registry: ToolRegistry
    listen: str
    server: grpc.aio.Server = field(init=False)
    service: OrchestratorService = field(init=False)
    health: health.aio.HealthServicer = field(init=False)  # type: ignore[name-defined]
    port: int = field(init=False, default=0)
    _flusher: asyncio.Task[None] | None = field(init=False, default=None)
    _watcher: asyncio.Task[None] | None = field(init=False, default=None)
    http: Any = field(init=False, default=None)  # the MCP listener (orchestrator.mcp.http)
    notices: NoticeListener | None = field(init=False, default=None)

    async def start(self) -> None:
        check_listen(self.settings, self.listen)
        tenants = TenantStore(self.registry)
        authenticator = Authenticator(
            tenants, default_quotas(self.settings), self.settings.api_key_cache_s
        )
        cap = self.settings.max_message_bytes
        quotas = self._quota_gate()
        self.service = OrchestratorService(
            self.engine, tenants, authenticator, quotas, max_message_bytes=cap
        )
        await quotas.start()
        if self.registry.shared:
            await self._listen(authenticator)
        self.server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", cap),
                ("grpc.max_send_message_length", cap),
                ("grpc.so_reuseport", 0),
            ]
        )
        add_to_server(self.service, self.server)
        self.health = health.aio.HealthServicer()  # type: ignore[attr-defined]
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), self.server
        )
        credentials = server_credentials(self.settings)
        if self.listen.startswith("unix:"):
            Path(self.listen[len("unix:") :]).parent.mkdir(parents=True, exist_ok=True)
        if credentials is None:
            self.port = self.server.add_insecure_port(self.listen)
        else:
            self.port = self.server.add_secure_port(self.listen, credentials)
        register_backend(self.backend)
        if self.settings.http_listen:
            await self._start_http()
        await self.server.start()
        for name in ("", SERVICE_NAME):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        loop = asyncio.get_running_loop()
        self._flusher = loop.create_task(self._flush_usage())
        if not await self._report_models():
            self._watcher = loop.create_task(self._watch_models())
        log.info(
            "serving on %s",
            self.listen if self.listen.startswith("unix:") else self.address,
            extra={"tls": credentials is not None, "mtls": bool(self.settings.tls_client_ca_file)},
        )

    def _quota_gate(self) -> QuotaGate:
        """Quotas in the shared database when replicas may share it, else in memory."""
        if not self.registry.shared:
            return MemoryQuotaGate()
        from orchestrator.api.shared_quotas import SharedQuotaGate

        return SharedQuotaGate(self.registry, self.settings.quota_lease_s)

    async def _listen(self, authenticator: Authenticator) -> None:
        """Hear of other replicas' changes: forget a tenant's cards when its tools change,
        its keys when they are revoked or rotated or its quotas change."""

        def reset() -> None:
            self.engine.forget_all()
            authenticator.forget_all()

        handlers = {TOOLS: self.engine.forget, KEYS: authenticator.forget}
        self.notices = NoticeListener(self.registry.engine, handlers, reset)
        await self.notices.start()

    async def _start_http(self) -> None:
        """MCP over Streamable HTTP on ``http_listen``, over this server's service."""
        from orchestrator.mcp import require_mcp

        require_mcp()
        from orchestrator.mcp.http import HttpListener, http_app
        from orchestrator.mcp.tools import ToolServer

        tools = ToolServer(self.service, call_timeout_s=self.settings.mcp_call_timeout_s)
        app = http_app(tools, self.settings.mcp_allowed_origins)
        self.http = HttpListener(app, self.settings, self.settings.http_listen)
        await self.http.start()

    @property
    def address(self) -> str:
        """Where clients connect (the real port when ``listen`` asked for port 0)."""
        if self.listen.startswith("unix:"):
            return self.listen
        host = self.listen.rpartition(":")[0]
        return f"{host}:{self.port}"

    async def _flush_usage(self) -> None:
        while True:
            await asyncio.sleep(USAGE_FLUSH_S)
            await self.service.flush_usage()

    def _role_models(self) -> dict[str, ModelAdapter]:
        """The model of each role the engine has."""
        models = {"user": self.engine.user_model, "maker": self.engine.maker_model}
        if self.engine.stronger_model is not self.engine.maker_model:  # its own spec
            models["stronger"] = self.engine.stronger_model
        return {role: model for role, model in models.items() if model is not None}

    async def _report_models(self) -> bool:
        """Report whether each role's model can be used, in health (``latm.model.ROLE``:
        SERVING or NOT_SERVING) and in ``latm_model_available``; True when all can."""
        ready = True
        for role, model in self._role_models().items():
            pending = deferred(model)
            available = pending is None or pending.available
            status = (
                health_pb2.HealthCheckResponse.SERVING
                if available
                else health_pb2.HealthCheckResponse.NOT_SERVING
            )
            await self.health.set(MODEL_HEALTH + role, status)
            MODEL_AVAILABLE.labels(role, model.spec).set(int(available))
            ready = ready and available
        return ready

    async def _watch_models(self) -> None:
        """Look again for the models missing at the start until every one is there."""
        while True:
            await asyncio.sleep(MODEL_CHECK_S)
            if await self._report_models():
                return

    async def stop(self, grace_s: float | None = None) -> None:
        """Drain: NOT_SERVING, refuse new calls, let in-flight ones finish, clean up."""
        grace = self.settings.shutdown_grace_s if grace_s is None else grace_s
        self.service.draining = True
        await self.health.enter_graceful_shutdown()
        if self.http is not None:  # both listeners drain at once, within the grace
            await asyncio.gather(self.http.stop(), self.server.stop(grace))
        else:
            await self.server.stop(grace)
        for task in (self._flusher, self._watcher):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self.notices is not None:
            await self.notices.stop()
        await self.service.quotas.close()
        await self.service.flush_usage()
        await self.engine.aclose()
        await self.backend.close()
        self.registry.close()
        log.info("stopped")


def open_engine(settings: Settings) -> Engine:
    """The engine ``settings`` describe: its models (opened once they can be), sandbox
    backend (its isolation checked) and registry."""
    from orchestrator.cli._runtime import open_registry, role_models, stronger_model
    from orchestrator.sandboxes import create_backend

    user, maker = role_models(settings, settings.user_model, settings.maker_model, defer=True)
    backend = create_backend(settings.backend, settings)
    backend.check_isolation()
    return Engine(
        backend=backend,
        registry=open_registry(settings),
        user=user,
        maker=maker,
        stronger=stronger_model(settings, user, maker, defer=True),
        user_config=UserConfig.from_settings(settings),
    )


def hold_sqlite(settings: Settings) -> IO[str] | None:
    """For a SQLite registry file, hold an exclusive lock (``FILE.serve.lock``) while
    serving: SQLite serves one process, so a second ``latm serve`` on the same file is
    refused with the way to run replicas. The lock goes with the process, however it ends.
    None for PostgreSQL (or an in-memory SQLite), which needs no lock.

    Raises:
        PreconditionFailed: another process serves this SQLite file.
    """
    from sqlalchemy import make_url
    from sqlalchemy.exc import ArgumentError

    from orchestrator.registry import default_database_url

    given = settings.database_url.get_secret_value() if settings.database_url else None
    try:
        url = make_url(given or default_database_url())
    except ArgumentError:
        return None  # opening the registry says what is wrong with it
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    path = Path(f"{url.database}.serve.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = path.open("a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip() or "unknown"
        lock.close()
        raise PreconditionFailed(
            f"another latm serve (pid {holder}) is serving the SQLite registry {url.database}; "
            "SQLite serves one process. To run several replicas, put the registry on "
            "PostgreSQL (LATM_DATABASE_URL=postgresql+psycopg://...)"
        ) from None
    lock.truncate(0)
    lock.write(f"{os.getpid()}\n")
    lock.flush()
    return lock


async def serve(settings: Settings, listen: str | None = None) -> int:
    """Run the server until SIGTERM or SIGINT; returns the exit status."""
    listen = listen or settings.listen
    check_listen(settings, listen)
    if settings.http_listen:
        check_listen(settings, settings.http_listen)
    lock = hold_sqlite(settings)
    try:
        return await _serve(settings, listen)
    finally:
        if lock is not None:
            lock.close()


async def _serve(settings: Settings, listen: str) -> int:
    from orchestrator.api.observability import setup_tracing

    return_large_blocks()
    setup_tracing(settings)
    if settings.metrics_listen:
        start_metrics(settings.metrics_listen)
    engine = open_engine(settings)
    backend, registry = engine.backend, engine.registry
    server = ApiServer(settings, engine, backend, registry, listen)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await server.start()
    except BaseException:
        await engine.aclose()
        await backend.close()
        registry.close()
        raise
    print(f"latm: serving on {server.address}", flush=True)
    if server.http is not None:
        scheme = "https" if settings.tls_cert_file else "http"
        print(f"latm: serving MCP on {scheme}://{server.http.address}/mcp", flush=True)
    await stop.wait()
    log.info("draining", extra={"grace_s": settings.shutdown_grace_s})
    await server.stop()
    return 0
