"""What the engine does with tools' regression suites: it remembers the requests tools
served and the failures that were their own fault, keeps reported outcomes, and repairs a
tool against its whole suite (on request, or by itself past a threshold).

:class:`SuiteKeeping` is a part of :class:`~orchestrator.latm.engine.Engine`, kept apart
so that each module holds one concern.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from orchestrator.errors import InvalidRequest, LatmError, PreconditionFailed
from orchestrator.latm.cards import ToolCard
from orchestrator.latm.maker import ToolMaker
from orchestrator.latm.outcomes import Report, Reported, record_report
from orchestrator.latm.progress import Progress
from orchestrator.latm.repair import RepairResult, open_cases, repair, split_suite
from orchestrator.latm.runner import ToolRunner
from orchestrator.latm.user import Answer, UserConfig
from orchestrator.models import ModelAdapter, TokenUsage, usage_scope
from orchestrator.registry import CaseBook, NewCase, Served, StoreLimits, ToolRegistry
from orchestrator.sandboxes import ExecResult, Status

log = logging.getLogger("orchestrator.latm.engine")


class SuiteKeeping:
    """Reported outcomes, failure cases and repairs, for the engine."""

    registry: ToolRegistry
    cases: CaseBook
    maker_model: ModelAdapter | None
    max_attempts: int
    user_config: UserConfig
    repair_after: int  # open cases that start a repair by itself; 0: never
    _served: list[tuple[str, Served]]
    _failures: list[tuple[str, NewCase]]
    _repairs: dict[tuple[str, str], asyncio.Task[RepairResult]]

    if TYPE_CHECKING:  # the engine's own

        def runner(self, tenant: str) -> ToolRunner: ...
        async def with_schema(self, tenant: str, card: ToolCard) -> ToolCard: ...
        async def user_checked(self, tenant: str, card: ToolCard) -> ToolCard: ...
        def forget(self, tenant: str) -> None: ...
        async def flush(self) -> None: ...
        def _flush_later(self) -> None: ...

    async def report(
        self, tenant: str, report: Report, limits: StoreLimits | None = None
    ) -> Reported:
        """Add a reported outcome to its tool's regression suite (within ``limits.cases``;
        an automatic repair it starts publishes within ``limits``).

        Raises:
            RequestNotFound: no tool served the request id in this tenant.
            ToolNotFound: the named tool does not exist.
            InvalidRequest: an incomplete or contradictory report.
        """
        await self.flush()  # a request answered a moment ago is written first
        cases = limits.cases if limits is not None else None
        kept = await asyncio.to_thread(record_report, self.registry, tenant, report, cases)
        repairing = await self._maybe_repair(tenant, kept.case.tool, limits)
        return replace(kept, repairing=repairing)

    async def repair(
        self,
        tenant: str,
        name: str,
        progress: Progress | None = None,
        *,
        limits: StoreLimits | None = None,
    ) -> RepairResult:
        """Give the maker tool ``name`` and its failing cases; publish the new version only
        if it passes the whole suite (else nothing changes and the result says why).

        Raises:
            ToolNotFound: no such tool.
            PreconditionFailed: no case is failing: nothing to repair.
        """
        if self.maker_model is None:
            raise InvalidRequest("this engine has no maker model")
        await self.flush()
        card = await asyncio.to_thread(self.registry.get, tenant, name)
        suite = split_suite(card, await asyncio.to_thread(self.cases.suite, tenant, name))
        if not suite.failing:
            raise PreconditionFailed(
                f"tool {name!r} fails no reported case since version {card.version} was "
                "proven; nothing to repair (report an outcome first)"
            )
        if limits is not None:
            await asyncio.to_thread(self.registry.check_room, tenant, name, limits)
        maker = ToolMaker(
            self.maker_model,
            self.runner(tenant),
            max_attempts=self.max_attempts,
            snap=self.user_config.snap,
        )
        request_id = f"repair-{uuid.uuid4().hex[:12]}"
        with usage_scope(tenant=tenant, request_id=request_id, role="maker", tool=name):
            result = await repair(maker, card, suite, progress)
        if result.card is not None:
            result.card = await self.with_schema(tenant, result.card)
            with usage_scope(tenant=tenant, request_id=request_id, tool=name):
                result.card = await self.user_checked(tenant, result.card)
            result.card = await asyncio.to_thread(
                self.registry.publish, tenant, result.card, limits
            )
            self.forget(tenant)
            await asyncio.to_thread(
                self.record_maker, tenant, result.card, result.usage, result.wall_s
            )
        return result

    async def _maybe_repair(
        self, tenant: str, name: str, limits: StoreLimits | None = None
    ) -> bool:
        """Start a repair of ``name`` in the background when its open cases reach the
        ``repair_after`` setting (one at a time per tool); whether one is running."""
        key = (tenant, name)
        running = self._repairs.get(key)
        if running is not None and not running.done():
            return True
        if not self.repair_after or self.maker_model is None:
            return False
        card = await asyncio.to_thread(self.registry.get, tenant, name)
        cases = await asyncio.to_thread(self.cases.suite, tenant, name)
        if open_cases(card, cases) < self.repair_after:
            return False
        task = asyncio.get_running_loop().create_task(self.repair(tenant, name, limits=limits))
        task.add_done_callback(_repair_done)
        self._repairs[key] = task
        return True

    def _keep_verification(self, tenant: str, card: ToolCard) -> None:
        try:
            self.cases.add_verification(tenant, card)
        except LatmError as exc:  # the tool is published: its suite is read from the card too
            log.warning("tool %s/%s: verification cases not kept: %s", tenant, card.name, exc)

    def _served_with(
        self, tenant: str, request_id: str, card: ToolCard, question: str, answer: Answer
    ) -> None:
        version = card.version or 1
        self._served.append(
            (tenant, Served(request_id, card.name, version, question, answer.answer))
        )
        if answer.error is not None and answer.tool_fault:
            failure = NewCase(card.name, question, "failure", version=version)
            self._failures.append((tenant, replace(failure, request_id=request_id)))

    def _executed(
        self,
        tenant: str,
        request_id: str,
        card: ToolCard,
        arguments: dict[str, Any],
        result: ExecResult,
    ) -> None:
        version = card.version or 1
        given = json.dumps(arguments, ensure_ascii=False, sort_keys=True)
        value = json.dumps(result.value, ensure_ascii=False) if result.status is Status.OK else None
        served = Served(request_id, card.name, version, given, value, kind="arguments")
        self._served.append((tenant, served))
        if result.error is not None and result.error.origin == "tool":
            failure = NewCase(
                card.name,
                given,
                "failure",
                kind="arguments",
                version=version,
                request_id=request_id,
            )
            self._failures.append((tenant, failure))
        self._flush_later()

    def record_maker(self, tenant: str, card: ToolCard, usage: TokenUsage, wall_s: float) -> None:
        """Record the maker's use that made (or repaired) ``card``'s version."""
        self.registry.record_use(
            tenant,
            card.name,
            card.version or 1,
            role="maker",
            ok=True,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cost_usd=usage.cost_usd,
            wall_s=wall_s,
        )

    def running_repair(self, tenant: str, name: str) -> asyncio.Task[RepairResult] | None:
        """The automatic repair of ``name`` under way, if one is."""
        task = self._repairs.get((tenant, name))
        return task if task is not None and not task.done() else None

    async def stop_repairs(self) -> None:
        """Cancel the automatic repairs under way and see them end."""
        running = [task for task in self._repairs.values() if not task.done()]
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        self._repairs.clear()

    async def _flush_outcomes(self) -> None:
        """Write the queued served requests and failure cases (see :meth:`flush`)."""
        served, self._served = self._served, []
        failures, self._failures = self._failures, []
        if served or failures:
            await asyncio.to_thread(self._write_outcomes, served, failures)
            for tenant, name in dict.fromkeys((t, case.tool) for t, case in failures):
                with contextlib.suppress(LatmError):
                    await self._maybe_repair(tenant, name)

    def _write_outcomes(
        self, served: list[tuple[str, Served]], failures: list[tuple[str, NewCase]]
    ) -> None:
        """Record served requests and the tools' faults; what the registry cannot take
        is dropped with a warning (a report of it then finds no request)."""
        for tenant in dict.fromkeys(tenant for tenant, _ in served):
            try:
                self.cases.remember(tenant, [item for t, item in served if t == tenant])
            except LatmError as exc:
                log.warning("could not record served requests of %s: %s", tenant, exc)
        for tenant, case in failures:
            try:
                self.cases.add(tenant, case)
            except LatmError as exc:  # e.g. the suite is full: the fault is only logged
                log.warning("tool %s/%s: failure case not kept: %s", tenant, case.tool, exc)


def _repair_done(task: asyncio.Task[RepairResult]) -> None:
    if task.cancelled():
        return
    error = task.exception()
    if error is not None:
        log.warning("automatic repair failed: %s", error)
    elif task.result().card is None:
        log.info("automatic repair of %s refused: %s", task.result().tool, task.result().reason)
