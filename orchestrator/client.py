"""A typed Python client of the orchestrator's gRPC API.

``Client`` (blocking) and ``AsyncClient`` (asyncio) wrap the generated stubs: they send the
tenant's API key as ``authorization: Bearer`` metadata, decode JSON values, and raise the
orchestrator's typed errors (``orchestrator.errors``) instead of ``grpc.RpcError``::

    with Client("localhost:50051", api_key, tls=TlsFiles(ca="ca.pem")) as client:
        result = client.execute_tool("add", {"a": 2, "b": 3})
        assert result.value == 5
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import grpc
from google.protobuf import timestamp_pb2
from latm.orchestrator.v1 import orchestrator_pb2 as pb
from latm.orchestrator.v1 import orchestrator_pb2_grpc as pb_grpc

from orchestrator.errors import from_rpc_error
from sandbox.contract import Status, proto_values

_STATUSES = {
    number: status for status, number in proto_values(pb.ExecStatus.Value, "EXEC_STATUS_").items()
}
GRANULARITY = {"hour": pb.GRANULARITY_HOUR, "day": pb.GRANULARITY_DAY}


@dataclass(frozen=True)
class TlsFiles:
    """PEM files for TLS: the CA that signed the server's certificate, and for mutual TLS
    the client's own certificate and key."""

    ca: Path | str | None = None
    cert: Path | str | None = None
    key: Path | str | None = None
    server_name: str | None = None  # override the name checked in the server certificate

    def credentials(self) -> grpc.ChannelCredentials:
        def read(path: Path | str | None) -> bytes | None:
            return Path(path).read_bytes() if path else None

        return grpc.ssl_channel_credentials(read(self.ca), read(self.key), read(self.cert))


@dataclass(frozen=True)
class ToolResult:
    """The sandbox's answer to one ExecuteTool call; ``value`` is decoded from JSON."""

    status: str  # the `latm exec` contract's status: ok, error, timeout, ...
    value: Any
    stdout: str
    error: dict[str, Any] | None
    isolation: str
    tool: str
    version: int
    usage: dict[str, float]

    @property
    def ok(self) -> bool:
        return self.status == Status.OK


@dataclass(frozen=True)
class Answer:
    """The answer to one Solve call and how it was reached."""

    answer: str | None
    route: str
    tool: str | None
    version: int | None
    call: str | None
    error: str | None
    request_id: str
    cost_usd: float
    wall_ms: float
    usage: dict[str, dict[str, float]] = field(default_factory=dict)
    # The share of the tool calls that ran which gave this answer (None: none ran).
    confidence: float | None = None
    # How sure the dispatcher was of the route, and what decided it (see SolveResponse).
    route_confidence: float | None = None
    routed_by: str | None = None


def _options(max_message_bytes: int) -> list[tuple[str, Any]]:
    return [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
    ]


def _tool_result(response: pb.ExecuteToolResponse) -> ToolResult:
    error = None
    if response.HasField("error"):
        error = {
            "type": response.error.type,
            "message": response.error.message,
            "line": response.error.line,
            "origin": response.error.origin,
        }
    return ToolResult(
        status=_STATUSES.get(response.status, "unspecified"),
        value=json.loads(response.value_json) if response.value_json else None,
        stdout=response.stdout,
        error=error,
        isolation=response.isolation,
        tool=response.tool,
        version=response.tool_version,
        usage={
            "wall_ms": response.usage.wall_ms,
            "cpu_ms": response.usage.cpu_ms,
            "max_rss_kb": response.usage.max_rss_kb,
        },
    )


def _answer(response: pb.SolveResponse) -> Answer:
    return Answer(
        answer=response.answer or None,
        route=response.route,
        tool=response.tool or None,
        version=response.tool_version or None,
        call=response.call or None,
        error=response.error or None,
        request_id=response.request_id,
        cost_usd=response.cost_usd,
        wall_ms=response.wall_ms,
        usage={
            item.role: {
                "prompt_tokens": item.usage.prompt_tokens,
                "completion_tokens": item.usage.completion_tokens,
                "cost_usd": item.usage.cost_usd,
            }
            for item in response.usage
        },
        confidence=response.confidence if response.HasField("confidence") else None,
        route_confidence=(
            response.route_confidence if response.HasField("route_confidence") else None
        ),
        routed_by=response.routed_by or None,
    )


