"""A warm pool of sandboxes for one (tenant, image, runtime); a faulted one is never reused.

The pool keeps ``min_idle`` members started ahead of demand and at most
``max_size`` in all. A member is destroyed, and replaced when the pool is below
its minimum, when its last call hit a fault, after ``max_uses`` calls, after
``max_idle_s`` unused, or when its health check fails. Acquisition waits for a
free member until a deadline, then fails with :class:`PoolExhausted`: it never
hangs.

The pool knows nothing of Docker: it is given coroutines that create, destroy and
health-check a member.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from orchestrator.errors import PoolExhausted, SandboxUnavailable

log = logging.getLogger(__name__)


class Member(Protocol):
    uses: int


M = TypeVar("M", bound=Member)


class PoolConfig(BaseModel):
    """A pool's sizes and its members' lifetime; the settings' ``docker.pool`` group."""

    model_config = ConfigDict(frozen=True)

    min_idle: int = Field(default=1, ge=0, le=64, description="warm members kept idle")
    max_size: int = Field(default=4, ge=1, le=256, description="members of the pool in all")
    max_uses: int = Field(default=200, ge=1, description="calls before a member is replaced")
    max_idle_s: float = Field(default=300.0, gt=0, description="idle age before removal")
    acquire_timeout_s: float = Field(
        default=30.0, gt=0, description="wait for a free member before 'pool exhausted'"
    )
    health_interval_s: float = Field(
        default=15.0, gt=0, description="time between health checks of idle members"
    )

    @model_validator(mode="after")
    def _sizes_fit(self) -> PoolConfig:
        if self.min_idle > self.max_size:
            raise ValueError("need 0 <= min_idle <= max_size and max_size >= 1")
        return self


@dataclass
class PoolStats:
    created: int = 0
    destroyed: int = 0
    faults: int = 0
    create_failures: int = 0
    health_failures: int = 0
    exhausted: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


