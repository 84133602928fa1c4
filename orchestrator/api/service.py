"""The OrchestratorService: each RPC authenticates, checks quotas, runs under the caller's
deadline and answers with a typed status.

Every handler goes through :func:`_unary` or :func:`_streaming`, which hold what every call
needs in one place: the tenant from the API key, the per-minute quota, the deadline scope,
a trace span, metrics, one structured log line, and the error table (``LatmError.code``,
with the error's class named in trailing metadata so clients raise the same type).
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import datetime as dt
import functools
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextvars import ContextVar
from typing import Any, TypeVar

import grpc
from google.protobuf import any_pb2, duration_pb2, timestamp_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from latm.orchestrator.v1 import orchestrator_pb2 as pb
from latm.orchestrator.v1 import orchestrator_pb2_grpc as pb_grpc
from opentelemetry import propagate

from orchestrator.api.auth import Authenticator, Principal
from orchestrator.api.quotas import MemoryQuotaGate, QuotaGate, check_limits
from orchestrator.api.streams import Done, with_progress
from orchestrator.deadlines import deadline_scope
from orchestrator.errors import (
    ERROR_TYPE_KEY,
    Cancelled,
    DeadlineExceeded,
    InvalidRequest,
    LatmError,
    QuotaExceeded,
    RegistryUnavailable,
    ResourceExhausted,
    Unavailable,
    metadata_value,
)
from orchestrator.latm.cards import NAME_PATTERN, ToolCard
from orchestrator.latm.engine import Engine, Solved
from orchestrator.latm.maker import MakeResult
from orchestrator.latm.outcomes import Report
from orchestrator.latm.repair import RepairResult
from orchestrator.latm.tasks import Split, task_from_examples
from orchestrator.models import TokenUsage
from orchestrator.models.admission import limit_prompt_tokens
from orchestrator.models.deferred import require_ready
from orchestrator.registry import ToolSummary
from orchestrator.registry.tenants import TenantStore, UsageLine
from orchestrator.sandboxes import ExecResult, Status
from orchestrator.telemetry import REQUEST_SECONDS, REQUESTS, tracer
from sandbox.contract import proto_values
from sandbox.decoding import Undecodable, tolerant

log = logging.getLogger("latm.api")
Response = TypeVar("Response")
Context = grpc.aio.ServicerContext[Any, Any]

# For the log formatter: the request being served by the current task.
REQUEST_ID: ContextVar[str] = ContextVar("latm_request_id", default="")
TENANT: ContextVar[str] = ContextVar("latm_tenant", default="")

MAX_ARGUMENTS_BYTES = 1024 * 1024
MAX_PENDING_USAGE = 100_000  # usage events kept for a registry that is down
DEFAULT_MESSAGE_BYTES = 4 * 1024 * 1024  # grpc's default cap, and the settings' default
# ListTools: tools per page at most (and by default), the bytes a page may hold (well
# under the 4 MiB default message size), and the characters of a summary's texts.
PAGE_SIZE = 1000
PAGE_BYTES = 2 * 1024 * 1024
SUMMARY_TEXT = 1000
_STATUS = proto_values(pb.ExecStatus.Value, "EXEC_STATUS_")


def add_to_server(service: OrchestratorService, server: grpc.aio.Server) -> None:
    """Register ``service`` like the generated ``add_..._to_server``, with requests that
    do not decode passed on as :class:`~sandbox.decoding.Undecodable`: the handler
    refuses them with INVALID_ARGUMENT once the caller is authenticated (grpcio would
    answer a failing deserializer with UNKNOWN and log a traceback)."""
    descriptor = pb.DESCRIPTOR.services_by_name["OrchestratorService"]
    handlers = {}
    for method in descriptor.methods:
        request = getattr(pb, method.input_type.name)
        response = getattr(pb, method.output_type.name)
        handler = (
            grpc.unary_stream_rpc_method_handler
            if method.server_streaming
            else grpc.unary_unary_rpc_method_handler
        )
        handlers[method.name] = handler(
            getattr(service, method.name),
            request_deserializer=tolerant(request.FromString),
            response_serializer=response.SerializeToString,
        )
    generic = grpc.method_handlers_generic_handler(descriptor.full_name, handlers)
    server.add_generic_rpc_handlers((generic,))


class OrchestratorService(pb_grpc.OrchestratorServiceServicer):
    """The public API over one engine; tenants are told apart by their API keys."""

    def __init__(
        self,
        engine: Engine,
        tenants: TenantStore,
        authenticator: Authenticator,
        quotas: QuotaGate | None = None,
        max_message_bytes: int = DEFAULT_MESSAGE_BYTES,
    ) -> None:
        self.engine = engine
        self.tenants = tenants
        self.auth = authenticator
        self.quotas = quotas or MemoryQuotaGate()
        self.max_message_bytes = max_message_bytes
        self.draining = False
        self._usage: list[dict[str, Any]] = []
        engine.ledger.subscribe(self._on_completion)

    # --- tools ---

    async def MakeTool(
        self, request: pb.MakeToolRequest, context: Context
    ) -> AsyncIterator[pb.MakeToolResponse]:
        make = functools.partial(self._make, request=request)
        async for event in _streaming(self, "MakeTool", context, make, request):
            yield event

    async def Solve(self, request: pb.SolveRequest, context: Context) -> pb.SolveResponse:
        return await _unary(self, "Solve", context, self._solve, request)

    async def ExecuteTool(
        self, request: pb.ExecuteToolRequest, context: Context
    ) -> pb.ExecuteToolResponse:
        return await _unary(self, "ExecuteTool", context, self._execute, request)

    async def ListTools(
        self, request: pb.ListToolsRequest, context: Context
    ) -> pb.ListToolsResponse:
        return await _unary(self, "ListTools", context, self._list, request)

    async def GetTool(self, request: pb.GetToolRequest, context: Context) -> pb.GetToolResponse:
        return await _unary(self, "GetTool", context, self._get, request)

    async def DeleteTool(
        self, request: pb.DeleteToolRequest, context: Context
    ) -> pb.DeleteToolResponse:
        return await _unary(self, "DeleteTool", context, self._delete, request)

    async def ImportTool(
        self, request: pb.ImportToolRequest, context: Context
    ) -> pb.ImportToolResponse:
        return await _unary(self, "ImportTool", context, self._import, request)

    async def ExportTool(
        self, request: pb.ExportToolRequest, context: Context
    ) -> pb.ExportToolResponse:
        return await _unary(self, "ExportTool", context, self._export, request)

    async def GetUsage(self, request: pb.GetUsageRequest, context: Context) -> pb.GetUsageResponse:
        return await _unary(self, "GetUsage", context, self._usage_report, request)

    async def ReportOutcome(
        self, request: pb.ReportOutcomeRequest, context: Context
    ) -> pb.ReportOutcomeResponse:
        return await _unary(self, "ReportOutcome", context, self._report, request)

    async def RepairTool(
        self, request: pb.RepairToolRequest, context: Context
    ) -> AsyncIterator[pb.RepairToolResponse]:
        repair = functools.partial(self._repair, request=request)
        async for event in _streaming(self, "RepairTool", context, repair, request):
            yield event

    # --- the work of each call, for an authenticated principal ---

    async def _solve(self, who: Principal, request: pb.SolveRequest) -> pb.SolveResponse:
        require_ready(self.engine.user_model, self.engine.dispatcher.model)
        question = _text("question", request.question, who.quotas.max_question_chars)
        async with self.quotas.execution(who.tenant, who.quotas):
            solved = await self.engine.solve(who.tenant, question, request.tool or None)
        await self._settle()
        return _solved(solved)

    async def _execute(
        self, who: Principal, request: pb.ExecuteToolRequest
    ) -> pb.ExecuteToolResponse:
        check_limits(who.tenant, who.quotas, request.limits.timeout_ms, request.limits.memory_mb)
        arguments = _arguments(request.arguments_json)
        request_id = uuid.uuid4().hex
        async with self.quotas.execution(who.tenant, who.quotas):
            card, result = await self.engine.execute(
                who.tenant,
                _name(request.tool),
                arguments,
                version=request.version or None,
                timeout_ms=request.limits.timeout_ms,
                memory_mb=request.limits.memory_mb,
                request_id=request_id,
            )
        await self._settle()
        executed = _executed(card, result)
        executed.request_id = request_id
        return executed

    async def _report(
        self, who: Principal, request: pb.ReportOutcomeRequest
    ) -> pb.ReportOutcomeResponse:
        limit = who.quotas.max_question_chars
        report = Report(
            request_id=_optional("request_id", request.request_id, 64),
            tool=_optional("tool", request.tool, 64),
            question=_optional("question", request.question, limit),
            answer=_optional("answer", request.answer, limit),
            wrong=request.wrong,
        )
        kept = await self.engine.report(who.tenant, report, who.quotas.store_limits())
        return pb.ReportOutcomeResponse(
            tool=kept.case.tool,
            tool_version=kept.case.version or 0,
            suite_cases=kept.suite,
            repairing=kept.repairing,
        )

    async def _repair(
        self, who: Principal, request: pb.RepairToolRequest
    ) -> AsyncIterator[pb.RepairToolResponse]:
        """The events of one repair, as they happen, then the new version or the reason."""
        require_ready(self.engine.maker_model)
        name, limits = _name(request.name), who.quotas.store_limits()
        async with self.quotas.making(who.tenant, who.quotas):
            job = functools.partial(self.engine.repair, who.tenant, name, limits=limits)
            async for item in with_progress(job, pb.RepairToolResponse):
                if isinstance(item, Done):
                    result: RepairResult = item.value
                else:
                    yield item
        last = pb.RepairToolResponse(
            usage=_usage(result.usage), failing_cases=result.failing, suite_cases=result.suite
        )
        if result.card is not None:
            last.tool.CopyFrom(_card(result.card))
        else:
            last.failure.reason = result.reason or "not repaired"
        yield last

    async def _list(self, who: Principal, request: pb.ListToolsRequest) -> pb.ListToolsResponse:
        tools = await asyncio.to_thread(self.engine.tools, who.tenant)
        return _page(tools, request.page_size, request.page_token)

    async def _get(self, who: Principal, request: pb.GetToolRequest) -> pb.GetToolResponse:
        card = await asyncio.to_thread(
            self.engine.registry.get, who.tenant, _name(request.name), request.version or None
        )
        return pb.GetToolResponse(tool=_card(card))

    async def _delete(self, who: Principal, request: pb.DeleteToolRequest) -> pb.DeleteToolResponse:
        removed = await asyncio.to_thread(
            self.engine.registry.remove, who.tenant, _name(request.name), request.version or None
        )
        self.engine.forget(who.tenant)
        return pb.DeleteToolResponse(removed=removed)

    async def _import(self, who: Principal, request: pb.ImportToolRequest) -> pb.ImportToolResponse:
        async with self.quotas.execution(who.tenant, who.quotas):  # it runs the demos
            card = await self.engine.import_card(
                who.tenant, request.card_json, who.quotas.store_limits()
            )
        return pb.ImportToolResponse(tool=_card(card))

    async def _export(self, who: Principal, request: pb.ExportToolRequest) -> pb.ExportToolResponse:
        text = await asyncio.to_thread(
            self.engine.registry.export, who.tenant, _name(request.name), request.version or None
        )
        return pb.ExportToolResponse(card_json=text)

    async def _usage_report(
        self, who: Principal, request: pb.GetUsageRequest
    ) -> pb.GetUsageResponse:
        await self.flush_usage()
        report = await asyncio.to_thread(
            self.tenants.usage,
            who.tenant,
            request.start.ToDatetime(dt.UTC) if request.HasField("start") else None,
            request.end.ToDatetime(dt.UTC) if request.HasField("end") else None,
            "hour" if request.granularity == pb.GRANULARITY_HOUR else "day",
        )
        return pb.GetUsageResponse(
            tenant=report.tenant,
            total=_usage_line(report.total),
            by_tool=[pb.ToolUsage(tool=k, usage=_usage_line(v)) for k, v in report.by_tool.items()],
            by_model=[
                pb.ModelUsage(model=k, usage=_usage_line(v)) for k, v in report.by_model.items()
            ],
            by_period=[
                pb.PeriodUsage(start=_timestamp(start), usage=_usage_line(line))
                for start, line in report.by_period
            ],
        )

    async def _make(
        self, who: Principal, request: pb.MakeToolRequest
    ) -> AsyncIterator[pb.MakeToolResponse]:
        """The events of one tool-making job, as they happen."""
        require_ready(self.engine.maker_model)
        examples = _examples(request, who)
        task = task_from_examples(_text("task", request.task, 64), examples)
        split = Split.parse(request.split) if request.split else None
        task.split(split)  # refuse a split the examples cannot fill before any model call
        limits = who.quotas.store_limits()
        await asyncio.to_thread(self.engine.registry.check_room, who.tenant, task.name, limits)
        async with self.quotas.making(who.tenant, who.quotas):
            job = functools.partial(self.engine.make, who.tenant, task, split, limits=limits)
            async for item in with_progress(job, pb.MakeToolResponse):
                if isinstance(item, Done):
                    result: MakeResult = item.value
                else:
                    yield item
        usage = _usage(result.usage)
        if result.card is not None:
            yield pb.MakeToolResponse(tool=_card(result.card), usage=usage)
        else:
            failure = pb.MakeFailure(reason=result.reason or "no tool was made")
            yield pb.MakeToolResponse(failure=failure, usage=usage)

    async def _settle(self) -> None:
        """With replicas (a shared registry), write what a call served (its request, for a
        report through any replica; its tool uses and model usage) before answering it:
        a replica killed after it answered then loses none of it. One server writes
        these in batches off the request path."""
        if self.engine.registry.shared:
            await self.engine.flush()
            await self.flush_usage()

    # --- usage events, written in batches off the request path ---

    def _on_completion(self, completion: Any, scope: Any) -> None:
        self._usage.append(
            {
                "tenant": scope.tenant,
                "request_id": scope.request_id or "",
                "role": scope.role or "",
                "tool": scope.tool or "",
                "model": completion.model,
                "prompt_tokens": completion.usage.prompt_tokens,
                "completion_tokens": completion.usage.completion_tokens,
                "cost_usd": completion.usage.cost_usd,
                "at": dt.datetime.now(dt.UTC),
            }
        )

    async def flush_usage(self) -> None:
        """Write the queued usage events (the engine writes its tool uses itself). When the
        registry cannot take them (unreachable, its disk full) they stay queued, up to a
        bound, for the next flush: an outage delays metering rather than losing it."""
        batch, self._usage = self._usage, []
        if batch:
            try:
                await asyncio.to_thread(self.tenants.record_usage, batch)
            except RegistryUnavailable as exc:
                self._usage = (batch + self._usage)[-MAX_PENDING_USAGE:]
                log.warning("could not record %d usage events yet: %s", len(batch), exc)
            except LatmError as exc:
                log.error("could not record %d usage events: %s", len(batch), exc)


# --- what every call goes through ---


async def _unary(
    service: OrchestratorService,
    method: str,
    context: Context,
    work: Callable[[Principal, Any], Awaitable[Response]],
    request: Any,
) -> Response:
    async with _call(service, method, context) as call:
        who = await call.begin(request)
        return call.fits(await call.run(work(who, request)))
    raise AssertionError("unreachable: _call aborts the call on every error")


async def _streaming(
    service: OrchestratorService,
    method: str,
    context: Context,
    events: Callable[[Principal], AsyncIterator[Any]],
    request: Any,
) -> AsyncIterator[Any]:
    async with _call(service, method, context) as call:
        who = await call.begin(request)
        stream = aiter(events(who))
        try:
            while True:
                try:
                    event = await call.run(anext(stream))
                except StopAsyncIteration:
                    break
                yield call.fits(event)
        finally:
            await stream.aclose()  # type: ignore[attr-defined]


class _Call:
    """One call's bookkeeping: principal, deadline, trace span, timing, outcome. The
    transport (gRPC here, MCP over HTTP or stdio in ``orchestrator.mcp``) gives the
    caller's metadata and the time it has left; everything else is the same."""

    def __init__(
        self,
        service: OrchestratorService,
        method: str,
        metadata: Any,
        remaining: Callable[[], float | None],
    ) -> None:
        self.service = service
        self.method = method
        self.metadata = metadata
        self.remaining = remaining
        self.started = time.perf_counter()
        self.request_id = _request_id(metadata)
        self.tenant = ""
        self.deadline = remaining()

    async def begin(self, request: Any) -> Principal:
        if self.service.draining:
            raise Unavailable("the server is shutting down; retry on another instance")
        who = await self.service.auth.authenticate(self.metadata)
        self.tenant = who.tenant
        TENANT.set(who.tenant)
        await self.service.quotas.admit(who.tenant, who.quotas)
        limit_prompt_tokens(who.quotas.max_prompt_tokens)
        if isinstance(request, Undecodable):
            raise InvalidRequest(f"the request does not decode: {request.error}")
        return who

    def fits(self, message: Response) -> Response:
        """``message``, unless it is over the server's send cap: grpc would fail to send it
        after the handler returned, and the caller, logs and metrics would disagree.

        Raises:
            ResourceExhausted: the message is too large to send.
        """
        size = message.ByteSize()  # type: ignore[attr-defined]
        cap = self.service.max_message_bytes
        if size > cap:
            raise ResourceExhausted(
                f"the {self.method} response would be {size} bytes, over this server's "
                f"message cap of {cap}; ask for less (a page, one version)"
            )
        return message

    async def run(self, awaitable: Awaitable[Response]) -> Response:
        left = self.remaining()
        if left is None:
            return await awaitable
        async with asyncio.timeout(left):
            return await awaitable


