"""Token and cost accounting: per request, per tool and per tenant.

The engine opens a :func:`usage_scope` around each piece of work; every completion made inside
it through a :class:`MeteredModel` is added to the ledger under that scope's tenant, tool and
request. The ledger is in memory; the registry persists it.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from orchestrator.models.admission import check_prompt
from orchestrator.models.base import ChatParams, Completion, Message, ModelAdapter, RawCompletion
from orchestrator.telemetry import MODEL_COST, MODEL_SECONDS, MODEL_TOKENS, tracer

DEFAULT_TENANT = "default"


@dataclass(frozen=True)
class UsageScope:
    """Who a completion is billed to."""

    tenant: str = DEFAULT_TENANT
    tool: str | None = None
    request_id: str | None = None
    role: str | None = None  # maker, user or dispatcher


@dataclass(frozen=True)
class UsageTotals:
    """Sums over a set of completions."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    unpriced_calls: int = 0  # completions of models with no known price (counted as $0)

    def add(self, completion: Completion) -> UsageTotals:
        return UsageTotals(
            calls=self.calls + 1,
            prompt_tokens=self.prompt_tokens + completion.usage.prompt_tokens,
            completion_tokens=self.completion_tokens + completion.usage.completion_tokens,
            cost_usd=self.cost_usd + completion.usage.cost_usd,
            unpriced_calls=self.unpriced_calls + (not completion.priced),
        )

    def to_dict(self) -> dict[str, float | int]:
        return {
            "calls": self.calls,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "cost_usd": round(self.cost_usd, 8),
            "unpriced_calls": self.unpriced_calls,
        }


_scope: contextvars.ContextVar[UsageScope | None] = contextvars.ContextVar(
    "latm_usage_scope", default=None
)


def current_scope() -> UsageScope:
    return _scope.get() or UsageScope()


@contextlib.contextmanager
def usage_scope(
    *,
    tenant: str | None = None,
    tool: str | None = None,
    request_id: str | None = None,
    role: str | None = None,
) -> Iterator[UsageScope]:
    """Bill completions in this block to ``tenant``/``tool``/``request_id``/``role``.

    Unset fields are inherited from the enclosing scope, so a request scope can be narrowed
    to a tool inside it.
    """
    outer = current_scope()
    scope = replace(
        outer,
        **{
            key: value
            for key, value in (
                ("tenant", tenant),
                ("tool", tool),
                ("request_id", request_id),
                ("role", role),
            )
            if value is not None
        },
    )
    token = _scope.set(scope)
    try:
        yield scope
    finally:
        _scope.reset(token)


class UsageLedger:
    """Thread-safe running totals. Per-request totals keep the latest ``max_requests``."""

    def __init__(self, max_requests: int = 10_000) -> None:
        self._lock = threading.Lock()
        self._tenants: dict[str, UsageTotals] = {}
        self._tools: dict[tuple[str, str], UsageTotals] = {}
        self._requests: OrderedDict[str, UsageTotals] = OrderedDict()
        self._max_requests = max_requests
        self._listeners: list[Callable[[Completion, UsageScope], None]] = []

    def subscribe(self, listener: Callable[[Completion, UsageScope], None]) -> None:
        """Call ``listener`` with every completion recorded from now on, and its scope."""
        self._listeners.append(listener)

    def record(self, completion: Completion, scope: UsageScope | None = None) -> None:
        scope = scope or current_scope()
        for listener in self._listeners:
            listener(completion, scope)
        with self._lock:
            self._tenants[scope.tenant] = self._tenants.get(scope.tenant, UsageTotals()).add(
                completion
            )
            if scope.tool is not None:
                key = (scope.tenant, scope.tool)
                self._tools[key] = self._tools.get(key, UsageTotals()).add(completion)
            if scope.request_id is not None:
                totals = self._requests.pop(scope.request_id, UsageTotals())
                self._requests[scope.request_id] = totals.add(completion)
                while len(self._requests) > self._max_requests:
                    self._requests.popitem(last=False)

    def for_tenant(self, tenant: str) -> UsageTotals:
        with self._lock:
            return self._tenants.get(tenant, UsageTotals())

    def for_tool(self, tenant: str, tool: str) -> UsageTotals:
        with self._lock:
            return self._tools.get((tenant, tool), UsageTotals())

    def for_request(self, request_id: str) -> UsageTotals:
        with self._lock:
            return self._requests.get(request_id, UsageTotals())

    def snapshot(self) -> dict[str, object]:
        """Everything, as plain data (tenants, then tools by tenant)."""
        with self._lock:
            return {
                "tenants": {name: t.to_dict() for name, t in sorted(self._tenants.items())},
                "tools": {
                    f"{tenant}/{tool}": t.to_dict()
                    for (tenant, tool), t in sorted(self._tools.items())
                },
            }


class MeteredModel(ModelAdapter):
    """Wraps an adapter; every completion is recorded in the ledger under the current scope."""

    def __init__(self, inner: ModelAdapter, ledger: UsageLedger) -> None:
        super().__init__(inner.spec, prices=None)
        self.inner = inner
        self.ledger = ledger
        self.samples = inner.samples

    async def complete(
        self, messages: list[Message] | tuple[Message, ...], params: ChatParams | None = None
    ) -> Completion:
        model = str(self.inner.spec)
        check_prompt(messages)
        with tracer.start_as_current_span("model.complete") as span:
            span.set_attribute("latm.model", model)
            span.set_attribute("latm.role", current_scope().role or "")
            completion = await self.inner.complete(messages, params)
            span.set_attribute("latm.prompt_tokens", completion.usage.prompt_tokens)
            span.set_attribute("latm.completion_tokens", completion.usage.completion_tokens)
        MODEL_TOKENS.labels(model, "prompt").inc(completion.usage.prompt_tokens)
        MODEL_TOKENS.labels(model, "completion").inc(completion.usage.completion_tokens)
        MODEL_COST.labels(model).inc(completion.usage.cost_usd)
        MODEL_SECONDS.labels(model).observe(completion.latency_s)
        self.ledger.record(completion)
        return completion

    async def _complete(self, messages: list[Message], params: ChatParams) -> RawCompletion:
        raise NotImplementedError  # complete() delegates whole

    async def aclose(self) -> None:
        await self.inner.aclose()
