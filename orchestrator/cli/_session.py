"""What a command does with a tenant's tools, wherever they are: :class:`Session`.

A command renders what its session returns and never asks where it came from. The local
session works on this machine's registry, sandbox and models; the remote one
(:mod:`orchestrator.cli._remote_session`) asks a ``latm serve`` over gRPC. Both return the
same values (cards, summaries, ``Solved``, ``MakeResult``, ``UsageReport``), so the tables
and the JSON are the same either way.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Protocol

from orchestrator.cli._runtime import open_engine, open_registry
from orchestrator.config import Settings
from orchestrator.latm.cards import ToolCard
from orchestrator.latm.engine import Engine, Solved
from orchestrator.latm.imports import reverified
from orchestrator.latm.maker import MakeResult
from orchestrator.latm.outcomes import Report, Reported, record_report
from orchestrator.latm.progress import MakeEvent, Relayed
from orchestrator.latm.repair import RepairResult
from orchestrator.latm.runner import ToolRunner
from orchestrator.latm.tasks import Split, Task
from orchestrator.registry import ToolRegistry, ToolSummary
from orchestrator.registry.tenants import Granularity, TenantStore, UsageReport
from orchestrator.sandboxes import create_backend

Shown = Callable[[MakeEvent | Relayed], None]


class Session(Protocol):
    """A tenant's tools, to list, read, change and use."""

    async def tenant(self) -> str:
        """The tenant whose tools these are."""
        ...

    async def list_tools(self) -> list[ToolSummary]: ...

    async def card(self, name: str, version: int | None) -> ToolCard:
        """A version of a tool (None: the latest)."""
        ...

    async def export(self, name: str, version: int | None) -> str:
        """A card as ``latm.tool/v1`` JSON."""
        ...

    async def import_card(self, text: str) -> ToolCard:
        """Publish a card (JSON) once its demos are proven again in the tenant's sandbox."""
        ...

    async def remove(self, name: str, version: int | None) -> int:
        """Remove a tool, or one version of it; the number of versions removed."""
        ...

    async def solve(self, question: str, tool: str | None) -> Solved: ...

    async def make(self, task: Task, split: Split | None, progress: Shown) -> MakeResult: ...

    async def usage(
        self, start: datetime | None, end: datetime | None, granularity: Granularity
    ) -> UsageReport: ...

    async def report(self, report: Report) -> Reported:
        """Keep a reported outcome in its tool's regression suite."""
        ...

    async def repair(self, name: str, progress: Shown) -> RepairResult:
        """Repair a tool on its failing cases; published only if its whole suite passes."""
        ...


class LocalSession:
    """This machine's registry, sandbox and models; each opened when first needed."""

    def __init__(self, args: argparse.Namespace, stack: contextlib.AsyncExitStack) -> None:
        self.args = args
        self.stack = stack
        self._registry: ToolRegistry | None = None
        self._engine: Engine | None = None

    @property
    def registry(self) -> ToolRegistry:
        if self._registry is None:
            self._registry = self.stack.enter_context(open_registry(Settings()))
        return self._registry

    async def engine(self) -> Engine:
        if self._engine is None:
            maker = hasattr(self.args, "maker")
            self._engine = await self.stack.enter_async_context(open_engine(self.args, maker=maker))
        return self._engine

    async def tenant(self) -> str:
        return str(self.args.tenant)

    async def list_tools(self) -> list[ToolSummary]:
        return self.registry.list(self.args.tenant)

    async def card(self, name: str, version: int | None) -> ToolCard:
        return self.registry.get(self.args.tenant, name, version)

    async def export(self, name: str, version: int | None) -> str:
        return self.registry.export(self.args.tenant, name, version)

    async def import_card(self, text: str) -> ToolCard:
        settings = Settings()
        backend = create_backend(settings.backend, settings)
        try:
            card = await reverified(ToolCard.from_json(text), ToolRunner(backend, self.args.tenant))
        finally:
            await backend.close()
        return self.registry.publish(self.args.tenant, card)

    async def remove(self, name: str, version: int | None) -> int:
        return self.registry.remove(self.args.tenant, name, version)

    async def solve(self, question: str, tool: str | None) -> Solved:
        return await (await self.engine()).solve(self.args.tenant, question, tool)

    async def make(self, task: Task, split: Split | None, progress: Shown) -> MakeResult:
        return await (await self.engine()).make(self.args.tenant, task, split, progress)

    async def usage(
        self, start: datetime | None, end: datetime | None, granularity: Granularity
    ) -> UsageReport:
        return TenantStore(self.registry).usage(self.args.tenant, start, end, granularity)

    async def report(self, report: Report) -> Reported:
        return record_report(self.registry, self.args.tenant, report)

    async def repair(self, name: str, progress: Shown) -> RepairResult:
        return await (await self.engine()).repair(self.args.tenant, name, progress)


@contextlib.asynccontextmanager
async def open_session(args: argparse.Namespace) -> AsyncIterator[Session]:
    """The session ``args`` asks for: remote when a server was resolved (``args.remote``),
    else local."""
    async with contextlib.AsyncExitStack() as stack:
        remote = getattr(args, "remote", None)
        if remote is None:
            yield LocalSession(args, stack)
            return
        from orchestrator.cli._remote_session import RemoteSession

        yield await stack.enter_async_context(RemoteSession.open(remote, args))
