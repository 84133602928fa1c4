"""The sandbox gRPC server: ``SandboxService`` plus the standard health service.

Runs inside the sandbox (container or namespaced process) and listens on a Unix
socket or a TCP address. It never executes tool code itself: every call goes to
the template process, which forks a worker for it.
"""

from __future__ import annotations

import asyncio
import logging
import platform
import signal
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from latm.sandbox.v1 import sandbox_pb2, sandbox_pb2_grpc

from sandbox import __version__, jsonio, tunnel
from sandbox.contract import (
    Answer,
    ErrorType,
    ExecRequest,
    Reply,
    Request,
    Status,
    failure,
    proto_values,
)
from sandbox.decoding import RefuseUndecodable
from sandbox.errors import ValueConversionError
from sandbox.limits import DEFAULT_LIMITS, MAX_LIMITS, MIN_MEMORY_MB, Limits
from sandbox.policy import MAX_SOURCE_BYTES, default_allowlist, source_id
from sandbox.supervisor import EarlyTemplate, TemplateDied, TemplateSupervisor, listen_paths

log = logging.getLogger(__name__)

SERVICE_NAME = sandbox_pb2.DESCRIPTOR.services_by_name["SandboxService"].full_name
MAX_CALL_BYTES = 64 * 1024
MAX_ARGS_BYTES = 4 * 1024 * 1024
MAX_MESSAGE_BYTES = 8 * 1024 * 1024
MAX_SOURCES_BYTES = 64 * 1024 * 1024

STATUS = proto_values(sandbox_pb2.Status.Value, "STATUS_")


def limits_to_proto(limits: Limits) -> sandbox_pb2.Limits:
    return sandbox_pb2.Limits(**limits.to_dict())


class SourceCache:
    """Tool sources by id, bounded in bytes, so a restarted template can reload them."""

    def __init__(self, max_bytes: int = MAX_SOURCES_BYTES) -> None:
        self._sources: OrderedDict[str, str] = OrderedDict()
        self._bytes = 0
        self._max = max_bytes

    def put(self, tool_id: str, source: str) -> None:
        if tool_id in self._sources:
            self._sources.move_to_end(tool_id)
            return
        self._sources[tool_id] = source
        self._bytes += len(source)
        while self._bytes > self._max and len(self._sources) > 1:
            _, old = self._sources.popitem(last=False)
            self._bytes -= len(old)

    def get(self, tool_id: str) -> str | None:
        return self._sources.get(tool_id)


