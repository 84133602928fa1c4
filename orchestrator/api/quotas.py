"""Per-tenant quotas, enforced in the serving process without waiting.

A request over a quota is refused at once with :class:`QuotaExceeded` and a retry hint;
nothing queues, so a tenant at its limit never makes a caller hang.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from orchestrator.errors import InvalidRequest, QuotaExceeded
from orchestrator.registry.tenants import Quotas
from sandbox.limits import MIN_MEMORY_MB

# A refused concurrent call is retried after this long: slots free up as calls finish.
CONCURRENCY_RETRY_S = 0.05
MAKE_RETRY_S = 1.0


@dataclass
class _Bucket:
    """A token bucket holding up to a minute's worth of requests."""

    tokens: float
    updated: float


@dataclass
class _TenantState:
    bucket: _Bucket
    running: Counter[str] = field(default_factory=Counter)  # calls in flight, by kind


class QuotaGate:
    """Counts each tenant's requests per minute and calls in flight against its quotas."""

    def __init__(self) -> None:
        self._tenants: dict[str, _TenantState] = {}

    def _state(self, tenant: str, quotas: Quotas) -> _TenantState:
        state = self._tenants.get(tenant)
        if state is None:
            bucket = _Bucket(tokens=float(quotas.requests_per_minute), updated=time.monotonic())
            state = _TenantState(bucket)
            self._tenants[tenant] = state
        return state

    def admit(self, tenant: str, quotas: Quotas) -> None:
        """Take one request from the tenant's per-minute allowance.

        Raises:
            QuotaExceeded: the allowance is spent; the hint says when one request is back.
        """
        bucket = self._state(tenant, quotas).bucket
        rate = quotas.requests_per_minute / 60.0
        now = time.monotonic()
        bucket.tokens = min(
            float(quotas.requests_per_minute), bucket.tokens + (now - bucket.updated) * rate
        )
        bucket.updated = now
        if bucket.tokens < 1.0:
            wait = (1.0 - bucket.tokens) / rate
            raise QuotaExceeded(
                f"tenant {tenant!r} is over its quota of {quotas.requests_per_minute} requests "
                f"a minute; retry in {wait:.2f} s",
                retry_after_s=math.ceil(wait * 1000) / 1000,
            )
        bucket.tokens -= 1.0

    def execution(self, tenant: str, quotas: Quotas) -> contextlib.AbstractContextManager[None]:
        """Hold one of the tenant's concurrent-execution slots for the block."""
        limit = quotas.concurrent_executions
        return self._slot(tenant, quotas, "executions", limit, "calls", CONCURRENCY_RETRY_S)

    def making(self, tenant: str, quotas: Quotas) -> contextlib.AbstractContextManager[None]:
        """Hold one of the tenant's concurrent tool-making slots for the block."""
        return self._slot(
            tenant, quotas, "makes", quotas.concurrent_makes, "tool-making jobs", MAKE_RETRY_S
        )

    @contextlib.contextmanager
    def _slot(  # noqa: PLR0917 - one slot's parts
        self, tenant: str, quotas: Quotas, kind: str, limit: int, what: str, retry_s: float
    ) -> Iterator[None]:
        running = self._state(tenant, quotas).running
        if running[kind] >= limit:
            raise QuotaExceeded(
                f"tenant {tenant!r} already has {running[kind]} {what} running, its quota; "
                "retry when one finishes",
                retry_after_s=retry_s,
            )
        running[kind] += 1
        try:
            yield
        finally:
            running[kind] -= 1

    def in_flight(self, tenant: str) -> tuple[int, int]:
        """(executions, makes) running for ``tenant`` now."""
        state = self._tenants.get(tenant)
        return (state.running["executions"], state.running["makes"]) if state else (0, 0)


def check_limits(tenant: str, quotas: Quotas, timeout_ms: int, memory_mb: int) -> None:
    """Refuse sandbox limits above the tenant's quota (zero asks for the default).

    Raises:
        QuotaExceeded: a limit above the quota (no retry hint: retrying cannot help).
    """
    if timeout_ms > quotas.max_timeout_ms:
        raise QuotaExceeded(
            f"timeout_ms {timeout_ms} is above tenant {tenant!r}'s quota of "
            f"{quotas.max_timeout_ms} ms"
        )
    if 0 < memory_mb < MIN_MEMORY_MB:
        raise InvalidRequest(
            f"memory_mb {memory_mb} is below the least a call may have, {MIN_MEMORY_MB} MiB"
        )
    if memory_mb > quotas.max_memory_mb:
        raise QuotaExceeded(
            f"memory_mb {memory_mb} is above tenant {tenant!r}'s quota of "
            f"{quotas.max_memory_mb} MiB"
        )
