"""The MCP server of a tenant's tools: ``tools/list`` and ``tools/call`` over the service.

Every MCP request goes through :func:`~orchestrator.api.service.call_scope` and the
service's own work methods (``_list``, ``_execute``, ``_solve``, ``_make``): the tenant
from the API key, quotas, deadlines, metrics, logs, traces and usage accounting are the
gRPC API's, one code path below both transports. What is particular to MCP lives here:
the tool list with each tool's input schema (read in the sandbox, see
:mod:`sandbox.schema`), arguments checked against it before anything runs, sandbox
outcomes as tool results, progress notifications while a tool is made, and
``notifications/tools/list_changed`` when the tenant's tools change.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import jsonschema
import mcp_types as types
from latm.orchestrator.v1 import orchestrator_pb2 as pb
from mcp.server import Server
from mcp.server.connection import Connection
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import NotificationOptions
from mcp.server.models import InitializationOptions
from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler, ToolsListChanged
from mcp.shared.exceptions import MCPError

from orchestrator import __version__
from orchestrator.api.auth import Principal
from orchestrator.api.service import OrchestratorService, call_scope
from orchestrator.api.streams import candidate_scored
from orchestrator.errors import LatmError, ToolNotFound
from orchestrator.mcp.platform import MAKE_TOOL, PLATFORM_TOOLS, SOLVE, make_request, solved
from orchestrator.mcp.watch import ToolWatch

log = logging.getLogger("latm.mcp")
SERVER_NAME = "latm"
EMPTY_OBJECT: dict[str, Any] = {"type": "object", "properties": {}}
# JSON-RPC error codes for failures of a whole request (not of a tool's run).
UNAUTHORIZED = -32001
INVALID_PARAMS = -32602
INTERNAL = -32603
WATCHED = "latm/watched"  # a connection's state: the tenant whose tools it is told about

Metadata = list[tuple[str, str]]
MetadataOf = Callable[[ServerRequestContext[Any, Any]], Metadata]


def http_metadata(ctx: ServerRequestContext[Any, Any]) -> Metadata:
    """The gRPC-style metadata of the HTTP request behind ``ctx`` (its bearer key, and
    the optional request id and trace headers); none on stdio."""
    request = ctx.request
    headers: Mapping[str, str] = getattr(request, "headers", None) or {}
    names = ("authorization", "x-request-id", "traceparent", "tracestate")
    return [(name, headers[name]) for name in names if name in headers]


class ToolServer:
    """One MCP server (any number of sessions) over one :class:`OrchestratorService`."""

    def __init__(
        self,
        service: OrchestratorService,
        metadata_of: MetadataOf = http_metadata,
        call_timeout_s: float | None = None,
    ) -> None:
        """``call_timeout_s``: each ``tools/call``'s deadline (None or 0: none); MCP
        carries no deadline of its own, so this is the one a gRPC caller would send."""
        self.service = service
        self.metadata_of = metadata_of
        self.call_timeout_s = call_timeout_s or None
        self._buses: dict[str, InMemorySubscriptionBus] = {}
        self._listeners: dict[str, ListenHandler] = {}
        self.watch = ToolWatch(service.engine.registry.revision, self._announce)
        self.server: Server[Any] = Server(
            SERVER_NAME,
            version=__version__,
            instructions="Tools made and verified by LATM; each runs only in a sandbox.",
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
            on_subscriptions_listen=self._listen,
            get_tool_input_schema=_no_header_params,
        )

    def initialization_options(self) -> InitializationOptions:
        return self.server.create_initialization_options(NotificationOptions(tools_changed=True))

    async def aclose(self) -> None:
        """Stop watching the tenants' tools."""
        await self.watch.aclose()

    # --- tools/list ---

    async def _list_tools(
        self, ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        cursor = params.cursor if params is not None else None
        try:
            async with self._scope(ctx, "MCP.ListTools") as (call, who):
                page = await call.run(
                    self.service._list(who, pb.ListToolsRequest(page_token=cursor or ""))
                )
                tools = [] if cursor else list(PLATFORM_TOOLS)
                for summary in page.tools:
                    if summary.name not in {tool.name for tool in PLATFORM_TOOLS}:
                        tools.append(await self._describe(who, summary))
        except LatmError as exc:
            raise _request_error(exc) from None
        return types.ListToolsResult(tools=tools, next_cursor=page.next_page_token or None)

    async def _describe(self, who: Principal, summary: pb.ToolSummary) -> types.Tool:
        engine = self.service.engine
        card = await engine.card(who.tenant, summary.name)
        schema = await engine.input_schema(who.tenant, card)
        return types.Tool(
            name=summary.name,
            description=summary.description,
            input_schema=schema or EMPTY_OBJECT,
            _meta={"latm/version": summary.version, "latm/sha256": summary.sha256},
        )

    # --- tools/call ---

    async def _call_tool(
        self, ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        arguments = params.arguments or {}
        method = {SOLVE: "MCP.Solve", MAKE_TOOL: "MCP.MakeTool"}.get(params.name, "MCP.CallTool")
        try:
            async with self._scope(ctx, method, self.call_timeout_s) as (call, who):
                if params.name == SOLVE:
                    request = pb.SolveRequest(**_checked(arguments, _platform_schema(SOLVE)))
                    return solved(await call.run(self.service._solve(who, request)))
                if params.name == MAKE_TOOL:
                    return await self._make(ctx, call, who, arguments)
                return await self._run(call, who, params.name, arguments)
        except ToolNotFound:
            return error_result(f"no tool named {params.name!r}; list the tools first")
        except LatmError as exc:
            return error_result(f"{type(exc).__name__}: {exc.public_message or exc}")

    async def _run(
        self, call: Any, who: Principal, name: str, arguments: dict[str, Any]
    ) -> types.CallToolResult:
        engine = self.service.engine
        card = await engine.card(who.tenant, name)
        schema = await engine.input_schema(who.tenant, card)
        _checked(arguments, schema or EMPTY_OBJECT)
        request = pb.ExecuteToolRequest(
            tool=name, version=card.version or 0, arguments_json=json.dumps(arguments)
        )
        reply = call.fits(await call.run(self.service._execute(who, request)))
        if reply.status != pb.EXEC_STATUS_OK:
            status = pb.ExecStatus.Name(reply.status).removeprefix("EXEC_STATUS_").lower()
            message = f"{reply.error.type}: {reply.error.message}" if reply.error.type else ""
            return error_result(f"the tool ended with status {status}. {message}".strip())
        value = json.loads(reply.value_json)
        return types.CallToolResult(
            content=[types.TextContent(text=reply.value_json)],
            structured_content={"result": value},
        )

    async def _make(
        self, ctx: ServerRequestContext[Any, Any], call: Any, who: Principal, arguments: Any
    ) -> types.CallToolResult:
        request = make_request(_checked(arguments, _platform_schema(MAKE_TOOL)))
        steps = 0
        final: pb.MakeToolResponse | None = None
        events = aiter(self.service._make(who, request))
        with contextlib.suppress(StopAsyncIteration):
            while True:
                event = call.fits(await call.run(anext(events)))
                if event.HasField("tool") or event.HasField("failure"):
                    final = event
                    continue
                steps += 1
                await ctx.session.report_progress(steps, None, _progress_message(event))
        if final is None or not final.HasField("tool"):
            reason = final.failure.reason if final is not None else "no tool was made"
            return error_result(f"no tool was made: {reason}")
        tool = final.tool
        await self.tools_changed(who.tenant)
        made = {
            "name": tool.name,
            "version": tool.version,
            "description": tool.description,
            "signature": tool.signature,
            "passed": tool.verification.passed,
            "total": tool.verification.total,
            "cost_usd": final.usage.cost_usd,
        }
        text = f"made tool {tool.name} v{tool.version}: verified {made['passed']}/{made['total']}"
        return types.CallToolResult(content=[types.TextContent(text=text)], structured_content=made)

    # --- notifications/tools/list_changed ---

    async def tools_changed(self, tenant: str) -> None:
        """Tell ``tenant``'s clients now that its tools changed (a change made here)."""
        await self.watch.changed(tenant)

    async def _announce(self, tenant: str) -> None:
        """``notifications/tools/list_changed`` on the standalone stream of each open
        session of ``tenant`` (handshake-era sessions), and on every open
        ``subscriptions/listen`` stream of that tenant (2026-07-28 sessions)."""
        for member in self.watch.members(tenant):
            if isinstance(member, Connection):
                await member.send_tool_list_changed()  # best effort: never raises
        bus = self._buses.get(tenant)
        if bus is not None:
            await bus.publish(ToolsListChanged())

    def _hold(self, ctx: ServerRequestContext[Any, Any], tenant: str) -> None:
        """Watch ``tenant``'s tools for the session of ``ctx`` while it is open (only a
        session with a standalone stream can be told)."""
        connection = getattr(ctx.session, "_connection", None)
        if not isinstance(connection, Connection) or not connection.has_standalone_channel:
            return
        if WATCHED not in connection.state:
            connection.state[WATCHED] = tenant
            self.watch.hold(tenant, connection)
            connection.exit_stack.callback(self.watch.release, tenant, connection)

    async def _listen(
        self, ctx: ServerRequestContext[Any, Any], params: types.SubscriptionsListenRequestParams
    ) -> types.SubscriptionsListenResult:
        try:
            async with self._scope(ctx, "MCP.Listen") as (_call, who):
                tenant = who.tenant
        except LatmError as exc:
            raise _request_error(exc) from None
        if tenant not in self._listeners:
            self._buses[tenant] = InMemorySubscriptionBus()
            self._listeners[tenant] = ListenHandler(self._buses[tenant])
        stream = object()
        self.watch.hold(tenant, stream)
        try:
            return await self._listeners[tenant](ctx, params)
        finally:
            self.watch.release(tenant, stream)

    # --- what every request goes through ---

    @contextlib.asynccontextmanager
    async def _scope(
        self, ctx: ServerRequestContext[Any, Any], method: str, timeout_s: float | None = None
    ) -> Any:
        remaining = _time_left(timeout_s)
        async with call_scope(self.service, method, self.metadata_of(ctx), remaining) as call:
            who = await call.begin(None)
            self._hold(ctx, who.tenant)
            yield call, who


def _time_left(timeout_s: float | None) -> Callable[[], float | None]:
    """The seconds a call started now has left with ``timeout_s`` (None: no deadline)."""
    if timeout_s is None:
        return lambda: None
    deadline = time.monotonic() + timeout_s
    return lambda: deadline - time.monotonic()


def _no_header_params(_name: str) -> None:
    """No input schema here declares ``Mcp-Param-*`` headers (``x-mcp-header``), so
    there is nothing for the 2026-07-28 transport to check before a ``tools/call``;
    without this answer the SDK runs the whole ``tools/list`` handler on every call to
    find that out (a registry read and a metered request)."""


def error_result(text: str) -> types.CallToolResult:
    """A tool result that reports a failure (``isError``), for the client's model to read."""
    return types.CallToolResult(content=[types.TextContent(text=text)], is_error=True)


def _request_error(exc: LatmError) -> MCPError:
    code = UNAUTHORIZED if exc.code.name == "UNAUTHENTICATED" else INVALID_PARAMS
    if exc.code.name in ("INTERNAL", "UNAVAILABLE"):
        code = INTERNAL
    return MCPError(code, f"{type(exc).__name__}: {exc.public_message or exc}")


def _platform_schema(name: str) -> dict[str, Any]:
    return next(tool.input_schema for tool in PLATFORM_TOOLS if tool.name == name)


def _checked(arguments: Any, schema: dict[str, Any]) -> dict[str, Any]:
    """``arguments``, if they fit ``schema``; nothing runs otherwise.

    Raises:
        InvalidRequest: the first way they do not fit.
    """
    from orchestrator.errors import InvalidRequest

    validator = jsonschema.Draft202012Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(arguments))
    if error is not None:
        where = "/".join(str(part) for part in error.absolute_path) or "arguments"
        raise InvalidRequest(
            f"the arguments do not match the tool's input schema at {where}: {error.message}"
        )
    assert isinstance(arguments, dict)
    return arguments


def _progress_message(event: pb.MakeToolResponse) -> str:
    if event.HasField("case_result"):
        case = event.case_result
        verdict = "passed" if case.passed else "failed"
        return f"verification case {verdict}: expected {case.expected!r}, got {case.got!r}"
    if event.HasField("candidate"):
        return candidate_scored(event.candidate).message
    return event.attempt.message