class WarmPool(Generic[M]):
    def __init__(
        self,
        key: str,
        config: PoolConfig,
        create: Callable[[], Awaitable[M]],
        destroy: Callable[[M], Awaitable[None]],
        healthy: Callable[[M], Awaitable[bool]],
    ) -> None:
        self.key = key
        self.config = config
        self._create = create
        self._destroy = destroy
        self._healthy = healthy
        self._idle: list[tuple[M, float]] = []  # (member, last released), oldest first
        self._busy: list[M] = []
        self._checking: list[M] = []  # idle members out for a health check: still counted
        self._creating = 0
        self._queue: deque[object] = deque()  # waiting acquisitions, in arrival order
        self._changed = asyncio.Condition()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        self.stats = PoolStats()
        self._maintainer = self._spawn(self._maintain())

    @property
    def size(self) -> int:
        return len(self._idle) + len(self._busy) + len(self._checking) + self._creating

    @property
    def idle(self) -> int:
        return len(self._idle)

    @property
    def busy(self) -> int:
        return len(self._busy)

    def members(self) -> list[M]:
        return [m for m, _ in self._idle] + self._busy + self._checking

    async def acquire(self, timeout_s: float | None = None) -> M:
        """A member for one call; waits for a free one until the deadline.

        Waiting callers are served first come, first served: a caller that has just
        released a member and asks again queues behind those already waiting, so under
        load no caller waits through more than its turn.
        """
        timeout_s = self.config.acquire_timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + timeout_s
        turn = object()
        async with self._changed:
            self._queue.append(turn)
            try:
                while True:
                    if self._closed:
                        raise SandboxUnavailable(f"pool {self.key} is closed")
                    if self._queue[0] is turn:
                        if self._idle:
                            # Least recently released first: calls rotate over the idle
                            # members, so each refills its spare workers while others serve.
                            member, _ = self._idle.pop(0)
                            self._busy.append(member)
                            self._refill()
                            return member
                        if self.size < self.config.max_size:
                            self._creating += 1
                            break
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        self.stats.exhausted += 1
                        raise PoolExhausted.for_pool(self.key, self.config.max_size, timeout_s)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._changed.wait(), remaining)
            finally:
                # Served, timed out or cancelled: the next in line may go.
                self._queue.remove(turn)
                self._changed.notify_all()
        # The start belongs to the pool, not to this caller: a caller cancelled meanwhile
        # (its deadline, or its client gone) must not abandon a half-started member (a
        # container the Docker SDK goes on starting in its thread) outside the pool.
        started = self._spawn(self._create_counted())
        try:
            member = await asyncio.shield(started)
        except asyncio.CancelledError:
            self._spawn(self._adopt(started))
            raise
        if self._closed:
            self._spawn(self._destroy_member(member, "pool closed"))
            raise SandboxUnavailable(f"pool {self.key} is closed")
        self._busy.append(member)  # no await since the start: no cancellation in between
        return member

    async def _adopt(self, started: asyncio.Task[M]) -> None:
        """The member of a start whose caller went away joins the idle ones."""
        try:
            member = await started
        except Exception as exc:  # noqa: BLE001 - logged; no caller waits for it any more
            log.warning("pool %s: could not start a member: %s", self.key, exc)
            return
        async with self._changed:
            if self._closed:
                self._spawn(self._destroy_member(member, "pool closed"))
                return
            self._idle.append((member, time.monotonic()))
            self._changed.notify_all()

    async def release(self, member: M, faulted: bool) -> None:
        """Give a member back; a faulted or worn-out one is destroyed, never reused."""
        async with self._changed:
            if member not in self._busy:
                return
            self._busy.remove(member)
            reason = ""
            if faulted:
                reason = "fault"
                self.stats.faults += 1
            elif member.uses >= self.config.max_uses:
                reason = "max uses"
            elif self._closed:
                reason = "pool closed"
            if reason:
                self._spawn(self._destroy_member(member, reason))
                self._refill()
            else:
                self._idle.append((member, time.monotonic()))
            self._changed.notify_all()

    async def _create_counted(self) -> M:
        try:
            member = await self._create()
        except BaseException:
            async with self._changed:
                self._creating -= 1
                self.stats.create_failures += 1
                self._changed.notify_all()
            raise
        async with self._changed:
            self._creating -= 1
            self.stats.created += 1
        return member

    def _refill(self) -> None:
        """Start members until ``min_idle`` are idle or starting (caller holds the lock)."""
        if self._closed:
            return
        missing = self.config.min_idle - len(self._idle) - len(self._checking) - self._creating
        for _ in range(min(missing, self.config.max_size - self.size)):
            self._creating += 1
            self._spawn(self._add_idle())

    async def _add_idle(self) -> None:
        try:
            member = await self._create_counted()
        except Exception as exc:  # noqa: BLE001 - logged; the next pass retries
            log.warning("pool %s: could not start a member: %s", self.key, exc)
            return
        async with self._changed:
            if self._closed:
                self._spawn(self._destroy_member(member, "pool closed"))
                return
            self._idle.append((member, time.monotonic()))
            self._changed.notify_all()

    async def _destroy_member(self, member: M, reason: str) -> None:
        self.stats.destroyed += 1
        self.stats.reasons[reason] = self.stats.reasons.get(reason, 0) + 1
        log.info("pool %s: destroying a member (%s)", self.key, reason)
        try:
            await self._destroy(member)
        except Exception as exc:  # noqa: BLE001 - a failed removal must not stop the pool
            log.warning("pool %s: could not destroy a member: %s", self.key, exc)

    async def _maintain(self) -> None:
        """Evict idle members that are too old or unhealthy; keep the minimum warm."""
        interval = max(0.05, min(self.config.health_interval_s, self.config.max_idle_s / 2))
        async with self._changed:
            self._refill()
        while not self._closed:
            await asyncio.sleep(interval)
            await self.check_idle()

    async def check_idle(self) -> None:
        """One maintenance pass (also callable directly, e.g. by tests).

        The idle members are checked at once. While under check they stay counted in the
        pool's size, so an acquisition meanwhile waits, or starts a member only within
        ``max_size``, never one beyond it.
        """
        now = time.monotonic()
        async with self._changed:
            candidates = list(self._idle)
            self._idle.clear()
            self._checking += [member for member, _ in candidates]
        reasons: list[str] = [""] * len(candidates)  # kept as they were if interrupted
        try:
            reasons = await asyncio.gather(*(self._verdict(m, t, now) for m, t in candidates))
        finally:
            async with self._changed:
                checked = {id(member) for member, _ in candidates}
                self._checking = [m for m in self._checking if id(m) not in checked]
                if not self._closed:  # else close() destroyed them
                    verdicts = list(zip(candidates, reasons, strict=True))
                    self._idle[:0] = [item for item, why in verdicts if not why]
                    for (member, _), why in verdicts:
                        if why:
                            self._spawn(self._destroy_member(member, why))
                    self._refill()
                self._changed.notify_all()

    async def _verdict(self, member: M, released: float, now: float) -> str:
        """Why an idle member must go ('' when it stays)."""
        if now - released > self.config.max_idle_s:
            return "idle too long"
        if not await self._healthy(member):
            self.stats.health_failures += 1
            return "health check failed"
        return ""

    def _spawn(self, coroutine: Awaitable[Any]) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def close(self) -> None:
        """Destroy every member, busy ones included; wait for starts in flight."""
        async with self._changed:
            self._closed = True
            members = self.members()
            self._idle.clear()
            self._busy.clear()
            self._checking.clear()
            self._changed.notify_all()
        self._maintainer.cancel()
        for member in members:
            self._spawn(self._destroy_member(member, "pool closed"))
        while self._tasks - {self._maintainer}:
            await asyncio.gather(*(self._tasks - {self._maintainer}), return_exceptions=True)
        with contextlib.suppress(asyncio.CancelledError):
            await self._maintainer
