"""A typed client for one sandbox server (``latm.sandbox.v1.SandboxService``)."""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from latm.sandbox.v1 import sandbox_pb2, sandbox_pb2_grpc

from orchestrator.errors import InvalidRequest, SandboxUnavailable, from_rpc_error
from orchestrator.sandboxes.values import (
    Described,
    ErrorInfo,
    ExecRequest,
    ExecResult,
    Status,
    Usage,
)
from sandbox.contract import ErrorType, proto_values

MAX_MESSAGE_BYTES = 8 * 1024 * 1024
STATUSES = {
    number: status for status, number in proto_values(sandbox_pb2.Status.Value, "STATUS_").items()
}
# How long past the call's own timeout the transport may take before giving up.
DEADLINE_SLACK_S = 5.0
# A call still running after WATCH_S is watched: every WATCH_S, the server's health
# service must answer within SILENT_S, or the server is taken as stopped (or hung) and
# the call is answered ``crashed`` at once rather than at its deadline.
WATCH_S = 2.0
SILENT_S = 3.0


class ServerSilent(Exception):
    """The sandbox server stopped answering while a call was in flight."""


class SandboxClient:
    """Talks to one sandbox server over a Unix socket or TCP.

    With ``credentials`` (a pod's mutual TLS, see :mod:`orchestrator.sandboxes.pod_tls`),
    the channel is TLS and the server's certificate must name ``server_name``.
    """

    def __init__(
        self,
        target: str,
        fast_reconnect: bool = False,
        credentials: grpc.ChannelCredentials | None = None,
        server_name: str = "",
    ) -> None:
        self.target = target
        options: list[tuple[str, Any]] = [
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ]
        if fast_reconnect:
            # A server that is just starting: retry the connection within milliseconds
            # rather than gRPC's default one-second back-off.
            options += [
                ("grpc.initial_reconnect_backoff_ms", 10),
                ("grpc.min_reconnect_backoff_ms", 10),
                ("grpc.max_reconnect_backoff_ms", 200),
            ]
        if credentials is None:
            self._channel = grpc.aio.insecure_channel(target, options=options)
        else:
            if server_name:
                options.append(("grpc.ssl_target_name_override", server_name))
            self._channel = grpc.aio.secure_channel(target, credentials, options=options)
        self._stub = sandbox_pb2_grpc.SandboxServiceStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)

    async def wait_ready(self, timeout_s: float, alive: Any = None) -> None:
        """Poll the health service until SERVING; ``alive()`` false aborts early."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if alive is not None and not alive():
                raise SandboxUnavailable("the sandbox server exited during start-up")
            try:
                reply = await self._health.Check(health_pb2.HealthCheckRequest(), timeout=1.0)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            await asyncio.sleep(0.005)
        raise SandboxUnavailable(
            f"the sandbox server at {self.target} did not become ready within {timeout_s:.0f} s"
        )

    def connection_lost(self) -> bool:
        """True when the channel has seen its server go away (no call is made)."""
        state = self._channel.get_state(try_to_connect=False)
        return state in (
            grpc.ChannelConnectivity.TRANSIENT_FAILURE,
            grpc.ChannelConnectivity.SHUTDOWN,
        )

    async def answers(self, timeout_s: float) -> bool:
        """False only when the server says nothing at all within ``timeout_s`` (stopped,
        or hung). One that is draining answers NOT_SERVING, or refuses new calls at
        once: it is still answering, and its calls in flight run to their end."""
        try:
            await self._health.Check(health_pb2.HealthCheckRequest(), timeout=timeout_s)
        except grpc.aio.AioRpcError as exc:
            return exc.code() is not grpc.StatusCode.DEADLINE_EXCEEDED
        return True

    async def healthy(self, timeout_s: float = 2.0) -> bool:
        try:
            reply = await self._health.Check(health_pb2.HealthCheckRequest(), timeout=timeout_s)
        except grpc.RpcError:
            return False
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    async def info(self) -> sandbox_pb2.GetInfoResponse:
        try:
            return await self._stub.GetInfo(sandbox_pb2.GetInfoRequest(), timeout=5.0)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None

    async def execute(self, request: ExecRequest, isolation: str) -> ExecResult:
        message = _to_proto(request)
        timeout = (request.timeout_ms or 60_000) / 1000 + DEADLINE_SLACK_S
        try:
            reply = await self._watched(self._stub.Execute(message, timeout=timeout))
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                # The server (or its container) went away mid-call.
                return _lost(isolation, exc.details() or exc.code().name)
            raise from_rpc_error(exc) from None
        except ServerSilent:
            return _lost(isolation, "the sandbox server stopped answering")
        status, error, value = _outcome(reply, reply.value_json)
        return ExecResult(
            status=status,
            value=value,
            stdout=reply.stdout,
            stderr=reply.stderr,
            error=error,
            isolation=isolation,
            tool_id=reply.tool_id,
            usage=Usage(
                wall_ms=reply.usage.wall_ms,
                cpu_ms=reply.usage.cpu_ms,
                max_rss_kb=reply.usage.max_rss_kb,
            ),
        )

    async def describe(self, source: str, entrypoint: str, timeout_s: float) -> Described:
        """Load ``source`` and read ``entrypoint``'s parameters, inside the sandbox."""
        message = sandbox_pb2.LoadToolRequest(
            source=_unicode("the tool source", source),
            entrypoint=_unicode("the entrypoint", entrypoint),
        )
        try:
            reply = await self._stub.LoadTool(message, timeout=timeout_s + DEADLINE_SLACK_S)
        except grpc.aio.AioRpcError as exc:
            if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                lost = _lost("", exc.details() or exc.code().name)
                return Described(status=lost.status, error=lost.error)
            raise from_rpc_error(exc) from None
        status, error, schema = _outcome(reply, reply.input_schema_json)
        return Described(status=status, input_schema=schema, error=error)

    async def _watched(self, call: Any) -> sandbox_pb2.ExecuteResponse:
        """The reply to ``call``; raises ServerSilent if the server stops answering."""
        task: asyncio.Future[sandbox_pb2.ExecuteResponse] = asyncio.ensure_future(call)
        try:
            while True:
                done, _ = await asyncio.wait((task,), timeout=WATCH_S)
                if done:
                    return task.result()
                if not await self.answers(SILENT_S):
                    raise ServerSilent(self.target)
        finally:
            if not task.done():  # silent, or the caller cancelled: the call ends here too
                call.cancel()
                task.cancel()

    async def close(self) -> None:
        await self._channel.close(None)