@contextlib.asynccontextmanager
async def _call(
    service: OrchestratorService, method: str, context: Context
) -> AsyncIterator[_Call]:
    metadata = context.invocation_metadata()
    try:
        async with call_scope(service, method, metadata, context.time_remaining) as call:
            yield call
    except LatmError as error:
        await _abort(context, error)


@contextlib.asynccontextmanager
async def call_scope(
    service: OrchestratorService,
    method: str,
    metadata: Any,
    remaining: Callable[[], float | None] = lambda: None,
) -> AsyncIterator[_Call]:
    """What every call goes through, whatever its transport: the caller's request id,
    trace span and deadline scope around the body, then its metric, its log line, and
    its outcome as a :class:`LatmError` (raised) when it failed. ``metadata`` holds the
    caller's ``authorization`` (and optional ``x-request-id``, ``traceparent``);
    ``remaining`` the seconds it has left (None: no deadline)."""
    call = _Call(service, method, metadata, remaining)
    REQUEST_ID.set(call.request_id)
    parent = propagate.extract(_carrier(metadata))
    code = grpc.StatusCode.OK
    error: LatmError | None = None
    with (
        tracer.start_as_current_span(f"api.{method}", context=parent) as span,
        deadline_scope(call.deadline),
    ):
        span.set_attribute("latm.request_id", call.request_id)
        try:
            yield call
        except LatmError as exc:
            error = exc
        except TimeoutError:
            error = DeadlineExceeded("the call's deadline passed; its work was stopped")
        except asyncio.CancelledError:
            code = grpc.StatusCode.CANCELLED
            _finish(call, code, Cancelled("the caller cancelled the call"))
            raise
        except Exception:
            log.exception("unexpected error in %s", method)
            error = LatmError(f"internal error; quote request id {call.request_id}")
        if error is not None:
            code = error.code
        span.set_attribute("latm.tenant", call.tenant)
        span.set_attribute("rpc.grpc.status_code", code.value[0])
        _finish(call, code, error)
    if error is not None:
        raise error


