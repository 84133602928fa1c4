"""The warm pool's rules, with members that are plain objects (no Docker needed):
the rules are the pool's own logic, the real containers are covered in integration."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import pytest

from orchestrator.errors import PoolExhausted, SandboxUnavailable
from orchestrator.sandboxes.pool import PoolConfig, WarmPool


class Member:
    ids = itertools.count(1)

    def __init__(self) -> None:
        self.id = next(self.ids)
        self.uses = 0
        self.alive = True


class Factory:
    def __init__(self, start_s: float = 0.0, fail: bool = False) -> None:
        self.start_s = start_s
        self.fail = fail
        self.created: list[Member] = []
        self.destroyed: list[Member] = []

    async def create(self) -> Member:
        await asyncio.sleep(self.start_s)
        if self.fail:
            raise SandboxUnavailable("cannot start")
        member = Member()
        self.created.append(member)
        return member

    async def destroy(self, member: Member) -> None:
        member.alive = False
        self.destroyed.append(member)

    async def healthy(self, member: Member) -> bool:
        return member.alive

    def pool(self, **config: Any) -> WarmPool[Member]:
        return WarmPool("test", PoolConfig(**config), self.create, self.destroy, self.healthy)


async def until(condition: Any, timeout_s: float = 5.0) -> None:
    """Let the loop run until ``condition()`` holds; fail after ``timeout_s``."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition never held"
        await asyncio.sleep(0.005)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_min_idle_members_are_started_ahead() -> None:
    factory = Factory()
    pool = factory.pool(min_idle=2, max_size=3)
    await settle()
    assert pool.idle == 2
    member = await pool.acquire()
    assert member in factory.created
    await settle()
    assert pool.idle == 2  # refilled after the acquire
    assert pool.size == 3
    await pool.close()


async def test_exhausted_pool_fails_at_the_deadline_and_never_hangs() -> None:
    factory = Factory()
    pool = factory.pool(min_idle=0, max_size=1)
    held = await pool.acquire()
    started = time.monotonic()
    with pytest.raises(PoolExhausted, match="pool exhausted: all 1 sandboxes"):
        await pool.acquire(timeout_s=0.2)
    assert 0.15 < time.monotonic() - started < 1.0
    assert pool.stats.exhausted == 1
    waiter = asyncio.ensure_future(pool.acquire(timeout_s=2))
    await asyncio.sleep(0.05)
    await pool.release(held, faulted=False)
    assert await waiter is held  # a waiter is woken by a release
    await pool.close()


async def test_a_faulted_member_is_destroyed_never_reused() -> None:
    factory = Factory()
    pool = factory.pool(min_idle=0, max_size=2)
    member = await pool.acquire()
    await pool.release(member, faulted=True)
    await settle()
    assert factory.destroyed == [member]
    again = await pool.acquire()
    assert again is not member
    assert pool.stats.faults == 1
    await pool.close()


async def test_members_are_retired_after_max_uses() -> None:
    factory = Factory()
    pool = factory.pool(min_idle=0, max_size=1, max_uses=2)
    member = await pool.acquire()
    member.uses = 2
    await pool.release(member, faulted=False)
    await settle()
    assert factory.destroyed == [member]
    assert pool.stats.reasons == {"max uses": 1}
    await pool.close()


async def test_idle_too_long_and_unhealthy_members_are_replaced() -> None:
    factory = Factory()
    pool = factory.pool(min_idle=1, max_size=2, max_idle_s=0.1, health_interval_s=60)
    await settle()
    (first,) = factory.created
    await asyncio.sleep(0.15)
    await pool.check_idle()
    # The pool's own maintenance pass also runs every 50 ms here (max_idle_s / 2): wait
    # for the outcome rather than a fixed number of loop turns.
    await until(lambda: first in factory.destroyed and pool.idle == 1)
    second = factory.created[-1]
    second.alive = False  # its container died
    await pool.check_idle()
    await until(lambda: second in factory.destroyed and pool.idle == 1)
    assert pool.stats.health_failures >= 1
    await pool.close()


async def test_a_failed_start_is_reported_and_frees_its_slot() -> None:
    factory = Factory(fail=True)
    pool = factory.pool(min_idle=0, max_size=1)
    with pytest.raises(SandboxUnavailable, match="cannot start"):
        await pool.acquire()
    assert pool.size == 0
    factory.fail = False
    assert await pool.acquire()
    await pool.close()


async def test_concurrent_acquires_never_exceed_max_size() -> None:
    factory = Factory(start_s=0.01)
    pool = factory.pool(min_idle=0, max_size=3, acquire_timeout_s=5)

    async def use(i: int) -> int:
        member = await pool.acquire()
        assert pool.size <= 3
        await asyncio.sleep(0.01)
        await pool.release(member, faulted=i % 4 == 0)
        return member.id

    await asyncio.gather(*(use(i) for i in range(30)))
    assert len(factory.created) - len(factory.destroyed) <= 3
    await pool.close()
    assert sorted(m.id for m in factory.destroyed) == sorted(m.id for m in factory.created)