def _outcome(
    reply: sandbox_pb2.ExecuteResponse | sandbox_pb2.LoadToolResponse, value_json: str
) -> tuple[Status, ErrorInfo | None, Any]:
    """A reply's status, error and (when ok) its JSON value, decoded."""
    status = STATUSES.get(reply.status, Status.CRASHED)
    error = _error_info(reply.error) if reply.HasField("error") else None
    if status is not Status.OK:
        return status, error, None
    try:
        value = json.loads(value_json)
        if _SURROGATE_ESCAPE.search(value_json):
            # An honest worker never sends a lone surrogate; a compromised one could,
            # and such a str cannot be printed or sent on as UTF-8.
            json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (ValueError, RecursionError):
        invalid = ErrorInfo(
            type=ErrorType.VALUE_CONVERSION, message="the sandbox returned invalid JSON"
        )
        return Status.ERROR, invalid, None
    return status, error, value


def _error_info(error: sandbox_pb2.Error) -> ErrorInfo:
    return ErrorInfo(type=error.type, message=error.message, line=error.line, origin=error.origin)


def _lost(isolation: str, message: str) -> ExecResult:
    return ExecResult(
        status=Status.CRASHED,
        isolation=isolation,
        error=ErrorInfo(type=ErrorType.SANDBOX_UNAVAILABLE, message=message),
    )


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _to_proto(request: ExecRequest) -> sandbox_pb2.ExecuteRequest:
    try:
        args_json = json.dumps(request.args, allow_nan=False) if request.args else ""
    except (TypeError, ValueError) as exc:
        raise InvalidRequest(f"arguments are not JSON: {exc}") from None
    message = sandbox_pb2.ExecuteRequest(
        call=_unicode("call code", request.call),
        args_json=args_json,
        entrypoint=_unicode("the entrypoint", request.entrypoint),
        limits=sandbox_pb2.Limits(
            timeout_ms=request.timeout_ms, cpu_ms=request.cpu_ms, memory_mb=request.memory_mb
        ),
    )
    if request.source is not None:
        message.source = _unicode("the tool source", request.source)
    elif request.tool_id is not None:
        message.tool_id = _unicode("the tool id", request.tool_id)
    return message


def _unicode(what: str, text: str) -> str:
    """``text``, if protobuf can carry it: a Python str may hold lone surrogates (a
    model's JSON can spell one, ``"\\ud800"``), which are not Unicode text."""
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidRequest(
                f"{what} holds a lone surrogate ({text[exc.start]!r} at character "
                f"{exc.start}), which is not Unicode text"
            ) from None
    return text
