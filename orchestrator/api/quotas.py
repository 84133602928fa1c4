"""Per-tenant quotas, enforced without waiting.

A request over a quota is refused at once with :class:`QuotaExceeded` and a retry hint;
nothing queues, so a tenant at its limit never makes a caller hang.

:class:`QuotaGate` is the interface: a per-minute request allowance (a token bucket) and
concurrency slots. :class:`MemoryQuotaGate` keeps them in the serving process, which is
right for one process (SQLite); :class:`orchestrator.api.shared_quotas.SharedQuotaGate`
keeps them in PostgreSQL, shared by every replica.
"""

from __future__ import annotations

import abc
import contextlib
import math
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass

from orchestrator.errors import InvalidRequest, QuotaExceeded
from orchestrator.registry.tenants import Quotas
from sandbox.limits import MIN_MEMORY_MB

# A refused concurrent call is retried after this long: slots free up as calls finish.
CONCURRENCY_RETRY_S = 0.05
MAKE_RETRY_S = 1.0
EXECUTIONS, MAKES = "executions", "makes"
_WHAT = {EXECUTIONS: ("calls", CONCURRENCY_RETRY_S), MAKES: ("tool-making jobs", MAKE_RETRY_S)}


def over_rate(tenant: str, quotas: Quotas, tokens: float) -> QuotaExceeded:
    """The refusal of a request when the tenant's bucket holds ``tokens`` (< 1)."""
    rate = quotas.requests_per_minute / 60.0
    wait = (1.0 - tokens) / rate
    return QuotaExceeded(
        f"tenant {tenant!r} is over its quota of {quotas.requests_per_minute} requests "
        f"a minute; retry in {wait:.2f} s",
        retry_after_s=math.ceil(wait * 1000) / 1000,
    )


def over_slots(tenant: str, kind: str, running: int) -> QuotaExceeded:
    """The refusal of a call when ``running`` of the tenant's ``kind`` fill its slots."""
    what, retry_s = _WHAT[kind]
    return QuotaExceeded(
        f"tenant {tenant!r} already has {running} {what} running, its quota; "
        "retry when one finishes",
        retry_after_s=retry_s,
    )


class QuotaGate(abc.ABC):
    """Counts each tenant's requests per minute and calls in flight against its quotas.

    Subclasses fill :meth:`admit` and :meth:`_hold`; this base counts the slots this
    process holds (:meth:`in_flight`)."""

    def __init__(self) -> None:
        self._running: dict[str, Counter[str]] = {}

    async def start(self) -> None:  # noqa: B027 - a hook: most gates need no start
        """Begin any background work (renewing shared leases)."""

    async def close(self) -> None:  # noqa: B027 - a hook: most gates hold nothing
        """End background work and give back whatever this process still holds."""

    @abc.abstractmethod
    async def admit(self, tenant: str, quotas: Quotas) -> None:
        """Take one request from the tenant's per-minute allowance.

        Raises:
            QuotaExceeded: the allowance is spent; the hint says when one request is back.
        """

    @abc.abstractmethod
    def _hold(
        self, tenant: str, kind: str, limit: int
    ) -> contextlib.AbstractAsyncContextManager[None]:
        """Hold one of ``limit`` slots of ``kind`` for the block, or raise QuotaExceeded."""

    def execution(
        self, tenant: str, quotas: Quotas
    ) -> contextlib.AbstractAsyncContextManager[None]:
        """Hold one of the tenant's concurrent-execution slots for the block."""
        return self._slot(tenant, EXECUTIONS, quotas.concurrent_executions)

    def making(self, tenant: str, quotas: Quotas) -> contextlib.AbstractAsyncContextManager[None]:
        """Hold one of the tenant's concurrent tool-making slots for the block."""
        return self._slot(tenant, MAKES, quotas.concurrent_makes)

    @contextlib.asynccontextmanager
    async def _slot(self, tenant: str, kind: str, limit: int) -> AsyncIterator[None]:
        async with self._hold(tenant, kind, limit):
            running = self._running.setdefault(tenant, Counter())
            running[kind] += 1
            try:
                yield
            finally:
                running[kind] -= 1

    def in_flight(self, tenant: str) -> tuple[int, int]:
        """(executions, makes) this process runs for ``tenant`` now."""
        running = self._running.get(tenant)
        return (running[EXECUTIONS], running[MAKES]) if running else (0, 0)


@dataclass
class _Bucket:
    """A token bucket holding up to a minute's worth of requests."""

    tokens: float
    updated: float


class MemoryQuotaGate(QuotaGate):
    """The quotas of one serving process, in its memory."""

    def __init__(self) -> None:
        super().__init__()
        self._buckets: dict[str, _Bucket] = {}

    async def admit(self, tenant: str, quotas: Quotas) -> None:
        cap = float(quotas.requests_per_minute)
        now = time.monotonic()
        bucket = self._buckets.setdefault(tenant, _Bucket(tokens=cap, updated=now))
        rate = quotas.requests_per_minute / 60.0
        bucket.tokens = min(cap, bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        if bucket.tokens < 1.0:
            raise over_rate(tenant, quotas, bucket.tokens)
        bucket.tokens -= 1.0

    @contextlib.asynccontextmanager
    async def _hold(self, tenant: str, kind: str, limit: int) -> AsyncIterator[None]:
        running = self.in_flight(tenant)[0 if kind == EXECUTIONS else 1]
        if running >= limit:
            raise over_slots(tenant, kind, running)
        yield


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
