"""A :class:`~orchestrator.cli._session.Session` on a ``latm serve``, over gRPC.

Every call goes through the typed :class:`~latm_client.AsyncClient` (so a failure is
the orchestrator's own typed error) and its answer is turned into the value the local
session returns: cards are read back as ``latm.tool/v1`` JSON (the gRPC card has no
provenance), and a making's stream into the progress events the CLI shows.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from latm.orchestrator.v1 import orchestrator_pb2 as pb
from latm_client import Answer, AsyncClient, ToolResult

from orchestrator.api.streams import candidate_scored
from orchestrator.cli._remote import Remote
from orchestrator.cli._session import Shown
from orchestrator.errors import InvalidRequest, from_rpc_error
from orchestrator.latm.cards import ToolCard, VerificationCase
from orchestrator.latm.engine import Solved
from orchestrator.latm.maker import MakeResult
from orchestrator.latm.outcomes import Report, Reported
from orchestrator.latm.progress import CaseGraded, MakeFailed, Relayed, Stage, Verified
from orchestrator.latm.repair import RepairResult
from orchestrator.latm.tasks import Split, Task
from orchestrator.models import TokenUsage
from orchestrator.registry import Case, ToolSummary
from orchestrator.registry.tenants import Granularity, UsageLine, UsageReport
from orchestrator.sandboxes import ErrorInfo, ExecResult, Status, Usage

MAKE_TIMEOUT_S = 3600.0  # a making runs many model calls; the server's own limits still apply


class RemoteSession:
    """The tenant of ``remote``'s API key, on its server."""

    def __init__(self, client: AsyncClient, asked_tenant: str | None) -> None:
        self.client = client
        self.asked_tenant = asked_tenant  # a --tenant given on the command line
        self._tenant: str | None = None

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, remote: Remote, args: argparse.Namespace) -> AsyncIterator[RemoteSession]:
        """A session for ``args``; a ``--tenant`` given must be the key's own tenant.

        Raises:
            InvalidRequest: ``--tenant`` names another tenant than the key's, or a flag
                chooses a local model (a server uses its own).
        """
        for flag in ("user", "maker"):
            if getattr(args, flag, None):
                raise InvalidRequest(f"--{flag} picks a local model; a server uses its own")
        asked = args.tenant if "tenant" in getattr(args, "given", ()) else None
        async with AsyncClient(remote.server, remote.api_key, tls=remote.tls) as client:
            session = cls(client, asked)
            if asked is not None:
                await session.tenant()
            yield session

    async def tenant(self) -> str:
        if self._tenant is None:
            now = datetime.now(UTC)  # an empty period: the answer names the key's tenant
            report = await self.client.get_usage(now, now + timedelta(microseconds=1))
            self._tenant = report.tenant
        if self.asked_tenant not in (None, self._tenant):
            raise InvalidRequest(
                f"--tenant {self.asked_tenant}: the API key is tenant {self._tenant}'s; "
                "with --server the key decides the tenant (leave --tenant out)"
            )
        return self._tenant

    async def list_tools(self) -> list[ToolSummary]:
        return [_summary(tool) for tool in await self.client.list_tools()]

    async def card(self, name: str, version: int | None) -> ToolCard:
        return ToolCard.from_json(await self.export(name, version))

    async def export(self, name: str, version: int | None) -> str:
        return await self.client.export_tool(name, version or 0)

    async def import_card(self, text: str) -> ToolCard:
        published = await self.client.import_tool(text)
        return await self.card(published.name, published.version)

    async def remove(self, name: str, version: int | None) -> int:
        return await self.client.delete_tool(name, version or 0)

    async def solve(self, question: str, tool: str | None) -> Solved:
        return solved(question, await self.client.solve(question, tool or ""))

    async def make(self, task: Task, split: Split | None, progress: Shown) -> MakeResult:
        started = time.perf_counter()
        examples = [(example.input, example.target) for example in task.examples]
        stream = self.client.make_tool(
            task.name, examples, split=str(split) if split else "", timeout_s=MAKE_TIMEOUT_S
        )
        making = Making(task.name, progress)
        async for event in stream:
            making.take(event)
        result = making.result(time.perf_counter() - started)
        if making.published is not None:
            result.card = await self.card(*making.published)
        return result

    async def execute(
        self, tool: str, arguments: dict[str, Any], version: int, timeout_ms: int, memory_mb: int
    ) -> ExecResult:
        """Call ``tool``'s entrypoint with ``arguments`` in the server's sandbox."""
        found = await self.client.execute_tool(
            tool, arguments, version=version, timeout_ms=timeout_ms, memory_mb=memory_mb
        )
        return exec_result(found)

    async def usage(
        self, start: datetime | None, end: datetime | None, granularity: Granularity
    ) -> UsageReport:
        return usage_report(await self.client.get_usage(start, end, granularity))

    async def report(self, report: Report) -> Reported:
        request = pb.ReportOutcomeRequest(
            request_id=report.request_id or "",
            tool=report.tool or "",
            question=report.question or "",
            answer=report.answer or "",
            wrong=report.wrong,
        )
        try:
            kept = await self.client.stub.ReportOutcome(request, metadata=self.client.metadata)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None
        case = Case(
            tool=kept.tool,
            input=report.question or "",
            source="reported",
            expected=report.answer,
            version=kept.tool_version or None,
            request_id=report.request_id,
        )
        return Reported(case, kept.suite_cases, kept.repairing)

    async def repair(self, name: str, progress: Shown) -> RepairResult:
        started = time.perf_counter()
        making = Making(name, progress)
        last = pb.RepairToolResponse()
        call = self.client.stub.RepairTool(
            pb.RepairToolRequest(name=name), timeout=MAKE_TIMEOUT_S, metadata=self.client.metadata
        )
        try:
            async for event in call:
                making.take(event)
                last = event
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None
        made = making.result(time.perf_counter() - started)
        result = RepairResult(
            name, None, made.reason, last.failing_cases, last.suite_cases, made.usage, made.wall_s
        )
        if making.published is not None:
            result.card = await self.card(*making.published)
        return result