def _finish(call: _Call, code: grpc.StatusCode, error: LatmError | None) -> None:
    elapsed = time.perf_counter() - call.started
    REQUESTS.labels(call.method, code.name).inc()
    REQUEST_SECONDS.labels(call.method, code.name).observe(elapsed)
    level = logging.WARNING if code is grpc.StatusCode.INTERNAL else logging.INFO
    log.log(
        level,
        "%s %s",
        call.method,
        code.name,
        extra={
            "method": call.method,
            "code": code.name,
            "ms": round(elapsed * 1000, 2),
            "error_type": type(error).__name__ if error else None,
            # What was kept from the caller (an endpoint's address, a provider's reply),
            # for the operator; messages a caller reads in full (which may quote a tool's
            # own error text) are not logged, as before.
            "error": str(error) if error is not None and error.public is not None else None,
        },
    )


async def _abort(context: Context, error: LatmError) -> None:
    """End the call with the error's status (raises grpc's abort exception)."""
    message = error.public_message or error.code.name
    trailing: list[tuple[str, str | bytes]] = [(ERROR_TYPE_KEY, type(error).__name__)]
    if isinstance(error, ResourceExhausted) and error.retry_after_s is not None:
        delay = duration_pb2.Duration()
        delay.FromTimedelta(dt.timedelta(seconds=error.retry_after_s))
        detail = any_pb2.Any()
        detail.Pack(error_details_pb2.RetryInfo(retry_delay=delay))
        status = status_pb2.Status(
            code=code_pb2.RESOURCE_EXHAUSTED, message=message, details=[detail]
        )
        trailing.append(("grpc-status-details-bin", status.SerializeToString()))
    await context.abort(error.code, message, trailing_metadata=tuple(trailing))


