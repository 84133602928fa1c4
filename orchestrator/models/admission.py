"""What a model call must pass before it is sent: the tenant's prompt-token quota, and
(for a local model every tenant shares) a fair turn.

The prompt's tokens are estimated before the call, since the exact count is known only
from the model's reply: one token per three bytes of UTF-8 and four per message, which
over-counts English prose and code (about four bytes a token) so that a prompt refused as
too large really was.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Iterable
from contextvars import ContextVar

from orchestrator.errors import QuotaExceeded
from orchestrator.models.base import Message
from orchestrator.telemetry import MODEL_QUEUE_SECONDS, MODEL_QUEUE_WAITING

BYTES_PER_TOKEN = 3
TOKENS_PER_MESSAGE = 4

_prompt_limit: ContextVar[int | None] = ContextVar("latm_prompt_token_limit", default=None)


def limit_prompt_tokens(limit: int | None) -> None:
    """Hold every model call made from now on in this context (an API call's task, and the
    tasks it starts) to ``limit`` prompt tokens (None: no limit)."""
    _prompt_limit.set(limit)


def estimate_tokens(messages: Iterable[Message]) -> int:
    return sum(
        math.ceil(len(m.content.encode("utf-8", "surrogatepass")) / BYTES_PER_TOKEN)
        + TOKENS_PER_MESSAGE
        for m in messages
    )


def check_prompt(messages: Iterable[Message]) -> None:
    """Refuse a prompt over the limit in force, before anything is sent.

    Raises:
        QuotaExceeded: the estimate is over the limit (no retry hint: it cannot help).
    """
    limit = _prompt_limit.get()
    if limit is None:
        return
    estimate = estimate_tokens(messages)
    if estimate > limit:
        raise QuotaExceeded(
            f"this request would send the model a prompt of about {estimate} tokens, over "
            f"this tenant's quota of {limit} a call; send a shorter question or fewer or "
            "shorter examples"
        )


class FairQueue:
    """Turns at a shared model, handed out round robin across tenants.

    ``slots`` calls run at once; the others wait in one first-in, first-out line per
    tenant, and each freed slot goes to the next tenant in turn that has a call waiting.
    So a tenant's burst of a hundred calls delays another tenant's one call by at most
    one call per tenant ahead of it, not by the whole burst.
    """

    def __init__(self, model: str, slots: int = 1) -> None:
        self.model = model
        self._free = slots
        self._waiting: OrderedDict[str, deque[asyncio.Future[None]]] = OrderedDict()

    @property
    def waiting(self) -> int:
        return sum(len(line) for line in self._waiting.values())

    @contextlib.asynccontextmanager
    async def turn(self, tenant: str) -> AsyncIterator[None]:
        """Hold one slot for the block, after the tenant's fair wait for it."""
        await self._acquire(tenant)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, tenant: str) -> None:
        if self._free > 0 and not self._waiting:
            self._free -= 1
            return
        started = time.perf_counter()
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(tenant, deque()).append(ready)
        MODEL_QUEUE_WAITING.labels(self.model).inc()
        try:
            await ready
        except asyncio.CancelledError:
            if ready.done() and not ready.cancelled():
                self._release()  # handed a slot just as it was cancelled: pass it on
            else:
                self._forget(tenant, ready)
            raise
        finally:
            MODEL_QUEUE_WAITING.labels(self.model).dec()
            MODEL_QUEUE_SECONDS.labels(self.model).observe(time.perf_counter() - started)

    def _forget(self, tenant: str, ready: asyncio.Future[None]) -> None:
        line = self._waiting.get(tenant)
        if line is not None and ready in line:
            line.remove(ready)
            if not line:
                del self._waiting[tenant]

    def _release(self) -> None:
        """Give the freed slot to the next tenant in turn, or keep it free."""
        while self._waiting:
            tenant, line = next(iter(self._waiting.items()))
            ready = line.popleft()
            if line:
                self._waiting.move_to_end(tenant)  # its next call waits for the others
            else:
                del self._waiting[tenant]
            if not ready.done():
                ready.set_result(None)
                return
        self._free += 1
