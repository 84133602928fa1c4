"""What replicas share, on a real PostgreSQL: several gates on one database (as several
replicas hold) admit exactly a tenant's allowance between them, share its concurrency
slots, and a gate that stops renewing (a dead replica) loses its slots once their leases
run out; a change committed through one registry reaches another's listener, which
listens again (and drops everything cached) when its connection is cut.
``test_replicas.py`` shows the same through ``latm serve``."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import text

from orchestrator.api.shared_quotas import SharedQuotaGate
from orchestrator.errors import QuotaExceeded
from orchestrator.registry import ToolRegistry
from orchestrator.registry.notices import KEYS, TOOLS, NoticeListener
from orchestrator.registry.tenants import Quotas, TenantStore
from tests.support.api import ADD
from tests.support.cards import tool_card
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


async def test_changes_reach_the_listener_which_listens_again_when_cut(
    registries: list[ToolRegistry],
) -> None:
    heard: list[tuple[str, str]] = []
    resets: list[float] = []
    handlers = {channel: functools.partial(_note, heard, channel) for channel in (TOOLS, KEYS)}
    listener = NoticeListener(
        registries[0].engine, handlers, lambda: resets.append(time.monotonic())
    )
    writer = registries[1]
    await listener.start()
    try:
        assert listener.listening.is_set()
        assert len(resets) == 1
        writer.publish("acme", tool_card(ADD, "add"))
        TenantStore(writer).create("globex")
        TenantStore(writer).revoke("globex")
        await _until(lambda: len(heard) >= 2)
        writer.remove("acme", "add")
        await _until(lambda: len(heard) >= 3)
        assert heard == [(TOOLS, "acme"), (KEYS, "globex"), (TOOLS, "acme")]
        with writer.engine.connect() as connection:  # cut the listener's connection
            cut = connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE query LIKE 'LISTEN%' AND pid <> pg_backend_pid()"
                )
            ).all()
        assert cut == [(True,)]
        await _until(lambda: len(resets) == 2)  # it listens again and drops its caches
        writer.publish("acme", tool_card(ADD, "add"))
        await _until(lambda: len(heard) >= 4)
        assert heard[-1] == (TOOLS, "acme")
    finally:
        await listener.stop()


def _note(heard: list[tuple[str, str]], channel: str, tenant: str) -> None:
    heard.append((channel, tenant))


async def _until(check: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "not heard in time"
        await asyncio.sleep(0.02)