def _carrier(metadata: Any) -> dict[str, str]:
    return {
        key: value
        for key, value in metadata or ()
        if isinstance(value, str) and key in ("traceparent", "tracestate")
    }


def _request_id(metadata: Any) -> str:
    """The caller's ``x-request-id`` when it is short printable ASCII, else a fresh id."""
    given = metadata_value(metadata, "x-request-id")
    return given if given is not None and _printable(given, 64) else uuid.uuid4().hex


# --- request checks ---


def _printable(value: str, limit: int) -> bool:
    return 0 < len(value) <= limit and value.isascii() and value.isprintable()


def _text(what: str, value: str, limit: int) -> str:
    if not value.strip():
        raise InvalidRequest(f"{what} must not be empty")
    if len(value) > limit:
        raise InvalidRequest(f"{what} is limited to {limit} characters, got {len(value)}")
    return value


def _examples(request: pb.MakeToolRequest, who: Principal) -> list[tuple[str, str]]:
    """The request's solved examples, within the tenant's count and byte quotas."""
    count, most = len(request.examples), who.quotas.max_make_examples
    if not count:
        raise InvalidRequest("give at least one solved example; got no examples")
    if count > most:
        raise QuotaExceeded(f"{count} solved examples is over this tenant's quota of {most}")
    examples = [(example.question, example.answer) for example in request.examples]
    size = sum(len(q.encode()) + len(a.encode()) for q, a in examples)
    if size > who.quotas.max_make_kb * 1024:
        raise QuotaExceeded(
            f"the solved examples hold {size} bytes, over this tenant's quota of "
            f"{who.quotas.max_make_kb} KiB"
        )
    return examples