def _execute_request(
    tool: str, arguments: dict[str, Any] | None, version: int, timeout_ms: int, memory_mb: int
) -> pb.ExecuteToolRequest:
    return pb.ExecuteToolRequest(
        tool=tool,
        version=version,
        arguments_json=json.dumps(arguments or {}),
        limits=pb.SandboxLimits(timeout_ms=timeout_ms, memory_mb=memory_mb),
    )


def _make_request(task: str, examples: Sequence[tuple[str, str]], split: str) -> pb.MakeToolRequest:
    return pb.MakeToolRequest(
        task=task,
        examples=[pb.Example(question=q, answer=a) for q, a in examples],
        split=split,
    )


def _usage_request(
    start: datetime | None, end: datetime | None, granularity: str
) -> pb.GetUsageRequest:
    request = pb.GetUsageRequest(granularity=GRANULARITY[granularity])
    for name, moment in (("start", start), ("end", end)):
        if moment is not None:
            stamp = timestamp_pb2.Timestamp()
            stamp.FromDatetime(moment)
            getattr(request, name).CopyFrom(stamp)
    return request


class Client:
    """Blocking client. ``target`` is ``HOST:PORT`` or ``unix:PATH``; without ``tls`` the
    channel is plaintext (loopback or a Unix socket)."""

    def __init__(
        self,
        target: str,
        api_key: str,
        *,
        tls: TlsFiles | None = None,
        timeout_s: float | None = 60.0,
        max_message_bytes: int = 4 * 1024 * 1024,
    ) -> None:
        options = _options(max_message_bytes)
        if tls is not None and tls.server_name:
            options.append(("grpc.ssl_target_name_override", tls.server_name))
        self.channel = (
            grpc.secure_channel(target, tls.credentials(), options)
            if tls is not None
            else grpc.insecure_channel(target, options)
        )
        self.stub = pb_grpc.OrchestratorServiceStub(self.channel)
        self.metadata = (("authorization", f"Bearer {api_key}"),)
        self.timeout_s = timeout_s

    def _call(self, method: Any, request: Any, timeout_s: float | None) -> Any:
        try:
            return method(request, timeout=timeout_s or self.timeout_s, metadata=self.metadata)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None

    def solve(self, question: str, tool: str = "", *, timeout_s: float | None = None) -> Answer:
        request = pb.SolveRequest(question=question, tool=tool)
        return _answer(self._call(self.stub.Solve, request, timeout_s))

    def execute_tool(
        self,
        tool: str,
        arguments: dict[str, Any] | None = None,
        *,
        version: int = 0,
        timeout_ms: int = 0,
        memory_mb: int = 0,
        timeout_s: float | None = None,
    ) -> ToolResult:
        request = _execute_request(tool, arguments, version, timeout_ms, memory_mb)
        return _tool_result(self._call(self.stub.ExecuteTool, request, timeout_s))

    def make_tool(
        self,
        task: str,
        examples: Sequence[tuple[str, str]],
        *,
        split: str = "",
        timeout_s: float | None = None,
    ) -> Iterator[pb.MakeToolResponse]:
        """The events of making a tool; the last one holds the card or the failure."""
        call = self.stub.MakeTool(
            _make_request(task, examples, split),
            timeout=timeout_s or self.timeout_s,
            metadata=self.metadata,
        )
        try:
            yield from call
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None
        finally:
            call.cancel()

    def list_tools(self) -> list[pb.ToolSummary]:
        """Every tool of the tenant (the latest versions), page after page."""
        tools: list[pb.ToolSummary] = []
        token = ""
        while True:
            page = self._call(self.stub.ListTools, pb.ListToolsRequest(page_token=token), None)
            tools += page.tools
            token = page.next_page_token
            if not token:
                return tools

    def get_tool(self, name: str, version: int = 0) -> pb.ToolCard:
        request = pb.GetToolRequest(name=name, version=version)
        return self._call(self.stub.GetTool, request, None).tool

    def delete_tool(self, name: str, version: int = 0) -> int:
        request = pb.DeleteToolRequest(name=name, version=version)
        return int(self._call(self.stub.DeleteTool, request, None).removed)

    def import_tool(self, card_json: str) -> pb.ToolCard:
        request = pb.ImportToolRequest(card_json=card_json)
        return self._call(self.stub.ImportTool, request, None).tool

    def export_tool(self, name: str, version: int = 0) -> str:
        request = pb.ExportToolRequest(name=name, version=version)
        return str(self._call(self.stub.ExportTool, request, None).card_json)

    def get_usage(
        self, start: datetime | None = None, end: datetime | None = None, granularity: str = "day"
    ) -> pb.GetUsageResponse:
        request = _usage_request(start, end, granularity)
        return self._call(self.stub.GetUsage, request, None)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType
    ) -> None:
        self.close()