class SandboxServicer(sandbox_pb2_grpc.SandboxServiceServicer):
    def __init__(
        self, supervisor: TemplateSupervisor, allow_modules: list[str], max_concurrency: int = 16
    ) -> None:
        self.supervisor = supervisor
        self.allowlist = default_allowlist().with_modules(allow_modules)
        self.sources = SourceCache()
        self.slots = asyncio.Semaphore(max_concurrency)

    async def LoadTool(
        self, request: sandbox_pb2.LoadToolRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> sandbox_pb2.LoadToolResponse:
        if not request.source.strip():
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "source is empty")
        if request.entrypoint and not _public_name(request.entrypoint):
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"entrypoint {request.entrypoint!r} is not a function name",
            )
        reply = await self._load(request.source, context)
        tool_id = reply.get("tool_id", "")
        if reply["status"] == Status.OK and request.entrypoint:
            reply = await self._describe(tool_id, request.entrypoint, context)
        return sandbox_pb2.LoadToolResponse(
            tool_id=tool_id,
            status=STATUS.get(reply.get("status", Status.CRASHED), sandbox_pb2.STATUS_CRASHED),
            error=_error(reply.get("error")),
            input_schema_json=_text(reply.get("value_json", ""))
            if reply.get("status") == Status.OK
            else "",
        )

    async def _describe(
        self, tool_id: str, entrypoint: str, context: grpc.aio.ServicerContext[Any, Any]
    ) -> Reply:
        """Run the loaded module once in a worker and read ``entrypoint``'s parameters
        (see :mod:`sandbox.schema`): a reply whose value is their JSON Schema."""
        message: ExecRequest = {
            "op": "exec",
            "tool_id": tool_id,
            "call": "",
            "args_json": "",
            "entrypoint": entrypoint,
            "limits": self._limits(sandbox_pb2.Limits(), context).to_dict(),
            "describe": True,
        }
        async with self.slots:
            answer = await self._template(context, message)
            if "unknown_tool" in answer:
                answer = await self._reload_and_retry(tool_id, message, context)
        return _reply(answer)

    async def _load(self, source: str, context: grpc.aio.ServicerContext[Any, Any]) -> Reply:
        if len(source.encode("utf-8", "surrogatepass")) > MAX_SOURCE_BYTES:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, f"source is larger than {MAX_SOURCE_BYTES} bytes"
            )
        reply = _reply(await self._template(context, {"op": "load", "source": source}))
        if reply["status"] == Status.OK:
            self.sources.put(reply.get("tool_id", ""), source)
        return reply

    async def Execute(
        self, request: sandbox_pb2.ExecuteRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> sandbox_pb2.ExecuteResponse:
        await self._validate(request, context)
        tool_id = request.tool_id
        if request.WhichOneof("tool") == "source":
            tool_id = source_id(request.source)
        if request.WhichOneof("tool") == "source" and self.sources.get(tool_id) is None:
            # A source this server has not loaded yet: one round trip to the template to
            # compile and check it. A known one goes straight to exec (the template
            # answers unknown_tool if it lost it, and it is reloaded from here).
            loaded = await self._load(request.source, context)
            if loaded["status"] != Status.OK:
                return sandbox_pb2.ExecuteResponse(
                    status=STATUS[loaded["status"]],
                    error=_error(loaded.get("error")),
                    tool_id=loaded.get("tool_id", ""),
                )
            tool_id = loaded.get("tool_id", "")
        limits = self._limits(request.limits, context)
        message: ExecRequest = {
            "op": "exec",
            "tool_id": tool_id,
            "call": request.call,
            "args_json": request.args_json,
            "entrypoint": request.entrypoint,
            "limits": limits.to_dict(),
        }
        async with self.slots:
            answer = await self._template(context, message)
            if "unknown_tool" in answer:
                answer = await self._reload_and_retry(tool_id, message, context)
        return _execute_response(_reply(answer), tool_id)

    async def _reload_and_retry(
        self, tool_id: str, message: ExecRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> Answer:
        source = self.sources.get(tool_id)
        if source is None:
            await context.abort(
                grpc.StatusCode.NOT_FOUND, f"unknown tool id {tool_id[:16]}...; load the tool first"
            )
        assert source is not None
        await self._template(context, {"op": "load", "source": source})
        reply = await self._template(context, message)
        if "unknown_tool" in reply:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "the tool could not be reloaded")
        return reply

    async def _validate(
        self, request: sandbox_pb2.ExecuteRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> None:
        problem = None
        if len(request.call.encode("utf-8", "surrogatepass")) > MAX_CALL_BYTES:
            problem = f"call code is larger than {MAX_CALL_BYTES} bytes"
        elif not request.call.strip() and not request.entrypoint:
            problem = "give call code, or an entrypoint to call with the arguments"
        elif request.entrypoint and not _public_name(request.entrypoint):
            problem = f"entrypoint {request.entrypoint!r} is not a function name"
        elif 0 < request.limits.memory_mb < MIN_MEMORY_MB:
            problem = f"memory_mb must be 0 (the default) or at least {MIN_MEMORY_MB}"
        elif request.WhichOneof("tool") == "tool_id" and not _is_sha256(request.tool_id):
            problem = "tool_id must be the 64-character hex id returned by LoadTool"
        else:
            try:
                jsonio.decode_args(request.args_json, MAX_ARGS_BYTES)
            except ValueConversionError as exc:
                problem = str(exc)
        if problem:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, problem)

    def _limits(
        self, requested: sandbox_pb2.Limits, context: grpc.aio.ServicerContext[Any, Any]
    ) -> Limits:
        asked = {field.name: value for field, value in requested.ListFields()}
        remaining = context.time_remaining()
        if remaining is not None:
            # The caller's deadline bounds the call: the worker dies before it passes.
            cap = max(1, int(remaining * 1000) - 50)
            asked["timeout_ms"] = min(asked.get("timeout_ms") or DEFAULT_LIMITS.timeout_ms, cap)
        return DEFAULT_LIMITS.resolve(asked, MAX_LIMITS)

    async def _template(
        self, context: grpc.aio.ServicerContext[Any, Any], message: Request
    ) -> Answer:
        try:
            return await self.supervisor.request(message)
        except TemplateDied as exc:
            if message["op"] == "exec":
                crashed = failure(Status.CRASHED, ErrorType.SANDBOX_CRASHED, str(exc))
                return {"id": None, **crashed, "stdout": "", "stderr": ""}
            await context.abort(grpc.StatusCode.UNAVAILABLE, str(exc))
            raise  # unreachable: abort raises

    async def GetInfo(
        self, request: sandbox_pb2.GetInfoRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> sandbox_pb2.GetInfoResponse:
        return sandbox_pb2.GetInfoResponse(
            version=__version__,
            python_version=platform.python_version(),
            allowed_modules=self.allowlist.module_names,
            max_limits=limits_to_proto(MAX_LIMITS),
            default_limits=limits_to_proto(DEFAULT_LIMITS),
        )


def _listen(server: grpc.aio.Server, listen: str, tls: tuple[bytes, bytes, bytes] | None) -> int:
    if tls is None:
        return server.add_insecure_port(listen)
    key, cert, ca = tls
    credentials = grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=ca, require_client_auth=True
    )
    return server.add_secure_port(listen, credentials)


def _is_sha256(value: str) -> bool:
    return len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def _public_name(name: str) -> bool:
    """A function a call may name: an identifier, not one of the sandbox's own
    underscore names (its guard hooks live in the same namespace)."""
    return name.isidentifier() and not name.startswith("_")


def _text(value: Any) -> str:
    """Text a reply can carry. The template relays what the worker (untrusted) wrote,
    and policy messages quote the source's string constants: a lone surrogate in any
    of them would make protobuf refuse the whole reply."""
    text = value if isinstance(value, str) else str(value)
    if text.isascii():
        return text
    return text.encode("utf-8", "replace").decode("utf-8")


def _uint(value: Any, bits: int) -> int:
    """A count the template reported, within its protobuf field's range (else 0)."""
    number = value if isinstance(value, int) else 0
    return number if 0 <= number < 1 << bits else 0


def _reply(answer: Answer) -> Reply:
    """An answer that is not ``unknown_tool`` (a load's, or an exec's after a reload)."""
    if "unknown_tool" in answer:
        raise TemplateDied("the template lost a tool it had just loaded")
    return answer


def _error(error: Mapping[str, Any] | None) -> sandbox_pb2.Error | None:
    if not error:
        return None
    return sandbox_pb2.Error(
        type=_text(error.get("type", "")),
        message=_text(error.get("message", "")),
        line=_uint(error.get("line"), 32),
        origin=_text(error.get("origin", "")),
    )


def _execute_response(reply: Reply, tool_id: str) -> sandbox_pb2.ExecuteResponse:
    usage: Mapping[str, Any] = reply.get("usage") or {}
    return sandbox_pb2.ExecuteResponse(
        status=STATUS.get(reply.get("status", Status.CRASHED), sandbox_pb2.STATUS_CRASHED),
        value_json=_text(reply.get("value_json", "")),
        stdout=_text(reply.get("stdout", "")),
        stderr=_text(reply.get("stderr", "")),
        error=_error(reply.get("error")),
        usage=sandbox_pb2.Usage(
            wall_ms=usage.get("wall_ms", 0.0),
            cpu_ms=usage.get("cpu_ms", 0.0),
            max_rss_kb=_uint(usage.get("max_rss_kb"), 64),
        ),
        tool_id=tool_id,
    )


async def serve(  # noqa: PLR0917
    listen: str,
    allow_modules: list[str] | None = None,
    prefork: int = 2,
    max_concurrency: int = 16,
    grace_s: float = 5.0,
    dial: str | None = None,
    early: EarlyTemplate | None = None,
    scratch: list[str] | None = None,
    dial_token: bytes = b"",
    tls: tuple[bytes, bytes, bytes] | None = None,
) -> None:
    """Run the server until SIGTERM or SIGINT, then drain and stop.

    With ``dial`` (``unix:PATH`` of a socket the host listens on), the server is
    reached through a reverse tunnel instead (see :mod:`sandbox.tunnel`). With ``tls``
    (this server's key and certificate, and the CA of the only clients it accepts), it
    serves mutual TLS: a client without a certificate from that CA cannot call it.
    """
    allow_modules = allow_modules or []
    supervisor = TemplateSupervisor(
        allow_modules, prefork=prefork, early=early, keep=listen_paths(listen), scratch=scratch
    )
    # The server listens (NOT_SERVING) while the template warms up, so a client's
    # connection set-up overlaps the template's; health says SERVING once it is ready.
    template_ready = asyncio.ensure_future(supervisor.start())
    server = grpc.aio.server(
        interceptors=[RefuseUndecodable()],
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 0),
        ],
    )
    sandbox_pb2_grpc.add_SandboxServiceServicer_to_server(
        SandboxServicer(supervisor, allow_modules, max_concurrency), server
    )
    health_servicer = health.aio.HealthServicer()  # type: ignore[attr-defined]
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    if _listen(server, listen, tls) == 0 and not listen.startswith("unix"):
        raise OSError(f"cannot listen on {listen}")
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
    await server.start()
    log.info("sandbox server listening on %s", listen)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    if dial:
        tunnel.start_dialer(
            dial,
            listen,
            on_give_up=lambda: loop.call_soon_threadsafe(stop.set),
            token=dial_token,
        )
        log.info("sandbox server dialling the host at %s", dial)
    await template_ready
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await health_servicer.enter_graceful_shutdown()
    await server.stop(grace_s)
    await supervisor.close()