async def test_a_health_check_pass_never_lets_the_pool_grow_beyond_max_size() -> None:
    """Found by bench/soak.py: the members under check were not counted, so calls
    arriving meanwhile started more, and the pool kept them all."""

    class SlowCheck(Factory):
        async def healthy(self, member: Member) -> bool:
            await asyncio.sleep(0.05)
            return member.alive

    factory = SlowCheck()
    pool = factory.pool(min_idle=2, max_size=2, health_interval_s=60)
    await settle()
    check = asyncio.ensure_future(pool.check_idle())
    await settle()  # the pass is under way
    held = await asyncio.gather(pool.acquire(timeout_s=1), pool.acquire(timeout_s=1))
    await check
    assert pool.size == 2
    assert len(factory.created) == 2
    for member in held:
        await pool.release(member, faulted=False)
    assert pool.idle == 2
    await pool.close()


async def test_close_during_a_health_check_pass_destroys_the_members_under_check() -> None:
    gate = asyncio.Event()

    class StuckCheck(Factory):
        async def healthy(self, member: Member) -> bool:
            await gate.wait()
            return member.alive

    factory = StuckCheck()
    pool = factory.pool(min_idle=2, max_size=2, health_interval_s=60)
    await settle()
    check = asyncio.ensure_future(pool.check_idle())
    await settle()
    await pool.close()
    gate.set()
    await check
    assert sorted(m.id for m in factory.destroyed) == sorted(m.id for m in factory.created)
    assert len(factory.destroyed) == 2  # each once
    assert pool.idle == 0


async def test_a_start_whose_caller_is_cancelled_joins_the_pool() -> None:
    """Found by bench/soak.py: a call cancelled while its member was starting (a client's
    deadline) left the container the Docker SDK went on starting in its thread outside
    the pool, running until shutdown."""

    class ThreadedStart(Factory):
        async def create(self) -> Member:  # like the Docker SDK: the work is in a thread
            return await asyncio.to_thread(self._start)

        def _start(self) -> Member:
            time.sleep(0.1)
            member = Member()
            self.created.append(member)
            return member

    factory = ThreadedStart()
    pool = factory.pool(min_idle=0, max_size=1)
    caller = asyncio.ensure_future(pool.acquire())
    await asyncio.sleep(0.03)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    for _ in range(100):
        if pool.idle:
            break
        await asyncio.sleep(0.02)
    (member,) = factory.created
    assert pool.idle == 1
    assert pool.size == 1
    assert await pool.acquire() is member
    await pool.close()
    assert factory.destroyed == [member]


async def test_close_destroys_busy_and_idle_members_and_refuses_new_acquires() -> None:
    factory = Factory()
    pool = factory.pool(min_idle=1, max_size=2)
    busy = await pool.acquire()
    await settle()
    await pool.close()
    assert busy in factory.destroyed
    assert all(not m.alive for m in factory.created)
    with pytest.raises(SandboxUnavailable, match="closed"):
        await pool.acquire()


def test_config_is_validated() -> None:
    with pytest.raises(ValueError, match="min_idle"):
        PoolConfig(min_idle=3, max_size=2)
    with pytest.raises(ValueError, match="max_uses"):
        PoolConfig(max_uses=0)


async def test_waiting_callers_are_served_in_arrival_order() -> None:
    """A caller that releases and at once asks again queues behind those waiting."""
    factory = Factory()
    pool = factory.pool(min_idle=1, max_size=1)
    await settle()
    holder = await pool.acquire()
    served: list[str] = []

    async def wait_for_turn(name: str) -> None:
        member = await pool.acquire(timeout_s=5)
        served.append(name)
        await pool.release(member, faulted=False)

    first = asyncio.ensure_future(wait_for_turn("first"))
    await settle()
    second = asyncio.ensure_future(wait_for_turn("second"))
    await settle()
    await pool.release(holder, faulted=False)
    await wait_for_turn("again")  # the releaser asks again before the waiters have run
    await asyncio.wait_for(asyncio.gather(first, second), 5)
    assert served == ["first", "second", "again"]
    await pool.close()


async def test_a_waiting_caller_that_gives_up_does_not_block_the_next() -> None:
    factory = Factory()
    pool = factory.pool(min_idle=1, max_size=1)
    await settle()
    holder = await pool.acquire()
    impatient = asyncio.ensure_future(pool.acquire(timeout_s=0.05))
    await settle()
    patient = asyncio.ensure_future(pool.acquire(timeout_s=5))
    with pytest.raises(PoolExhausted):
        await impatient
    await pool.release(holder, faulted=False)
    assert await asyncio.wait_for(patient, 5) is holder
    await pool.close()
