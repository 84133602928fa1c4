"""The LATM engine: make tools, dispatch requests to them, answer with them.

It ties the roles (maker, user, dispatcher models), the sandbox backend and the registry
together, bills every completion to the right tenant, tool and request, and records tool use.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from orchestrator.config import Settings
from orchestrator.errors import (
    InvalidRequest,
    LatmError,
    RegistryUnavailable,
    ToolNotFound,
)
from orchestrator.latm._suites import SuiteKeeping
from orchestrator.latm.card_cache import CardCache
from orchestrator.latm.cards import ToolCard
from orchestrator.latm.dispatcher import Dispatcher, ToolEntry
from orchestrator.latm.imports import reverified
from orchestrator.latm.maker import MakeResult, ToolMaker
from orchestrator.latm.progress import Progress
from orchestrator.latm.repair import RepairResult
from orchestrator.latm.runner import ToolRunner
from orchestrator.latm.schemas import checked_schema
from orchestrator.latm.tasks import Split, Task
from orchestrator.latm.user import (
    Answer,
    ToolUser,
    UserConfig,
    chain_of_thought,
    check_user,
    needs_stronger,
)
from orchestrator.models import MeteredModel, ModelAdapter, TokenUsage, UsageLedger, usage_scope
from orchestrator.models.deferred import DeferredModel
from orchestrator.registry import (
    CaseBook,
    NewCase,
    Served,
    StoreLimits,
    ToolRegistry,
    ToolSummary,
    check_card,
)
from orchestrator.sandboxes import ExecRequest, ExecResult, SandboxBackend, Status

log = logging.getLogger(__name__)
FLUSH_DELAY_S = 0.2  # tool uses are written in batches, this long after the first
FLUSH_RETRY_S = 2.0  # and tried again this often while the registry cannot take them
PENDING_MAX = 100_000  # tool uses kept for a registry that is down
LATEST_TTL_S = 2.0  # how long "the latest version of a tool" is taken from the cache
CARDS_CACHED = 10_000
CARD_CACHE_MAX_BYTES = 64 * 1024 * 1024  # the cards kept in memory, whatever their count


@dataclass
class Solved:
    """The answer to one request, the route taken, and its cost by role."""

    question: str
    answer: str | None
    route: str  # "tool" or "direct" (chain of thought: no tool fitted)
    tool: str | None = None
    version: int | None = None
    call: str | None = None
    error: str | None = None
    request_id: str = ""
    usage: dict[str, TokenUsage] = field(default_factory=dict)  # by role
    wall_s: float = 0.0
    # The share of the tool calls that ran which gave this answer (None: no tool call).
    confidence: float | None = None
    # How sure the dispatcher was of the route, 0 to 1 (None: a named tool, no tools, or
    # no usage demos to weigh), and what decided it (see dispatcher.Choice).
    route_confidence: float | None = None
    routed_by: str | None = None
    # The user model answered with doubt and the stronger (maker) model was asked too.
    escalated: bool = False
    answered_by: str | None = None  # the spec of the model whose call gave the answer

    @property
    def cost_usd(self) -> float:
        return sum(usage.cost_usd for usage in self.usage.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "answer": self.answer,
            "tool": self.tool,
            "version": self.version,
            "route": self.route,
            "call": self.call,
            "error": self.error,
            "confidence": self.confidence,
            "route_confidence": self.route_confidence,
            "routed_by": self.routed_by,
            "escalated": self.escalated,
            "answered_by": self.answered_by,
            "request_id": self.request_id,
            "usage": {role: usage.to_dict() for role, usage in self.usage.items()},
            "cost_usd": round(self.cost_usd, 8),
            "wall_s": round(self.wall_s, 4),
        }


class Engine(SuiteKeeping):
    """One deployment's engine: shared by tenants, which never see each other's tools."""

    def __init__(
        self,
        *,
        backend: SandboxBackend,
        registry: ToolRegistry,
        user: ModelAdapter,
        maker: ModelAdapter | None = None,
        dispatcher: ModelAdapter | None = None,
        stronger: ModelAdapter | None = None,
        ledger: UsageLedger | None = None,
        max_attempts: int = 3,
        user_config: UserConfig | None = None,
        maker_candidates: int | None = None,
        repair_after: int | None = None,
    ) -> None:
        self.backend = backend
        self.registry = registry
        self.cases = CaseBook(registry)
        settings = Settings()
        # Repair a tool by itself after this many open cases (0: never).
        self.repair_after = settings.repair_after_failures if repair_after is None else repair_after
        self.ledger = ledger or UsageLedger()
        # Every completion is billed to the tenant, tool and request in scope when it is made.
        self.user_model = _metered(user, self.ledger)
        self.maker_model = _metered(maker, self.ledger) if maker else None
        # The model a tool is handed to when the user model fails its check, and that
        # doubtful answers escalate to: LATM_USER_STRONGER_MODEL, else the maker model.
        self.stronger_model = _metered(stronger, self.ledger) if stronger else self.maker_model
        self.dispatcher = Dispatcher(
            _metered(dispatcher, self.ledger) if dispatcher else self.user_model
        )
        self.max_attempts = max_attempts
        # Candidate tools per making: LATM_MAKER_CANDIDATES unless given; a maker that
        # replays a script rather than sampling makes one (another would be its next reply).
        # A sampling maker's candidate gets LATM_MAKER_REPAIRS replies of feedback while
        # proposing; a replay gets max_attempts per stage.
        sampling = self.maker_model is not None and self.maker_model.samples
        if maker_candidates is None:
            maker_candidates = settings.maker_candidates if sampling else 1
        self.maker_candidates = maker_candidates
        self.maker_repairs = settings.maker_repairs if sampling else None
        self.maker_varied_demos = settings.maker_varied_demos
        self.user_config = user_config or UserConfig()
        self._tools: dict[str, tuple[object, list[ToolSummary]]] = {}
        self._cards = CardCache(CARD_CACHE_MAX_BYTES, CARDS_CACHED)
        self._schemas: dict[tuple[str, str, str], dict[str, Any] | None] = {}
        self._pending: list[dict[str, Any]] = []
        self._served: list[tuple[str, Served]] = []  # requests served, for reports
        self._failures: list[tuple[str, NewCase]] = []  # the tools' own faults, as cases
        self._repairs: dict[tuple[str, str], asyncio.Task[RepairResult]] = {}  # automatic
        self._flusher: asyncio.Task[None] | None = None

    def runner(self, tenant: str) -> ToolRunner:
        return ToolRunner(self.backend, tenant)

    def tool_user(
        self, tenant: str, config: UserConfig | None = None, card: ToolCard | None = None
    ) -> ToolUser:
        """The tool user for ``card``: the user model, or the stronger model for a tool
        whose user check the user model failed (see :func:`check_user`)."""
        light, stronger = self.user_model, self.stronger_model
        if card is not None and stronger and needs_stronger(card, light.spec) and _opens(stronger):
            # Handed on, with no one above to escalate to. (A stronger model not fetched yet:
            # the user model does its best meanwhile.)
            light, stronger = stronger, None
        return ToolUser(
            light, self.runner(tenant), config=config or self.user_config, stronger=stronger
        )

    async def user_checked(self, tenant: str, card: ToolCard) -> ToolCard:
        """``card`` with its user check (``LATM_USER_CHECK``), or without one. A check is
        made only where a tool could be handed on: to a stronger model that is not the user
        model and not a replay of a script (whose replies are the next ones, whatever asks)."""
        verification = card.verification.model_copy(update={"user": None})
        stronger = self.stronger_model
        if (
            self.user_config.check
            and stronger is not None
            and stronger.samples
            and stronger.spec != self.user_model.spec
        ):
            plain = replace(self.user_config, escalate=False, samples=0)
            user = ToolUser(self.user_model, self.runner(tenant), config=plain)
            try:
                with usage_scope(role="user"):
                    check = await check_user(user, card)
            except LatmError as exc:  # the user model is not there: a verified tool still is
                log.warning("tool %s published without a user check: %s", card.name, exc)
            else:
                verification = verification.model_copy(update={"user": check})
        return card.model_copy(update={"verification": verification})

    async def make(
        self,
        tenant: str,
        task: Task,
        split: Split | None = None,
        progress: Progress | None = None,
        *,
        limits: StoreLimits | None = None,
    ) -> MakeResult:
        """Make, verify and (only when verified) publish a tool for ``task``, within the
        tenant's store ``limits``."""
        if self.maker_model is None:
            raise InvalidRequest("this engine has no maker model")
        maker = ToolMaker(
            self.maker_model,
            self.runner(tenant),
            max_attempts=self.max_attempts,
            candidates=self.maker_candidates,
            repairs=self.maker_repairs,
            varied_demos=self.maker_varied_demos,
            snap=self.user_config.snap,
        )
        request_id = f"make-{uuid.uuid4().hex[:12]}"
        with usage_scope(tenant=tenant, request_id=request_id, role="maker", tool=task.name):
            result = await maker.make(task, split, progress)
        if result.card is not None:
            result.card = await self.with_schema(tenant, result.card)
            with usage_scope(tenant=tenant, request_id=request_id, tool=task.name):
                result.card = await self.user_checked(tenant, result.card)
            result.card = self.registry.publish(tenant, result.card, limits)
            self.forget(tenant)
            self._keep_verification(tenant, result.card)
            self.record_maker(tenant, result.card, result.usage, result.wall_s)
        return result

    async def import_card(
        self, tenant: str, text: str | bytes, limits: StoreLimits | None = None
    ) -> ToolCard:
        """Parse a card, prove it again in the tenant's sandbox, and publish it within the
        tenant's store ``limits`` (see :mod:`orchestrator.latm.imports`). A card over them
        is refused before anything runs."""
        card = ToolCard.from_json(text)
        if limits is not None:
            check_card(card, limits)
            await asyncio.to_thread(self.registry.check_room, tenant, card.name, limits)
        card = await reverified(card, self.runner(tenant))
        # The schema a card brings is the exporter's word: read it again in the sandbox.
        card = await self.with_schema(tenant, card.model_copy(update={"input_schema": None}))
        with usage_scope(tenant=tenant, tool=card.name):  # the exporter's check is its word
            card = await self.user_checked(tenant, card)
        published = await asyncio.to_thread(self.registry.publish, tenant, card, limits)
        self.forget(tenant)
        await asyncio.to_thread(self._keep_verification, tenant, published)
        return published

    async def solve(self, tenant: str, question: str, tool: str | None = None) -> Solved:
        """Answer ``question``: with the named tool, the dispatcher's pick, or directly."""
        started = time.monotonic()
        request_id = uuid.uuid4().hex
        solved = Solved(question=question, answer=None, route="direct", request_id=request_id)
        with usage_scope(tenant=tenant, request_id=request_id):
            card = (
                await self.card(tenant, tool)
                if tool
                else await self._dispatch(tenant, question, solved)
            )
            answer, spent = None, TokenUsage()
            if card is not None:
                with usage_scope(tool=card.name, role="user"):
                    answer = await self.tool_user(tenant, card=card).answer(card, question)
                solved.route = "tool"
                self._served_with(tenant, request_id, card, question, answer)
                self._record(tenant, card, answer, time.monotonic() - started)
                if answer.error is not None and _unsettled(solved):
                    # A route the demos did not settle, whose calls all failed: the
                    # question likely fits no tool. Answer it directly instead.
                    solved.route, spent, answer = "direct", answer.usage, None
            if answer is None:
                with usage_scope(role="user"):
                    answer = await chain_of_thought(self.user_model, question)
                self.registry.add_candidate(tenant, question)
        solved.usage["user"] = spent + answer.usage
        solved.answer, solved.error = answer.answer, answer.error
        if solved.route == "tool":
            solved.tool, solved.version, solved.call = answer.tool, answer.version, answer.call
        solved.confidence, solved.escalated = answer.confidence, answer.escalated
        solved.answered_by = answer.model
        solved.wall_s = time.monotonic() - started
        return solved

    async def execute(
        self,
        tenant: str,
        name: str,
        arguments: dict[str, Any],
        *,
        version: int | None = None,
        timeout_ms: int = 0,
        memory_mb: int = 0,
        request_id: str | None = None,
    ) -> tuple[ToolCard, ExecResult]:
        """Call tool ``name``'s entrypoint with keyword ``arguments`` in the sandbox; with
        a ``request_id``, the call is remembered (for a report of its outcome)."""
        card = await self.card(tenant, name, version)
        request = ExecRequest(
            source=card.source,
            entrypoint=card.entrypoint,
            args=arguments,
            timeout_ms=timeout_ms,
            memory_mb=memory_mb,
        )
        result = await self.backend.execute(tenant, request)
        if request_id is not None:
            self._executed(tenant, request_id, card, arguments, result)
        return card, result

    async def card(self, tenant: str, name: str, version: int | None = None) -> ToolCard:
        """A tool's card, cached: a version never changes, and which version is the latest
        is looked up again after ``LATEST_TTL_S`` (at once after :meth:`forget`)."""
        now = time.monotonic()
        key = (tenant, name, version)
        cached = self._cards.get(key)
        if cached is not None and (version is not None or cached[0] > now):
            return cached[1]
        card = await asyncio.to_thread(self.registry.get, tenant, name, version)
        self._cards.put(key, now + LATEST_TTL_S, card)
        return card

    async def input_schema(self, tenant: str, card: ToolCard) -> dict[str, Any] | None:
        """The JSON Schema of ``card``'s entrypoint parameters: the card's own, or (a card
        made before cards carried one) read in the tenant's sandbox once and remembered.
        None when the sandbox could not read it (the module fails to run)."""
        if card.input_schema is not None:
            return card.input_schema
        key = (tenant, card.sha256, card.entrypoint)
        if key not in self._schemas:
            described = await self.backend.describe(tenant, card.source, card.entrypoint)
            schema = None
            if described.status is Status.OK:
                try:
                    schema = checked_schema(described.input_schema)
                except InvalidRequest as exc:
                    log.warning("tool %s/%s: unusable input schema: %s", tenant, card.name, exc)
            if len(self._schemas) >= CARDS_CACHED:
                self._schemas.clear()
            self._schemas[key] = schema
        return self._schemas[key]

    async def with_schema(self, tenant: str, card: ToolCard) -> ToolCard:
        """``card`` with its input schema read in the sandbox (unchanged when it has one,
        or when the sandbox cannot read it: the schema is then read again when needed)."""
        if card.input_schema is not None:
            return card
        try:
            schema = await self.input_schema(tenant, card)
        except LatmError as exc:  # the tool is verified: a missing schema must not lose it
            log.warning("tool %s/%s: no input schema: %s", tenant, card.name, exc)
            return card
        return card if schema is None else card.model_copy(update={"input_schema": schema})

    def forget(self, tenant: str) -> None:
        """Drop the cached cards of ``tenant`` (after its tools changed)."""
        self._cards.forget(tenant)

    def forget_all(self) -> None:
        """Drop every cached card (changes may have been missed: see
        :mod:`orchestrator.registry.notices`)."""
        self._cards.clear()

    async def _dispatch(self, tenant: str, question: str, solved: Solved) -> ToolCard | None:
        tools = self.tools(tenant)
        if not tools:
            return None
        with usage_scope(role="dispatcher"):
            choice = await self.dispatcher.choose(
                question, tools, lambda shortlist: self.demo_questions(tenant, shortlist)
            )
        solved.usage["dispatcher"] = choice.usage
        solved.route_confidence, solved.routed_by = choice.confidence, choice.by
        if choice.tool is None:
            return None
        return await self.card(tenant, choice.tool)

    async def demo_questions(self, tenant: str, tools: Sequence[ToolEntry]) -> dict[str, list[str]]:
        """The usage-demo questions of each tool (from the card cache); none for a tool
        deleted meanwhile."""
        found: dict[str, list[str]] = {}
        for tool in tools:
            try:
                card = await self.card(tenant, tool.name)
            except ToolNotFound:
                continue
            found[tool.name] = [demo.question for demo in card.usage_demos]
        return found

    def tools(self, tenant: str) -> list[ToolSummary]:
        """The tenant's tools, cached until the registry says they changed."""
        revision = self.registry.revision(tenant)
        cached = self._tools.get(tenant)
        if cached is None or cached[0] != revision:
            cached = (revision, self.registry.list(tenant))
            self._tools[tenant] = cached
        return cached[1]

    def _record(self, tenant: str, card: ToolCard, answer: Answer, wall_s: float) -> None:
        """Queue a tool use; it is written shortly after, off the request's path."""
        self._pending.append(
            {
                "tenant": tenant,
                "name": card.name,
                "version": card.version or 1,
                "role": "user",
                "ok": answer.ok,
                "prompt_tokens": answer.usage.prompt_tokens,
                "completion_tokens": answer.usage.completion_tokens,
                "cost_usd": answer.usage.cost_usd,
                "wall_s": wall_s,
            }
        )
        self._flush_later()

    def _flush_later(self) -> None:
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush_soon())

    async def _flush_soon(self) -> None:
        delay = FLUSH_DELAY_S
        while True:
            await asyncio.sleep(delay)
            await self.flush()
            if not self._pending:
                return
            delay = FLUSH_RETRY_S  # the registry could not take them: try again later

    async def flush(self) -> None:
        """Write the queued tool uses to the registry now; those it cannot take now
        (unreachable, its disk full) stay queued, up to a bound, for the next flush."""
        batch, self._pending = self._pending, []
        if batch:
            unwritten = await asyncio.to_thread(self._write, batch)
            self._pending = (unwritten + self._pending)[-PENDING_MAX:]
        await self._flush_outcomes()

    def _write(self, batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Record ``batch``; return the uses the registry could not take now."""
        for index, use in enumerate(batch):
            fields = dict(use)
            tenant, name, version = fields.pop("tenant"), fields.pop("name"), fields.pop("version")
            try:
                self.registry.record_use(tenant, name, version, **fields)
            except RegistryUnavailable as exc:
                log.warning("could not record %d tool uses yet: %s", len(batch) - index, exc)
                return batch[index:]
            except LatmError as exc:  # e.g. the tool was deleted since: that use is dropped
                log.error("could not record a use of %s/%s: %s", tenant, name, exc)
        return []

    async def aclose(self) -> None:
        """Record pending uses and close the models (a local model's server stops); the
        backend and the registry are the caller's."""
        if self._flusher is not None and not self._flusher.done():
            self._flusher.cancel()
        await self.stop_repairs()
        await self.flush()
        models = (self.user_model, self.maker_model, self.stronger_model, self.dispatcher.model)
        closed: set[int] = set()
        for model in models:
            inner = model.inner if isinstance(model, MeteredModel) else model
            if inner is not None and id(inner) not in closed:
                closed.add(id(inner))
                await inner.aclose()


def _opens(model: ModelAdapter) -> bool:
    """Whether ``model`` can answer now: a deferred one (not fetched) is tried again."""
    inner = model.inner if isinstance(model, MeteredModel) else model
    return not isinstance(inner, DeferredModel) or inner.available


def _metered(model: ModelAdapter, ledger: UsageLedger) -> ModelAdapter:
    return model if isinstance(model, MeteredModel) else MeteredModel(model, ledger)


def _unsettled(solved: Solved) -> bool:
    """Whether the route was the model's pick where the demos were not conclusive."""
    return solved.routed_by == "model" and solved.route_confidence is not None