def _optional(what: str, value: str, limit: int) -> str | None:
    """``value``, or None when it is empty (a proto3 string not given)."""
    return _text(what, value, limit) if value else None


def _name(value: str) -> str:
    return _text("the tool name", value, 64)


def _arguments(text: str) -> dict[str, Any]:
    if not text.strip():
        return {}
    if len(text.encode()) > MAX_ARGUMENTS_BYTES:
        raise InvalidRequest(f"arguments_json is limited to {MAX_ARGUMENTS_BYTES} bytes")
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise InvalidRequest(f"arguments_json is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise InvalidRequest("arguments_json must be a JSON object of keyword arguments")
    return value


# --- conversions ---


def _timestamp(moment: dt.datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def _usage(usage: TokenUsage, calls: int = 0) -> pb.Usage:
    return pb.Usage(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        cost_usd=usage.cost_usd,
        calls=calls,
    )


def _usage_line(line: UsageLine) -> pb.Usage:
    return pb.Usage(
        prompt_tokens=line.prompt_tokens,
        completion_tokens=line.completion_tokens,
        cost_usd=line.cost_usd,
        calls=line.calls,
    )


def _card(card: ToolCard) -> pb.ToolCard:
    created = card.provenance.created_at
    message = pb.ToolCard(
        name=card.name,
        version=card.version or 0,
        description=card.description,
        source=card.source,
        entrypoint=card.entrypoint,
        signature=card.signature or "",
        task=card.task or "",
        scorer=card.scorer or "",
        usage_demos=[
            pb.UsageDemo(question=d.question, solution=d.solution, answer=d.answer)
            for d in card.usage_demos
        ],
        verification=pb.Verification(
            passed=card.verification.passed,
            total=card.verification.total,
            user=(
                pb.UserCheck(model=check.model, correct=check.correct, questions=check.questions)
                if (check := card.verification.user) is not None
                else None
            ),
        ),
        sha256=card.sha256,
        maker=card.provenance.maker,
    )
    with contextlib.suppress(ValueError):
        message.created_at.CopyFrom(_timestamp(dt.datetime.fromisoformat(created)))
    return message


def _page(tools: list[ToolSummary], size: int, token: str) -> pb.ListToolsResponse:
    """One page of ``tools`` (sorted by name): after the token's name, at most ``size``
    tools, and ended early before it passes ``PAGE_BYTES``."""
    size = min(size or PAGE_SIZE, PAGE_SIZE)
    if token and not NAME_PATTERN.fullmatch(token):
        raise InvalidRequest("page_token is not one this server gave")
    names = [tool.name for tool in tools]
    start = bisect.bisect_right(names, token) if token else 0
    page: list[pb.ToolSummary] = []
    used = 0
    for tool in tools[start : start + size]:
        summary = _summary(tool)
        used += summary.ByteSize() + 8  # and its field tag and length in the page
        if page and used > PAGE_BYTES:
            break
        page.append(summary)
    more = start + len(page) < len(tools)
    return pb.ListToolsResponse(tools=page, next_page_token=page[-1].name if more else "")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _summary(tool: ToolSummary) -> pb.ToolSummary:
    return pb.ToolSummary(
        name=tool.name,
        version=tool.version,
        description=_cut(tool.description, SUMMARY_TEXT),
        signature=_cut(tool.signature or "", SUMMARY_TEXT),
        entrypoint=tool.entrypoint,
        sha256=tool.sha256,
        created_at=_timestamp(tool.created_at),
        uses=tool.uses,
        cost_usd=tool.cost_usd,
    )


def _solved(solved: Solved) -> pb.SolveResponse:
    return pb.SolveResponse(
        answer=solved.answer or "",
        route=solved.route,
        tool=solved.tool or "",
        tool_version=solved.version or 0,
        call=solved.call or "",
        error=solved.error or "",
        request_id=solved.request_id,
        usage=[
            pb.RoleUsage(role=role, usage=_usage(usage, calls=1))
            for role, usage in solved.usage.items()
        ],
        cost_usd=solved.cost_usd,
        wall_ms=solved.wall_s * 1000,
        confidence=solved.confidence,
        route_confidence=solved.route_confidence,
        routed_by=solved.routed_by or "",
        escalated=solved.escalated,
        answered_by=solved.answered_by or "",
    )


def _executed(card: ToolCard, result: ExecResult) -> pb.ExecuteToolResponse:
    error = result.error
    return pb.ExecuteToolResponse(
        status=_STATUS[result.status],
        value_json=json.dumps(result.value, ensure_ascii=False)
        if result.status is Status.OK
        else "",
        stdout=result.stdout,
        error=pb.ExecError(
            type=error.type, message=error.message, line=error.line, origin=error.origin
        )
        if error
        else None,
        isolation=result.isolation,
        usage=pb.ExecUsage(
            wall_ms=result.usage.wall_ms,
            cpu_ms=result.usage.cpu_ms,
            max_rss_kb=result.usage.max_rss_kb,
        ),
        tool=card.name,
        tool_version=card.version or 0,
    )