class AsyncClient:
    """The asyncio twin of :class:`Client` (same methods, awaited)."""

    def __init__(
        self,
        target: str,
        api_key: str,
        *,
        tls: TlsFiles | None = None,
        timeout_s: float | None = 60.0,
        max_message_bytes: int = 4 * 1024 * 1024,
    ) -> None:
        options = _options(max_message_bytes)
        if tls is not None and tls.server_name:
            options.append(("grpc.ssl_target_name_override", tls.server_name))
        self.channel = (
            grpc.aio.secure_channel(target, tls.credentials(), options)
            if tls is not None
            else grpc.aio.insecure_channel(target, options)
        )
        self.stub = pb_grpc.OrchestratorServiceStub(self.channel)
        self.metadata = (("authorization", f"Bearer {api_key}"),)
        self.timeout_s = timeout_s

    async def _call(self, method: Any, request: Any, timeout_s: float | None) -> Any:
        try:
            return await method(
                request, timeout=timeout_s or self.timeout_s, metadata=self.metadata
            )
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None

    async def solve(
        self, question: str, tool: str = "", *, timeout_s: float | None = None
    ) -> Answer:
        request = pb.SolveRequest(question=question, tool=tool)
        return _answer(await self._call(self.stub.Solve, request, timeout_s))

    async def execute_tool(
        self,
        tool: str,
        arguments: dict[str, Any] | None = None,
        *,
        version: int = 0,
        timeout_ms: int = 0,
        memory_mb: int = 0,
        timeout_s: float | None = None,
    ) -> ToolResult:
        request = _execute_request(tool, arguments, version, timeout_ms, memory_mb)
        return _tool_result(await self._call(self.stub.ExecuteTool, request, timeout_s))

    async def make_tool(
        self,
        task: str,
        examples: Sequence[tuple[str, str]],
        *,
        split: str = "",
        timeout_s: float | None = None,
    ) -> AsyncIterator[pb.MakeToolResponse]:
        call = self.stub.MakeTool(
            _make_request(task, examples, split),
            timeout=timeout_s or self.timeout_s,
            metadata=self.metadata,
        )
        try:
            async for event in call:
                yield event
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None
        finally:
            call.cancel()

    async def list_tools(self) -> list[pb.ToolSummary]:
        """Every tool of the tenant (the latest versions), page after page."""
        tools: list[pb.ToolSummary] = []
        token = ""
        while True:
            request = pb.ListToolsRequest(page_token=token)
            page = await self._call(self.stub.ListTools, request, None)
            tools += page.tools
            token = page.next_page_token
            if not token:
                return tools

    async def get_tool(self, name: str, version: int = 0) -> pb.ToolCard:
        request = pb.GetToolRequest(name=name, version=version)
        return (await self._call(self.stub.GetTool, request, None)).tool

    async def delete_tool(self, name: str, version: int = 0) -> int:
        request = pb.DeleteToolRequest(name=name, version=version)
        return int((await self._call(self.stub.DeleteTool, request, None)).removed)

    async def import_tool(self, card_json: str) -> pb.ToolCard:
        request = pb.ImportToolRequest(card_json=card_json)
        return (await self._call(self.stub.ImportTool, request, None)).tool

    async def export_tool(self, name: str, version: int = 0) -> str:
        request = pb.ExportToolRequest(name=name, version=version)
        return str((await self._call(self.stub.ExportTool, request, None)).card_json)

    async def get_usage(
        self, start: datetime | None = None, end: datetime | None = None, granularity: str = "day"
    ) -> pb.GetUsageResponse:
        request = _usage_request(start, end, granularity)
        return await self._call(self.stub.GetUsage, request, None)

    async def close(self) -> None:
        await self.channel.close(None)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
