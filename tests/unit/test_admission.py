"""What a model call passes before it is sent: the prompt-token quota and fair turns at a
shared local model."""

from __future__ import annotations

import asyncio
import contextvars

import pytest
from prometheus_client import REGISTRY

from orchestrator.errors import QuotaExceeded
from orchestrator.models.admission import (
    FairQueue,
    check_prompt,
    estimate_tokens,
    limit_prompt_tokens,
)
from orchestrator.models.base import Message


def prompt(size: int) -> list[Message]:
    return [Message(role="user", content="x" * size)]


def test_the_estimate_over_counts_rather_than_under() -> None:
    assert estimate_tokens(prompt(300)) == 100 + 4
    assert estimate_tokens(prompt(301)) == 101 + 4
    assert estimate_tokens([Message(role="user", content="é" * 3)]) == 2 + 4  # 6 bytes


def test_a_prompt_over_the_limit_in_force_is_refused_and_one_at_it_passes() -> None:
    def run() -> None:
        check_prompt(prompt(10**6))  # no limit in force
        limit_prompt_tokens(104)
        check_prompt(prompt(300))  # at the limit
        with pytest.raises(QuotaExceeded, match="about 105 tokens, over this tenant's quota"):
            check_prompt(prompt(301))

    contextvars.copy_context().run(run)
    check_prompt(prompt(10**6))  # the limit stayed in its own context


def waiting(model: str) -> float:
    return REGISTRY.get_sample_value("latm_model_queue_waiting", {"model": model}) or 0.0


async def test_a_burst_from_one_tenant_does_not_starve_another() -> None:
    queue, served = FairQueue("fair-test"), []

    async def call(tenant: str, n: int) -> None:
        async with queue.turn(tenant):
            served.append(f"{tenant}{n}")
            await asyncio.sleep(0.001)

    burst = [asyncio.create_task(call("a", n)) for n in range(10)]
    await asyncio.sleep(0)  # the burst is queued first
    assert waiting("fair-test") == 9
    others = [asyncio.create_task(call("b", 0)), asyncio.create_task(call("c", 0))]
    await asyncio.gather(*burst, *others)
    # a0 held the slot; then the tenants take turns: a1, b0, c0, then the rest of a's.
    assert served[:4] == ["a0", "a1", "b0", "c0"]
    assert served[4:] == [f"a{n}" for n in range(2, 10)]
    assert waiting("fair-test") == 0


async def test_a_cancelled_waiter_gives_up_its_place_and_the_slot_is_not_lost() -> None:
    queue, served = FairQueue("fair-cancel", slots=1), []
    hold = asyncio.Event()

    async def call(tenant: str) -> None:
        async with queue.turn(tenant):
            served.append(tenant)
            await hold.wait()

    first = asyncio.create_task(call("a"))
    await asyncio.sleep(0)
    gone = asyncio.create_task(call("b"))
    later = asyncio.create_task(call("c"))
    await asyncio.sleep(0)
    gone.cancel()
    await asyncio.sleep(0)
    hold.set()
    await asyncio.gather(first, later)
    assert gone.cancelled()
    assert served == ["a", "c"]
    async with queue.turn("d"):  # the slot came back
        served.append("d")
    assert waiting("fair-cancel") == 0
