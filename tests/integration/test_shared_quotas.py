"""The quotas replicas share, on a real PostgreSQL: several gates on one database (as
several replicas hold) admit exactly a tenant's allowance between them, share its
concurrency slots, and a gate that stops renewing (a dead replica) loses its slots once
their leases run out. ``test_replicas.py`` shows the same through ``latm serve``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from orchestrator.api.shared_quotas import SharedQuotaGate
from orchestrator.errors import QuotaExceeded
from orchestrator.registry import ToolRegistry
from orchestrator.registry.tenants import Quotas
from tests.support.postgres import PostgresServer

pytestmark = pytest.mark.integration


@pytest.fixture
def registries(postgres: PostgresServer) -> Iterator[list[ToolRegistry]]:
    """Three registries on one new database: three replicas' views of it."""
    url = postgres.create_database()
    opened = [ToolRegistry.open(url) for _ in range(3)]
    yield opened
    for registry in opened:
        registry.close()


async def _admitted(gate: SharedQuotaGate, tenant: str, quotas: Quotas) -> bool:
    try:
        await gate.admit(tenant, quotas)
    except QuotaExceeded:
        return False
    return True


async def test_gates_on_one_database_admit_the_allowance_once_between_them(
    registries: list[ToolRegistry],
) -> None:
    gates = [SharedQuotaGate(registry, lease_s=5) for registry in registries]
    quotas = Quotas(requests_per_minute=12)  # one back every 5 s
    results = await asyncio.gather(
        *(_admitted(gates[n % 3], "acme", quotas) for n in range(40))  # all at once
    )
    assert sum(results) == 12
    with pytest.raises(QuotaExceeded) as over:
        await gates[0].admit("acme", quotas)
    assert over.value.retry_after_s is not None
    assert 0 < over.value.retry_after_s <= 5.0
    assert await _admitted(gates[1], "globex", quotas)  # tenants have their own buckets


async def test_the_bucket_refills_by_the_databases_clock(registries: list[ToolRegistry]) -> None:
    first, second = (SharedQuotaGate(registry, lease_s=5) for registry in registries[:2])
    quotas = Quotas(requests_per_minute=60)  # one a second
    started = time.monotonic()
    admitted = sum([await _admitted(first, "acme", quotas) for _ in range(65)])
    elapsed = time.monotonic() - started
    assert 60 <= admitted <= 60 + elapsed + 1  # what refilled while they were sent
    with pytest.raises(QuotaExceeded) as over:
        await second.admit("acme", quotas)
    wait = over.value.retry_after_s
    assert wait is not None
    assert 0 < wait <= 1.0
    await asyncio.sleep(wait + 0.05)  # one request is back, on either replica
    assert [await _admitted(second, "acme", quotas) for _ in range(2)] == [True, False]


async def test_slots_are_shared_and_a_dead_gates_leases_run_out(
    registries: list[ToolRegistry],
) -> None:
    live = SharedQuotaGate(registries[0], lease_s=1)
    dead = SharedQuotaGate(registries[1], lease_s=1)  # never started: it does not renew
    await live.start()
    quotas = Quotas(concurrent_executions=2)
    # Held and never given back: kept referenced, since a context manager collected
    # unfinished would be closed by asyncio, giving its slot back.
    held = dead.execution("acme", quotas)
    try:
        async with live.execution("acme", quotas):
            await held.__aenter__()
            with pytest.raises(QuotaExceeded, match="already has 2 calls running"):
                await live.execution("acme", quotas).__aenter__()
            await asyncio.sleep(1.5)  # past a lease: the live one was renewed
            async with live.execution("acme", quotas):  # the dead one's ran out
                assert live.in_flight("acme") == (2, 0)
                with pytest.raises(QuotaExceeded):
                    await dead.execution("acme", quotas).__aenter__()
        started = time.monotonic()
        async with live.making("acme", Quotas(concurrent_makes=1)):
            assert time.monotonic() - started < 1.0
    finally:
        await live.close()
    with registries[2].engine.connect() as connection:
        left = connection.execute(text("SELECT count(*) FROM quota_leases")).scalar()
    assert left == 0  # the live gate gave its slots back; the dead one's was reaped
