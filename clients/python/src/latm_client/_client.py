"""``Client`` (blocking) and ``AsyncClient`` (asyncio): the generated stubs, typed.

They send the tenant's API key as ``authorization: Bearer`` metadata, decode JSON values, and
raise the API's typed errors (:mod:`latm_client.errors`) instead of ``grpc.RpcError``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Self

import grpc
from google.protobuf import timestamp_pb2
from latm.orchestrator.v1 import orchestrator_pb2 as pb
from latm.orchestrator.v1 import orchestrator_pb2_grpc as pb_grpc

from latm_client._results import Answer, ToolResult, decode_answer, decode_tool_result
from latm_client._tls import TlsFiles
from latm_client.errors import from_rpc_error

GRANULARITY = {"hour": pb.GRANULARITY_HOUR, "day": pb.GRANULARITY_DAY}


SERVICE = "latm.orchestrator.v1.OrchestratorService"
# The calls that change nothing when they run twice: reads, and a tool run (a fresh sandbox
# each time). gRPC retries them when the server answers UNAVAILABLE (a replica draining to
# restart; behind a balancer the retry finds another), within the call's deadline. The
# waits are short (gRPC draws each from 0 up to 0.1, 0.2, 0.4 s): a fault that lasts, like
# a certificate the client does not trust, still comes back as UNAVAILABLE, not as a
# deadline passed.
RETRIED = ("ListTools", "GetTool", "ExportTool", "GetUsage", "ExecuteTool")
RETRY_POLICY = {
    "maxAttempts": 4,
    "initialBackoff": "0.1s",
    "maxBackoff": "1s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE"],
}
SERVICE_CONFIG = json.dumps(
    {
        "methodConfig": [
            {
                "name": [{"service": SERVICE, "method": method} for method in RETRIED],
                "retryPolicy": RETRY_POLICY,
            }
        ]
    }
)


def _options(max_message_bytes: int) -> list[tuple[str, Any]]:
    return [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.enable_retries", 1),
        ("grpc.service_config", SERVICE_CONFIG),
    ]


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
        return decode_answer(self._call(self.stub.Solve, request, timeout_s))

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
        return decode_tool_result(self._call(self.stub.ExecuteTool, request, timeout_s))

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
        return decode_answer(await self._call(self.stub.Solve, request, timeout_s))

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
        return decode_tool_result(await self._call(self.stub.ExecuteTool, request, timeout_s))

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