class Making:
    """A making's stream, followed: each step shown as it comes, the outcome kept and
    shown as the local maker shows it (:class:`Verified` or :class:`MakeFailed`)."""

    def __init__(self, task: str, progress: Shown) -> None:
        self.task = task
        self.progress = progress
        self.attempts = {"propose": 0, "verify": 0}
        self.cases = 0
        self.published: tuple[str, int] | None = None
        self.reason: str | None = None
        self.usage = TokenUsage()

    def take(self, event: pb.MakeToolResponse | pb.RepairToolResponse) -> None:
        kind = event.WhichOneof("event")
        if kind == "attempt":
            self._attempt(event.attempt)
        elif kind == "case_result":
            self.cases += 1
            self.progress(CaseGraded(_case(event.case_result), self.cases))
        elif kind == "candidate":
            self.progress(candidate_scored(event.candidate))
        elif kind == "tool":
            card = event.tool
            self.published = (card.name, card.version)
            self.progress(Verified(card.name, card.verification.passed, card.verification.total))
        elif kind == "failure":
            self.reason = event.failure.reason
            self.progress(MakeFailed(self.reason))
        if event.HasField("usage"):
            self.usage = _tokens(event.usage)

    def _attempt(self, attempt: pb.Attempt) -> None:
        stage = Stage(attempt.stage)
        if stage in (Stage.PROPOSE, Stage.VERIFY):
            done = self.attempts[stage.value]
            self.attempts[stage.value] = max(done, attempt.number)
        self.progress(Relayed(stage, attempt.number, attempt.message))

    def result(self, wall_s: float) -> MakeResult:
        reason = None if self.published else (self.reason or "the server published no tool")
        return MakeResult(
            self.task, None, reason, dict(self.attempts), usage=self.usage, wall_s=wall_s
        )


def _case(result: pb.CaseResult) -> VerificationCase:
    return VerificationCase(
        question=result.question, expected=result.expected, got=result.got, passed=result.passed
    )


def _tokens(usage: pb.Usage) -> TokenUsage:
    return TokenUsage(usage.prompt_tokens, usage.completion_tokens, usage.cost_usd)


def _summary(tool: pb.ToolSummary) -> ToolSummary:
    return ToolSummary(
        name=tool.name,
        version=tool.version,
        description=tool.description,
        signature=tool.signature or None,
        entrypoint=tool.entrypoint,
        sha256=tool.sha256,
        created_at=tool.created_at.ToDatetime(UTC),
        uses=tool.uses,
        cost_usd=tool.cost_usd,
    )


def solved(question: str, answer: Answer) -> Solved:
    """The server's answer as the engine's own."""
    return Solved(
        question=question,
        answer=answer.answer,
        route=answer.route,
        tool=answer.tool,
        version=answer.version,
        call=answer.call,
        error=answer.error,
        request_id=answer.request_id,
        usage={
            role: TokenUsage(
                int(usage["prompt_tokens"]), int(usage["completion_tokens"]), usage["cost_usd"]
            )
            for role, usage in answer.usage.items()
        },
        wall_s=answer.wall_ms / 1000,
        confidence=answer.confidence,
        route_confidence=answer.route_confidence,
        routed_by=answer.routed_by,
        escalated=answer.escalated,
        answered_by=answer.answered_by,
    )


def exec_result(found: ToolResult) -> ExecResult:
    """A tool's result in the shape of the ``latm exec`` contract."""
    return ExecResult(
        status=Status(found.status),
        value=found.value,
        stdout=found.stdout,
        error=ErrorInfo(**found.error) if found.error else None,
        isolation=found.isolation,
        usage=Usage(
            wall_ms=found.usage["wall_ms"],
            cpu_ms=found.usage["cpu_ms"],
            max_rss_kb=int(found.usage["max_rss_kb"]),
        ),
    )


def _line(usage: pb.Usage) -> UsageLine:
    return UsageLine(usage.calls, usage.prompt_tokens, usage.completion_tokens, usage.cost_usd)


def usage_report(response: pb.GetUsageResponse) -> UsageReport:
    """The server's usage report as the registry's own."""
    return UsageReport(
        tenant=response.tenant,
        total=_line(response.total),
        by_tool={item.tool: _line(item.usage) for item in response.by_tool},
        by_model={item.model: _line(item.usage) for item in response.by_model},
        by_period=[(item.start.ToDatetime(UTC), _line(item.usage)) for item in response.by_period],
    )
