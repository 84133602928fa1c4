"""Tenants, API keys, quotas and usage reports (a real SQLite registry; no server)."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from orchestrator.api.quotas import MemoryQuotaGate, check_limits
from orchestrator.errors import InvalidRequest, QuotaExceeded, Unauthenticated
from orchestrator.registry import ToolRegistry
from orchestrator.registry.tenants import KEY_PATTERN, Quotas, TenantStore, hash_key
from orchestrator.sandboxes import ExecRequest
from sandbox.limits import MIN_MEMORY_MB


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "registry.db"


@pytest.fixture
def store(db: Path) -> Iterator[TenantStore]:
    with ToolRegistry.open(f"sqlite:///{db}") as registry:
        yield TenantStore(registry)


def test_a_new_key_works_and_only_its_hash_is_stored(store: TenantStore, db: Path) -> None:
    key = store.create("acme")
    assert KEY_PATTERN.fullmatch(key)
    assert store.authenticate(key) == ("acme", dict.fromkeys(Quotas.__dataclass_fields__))
    with sqlite3.connect(db) as connection:
        dump = "\n".join(connection.iterdump())
    assert key not in dump
    assert key.split("_", 2)[2] not in dump  # not even the secret part (which may hold "_")
    assert hash_key(key) in dump


@pytest.mark.parametrize("name", ["", "-lead", "has space", "x" * 129, "ünï", "a/b"])
def test_bad_tenant_names_are_refused(store: TenantStore, name: str) -> None:
    with pytest.raises(InvalidRequest, match="tenant name"):
        store.create(name)


def test_a_tenant_is_created_once(store: TenantStore) -> None:
    store.create("acme")
    with pytest.raises(InvalidRequest, match="exists already"):
        store.create("acme")


def test_unknown_malformed_and_forged_keys_are_refused(store: TenantStore) -> None:
    key = store.create("acme")
    forged = key[:-1] + ("A" if key[-1] != "A" else "B")
    other_id = "latm_0000000000000000_" + key.split("_", 2)[2]
    for bad in (forged, other_id, "", "Bearer " + key, key + "x", key.upper()):
        with pytest.raises(Unauthenticated, match="invalid or revoked API key") as refused:
            store.authenticate(bad)
        assert key not in str(refused.value)


def test_rotation_revokes_the_old_keys(store: TenantStore) -> None:
    first = store.create("acme")
    second = store.rotate("acme")
    with pytest.raises(Unauthenticated):
        store.authenticate(first)
    assert store.authenticate(second)[0] == "acme"
    [tenant] = store.list()
    assert (tenant.name, tenant.keys, tenant.revoked) == ("acme", 1, False)


def test_revoking_a_tenant_refuses_every_key_and_rotation(store: TenantStore) -> None:
    key = store.create("acme")
    other = store.create("globex")
    store.revoke("acme")
    with pytest.raises(Unauthenticated):
        store.authenticate(key)
    with pytest.raises(InvalidRequest, match="no active tenant"):
        store.rotate("acme")
    assert store.authenticate(other)[0] == "globex"
    assert [(t.name, t.revoked, t.keys) for t in store.list()] == [
        ("acme", True, 0),
        ("globex", False, 1),
    ]


def test_quota_overrides_are_stored_and_merged(store: TenantStore) -> None:
    key = store.create("acme", {"requests_per_minute": 5})
    store.set_quotas("acme", {"concurrent_executions": 2})
    _, overrides = store.authenticate(key)
    quotas = Quotas(requests_per_minute=100).merged(overrides)
    assert (quotas.requests_per_minute, quotas.concurrent_executions) == (5, 2)
    assert quotas.max_timeout_ms == Quotas().max_timeout_ms
    store.set_quotas("acme", {"requests_per_minute": None})
    assert store.authenticate(key)[1]["requests_per_minute"] is None
    with pytest.raises(InvalidRequest, match="unknown quota"):
        store.set_quotas("acme", {"gpus": 1})
    with pytest.raises(InvalidRequest, match=">= 1"):
        store.set_quotas("acme", {"max_memory_mb": 0})


def test_store_limits_are_per_tenant_quotas_within_the_platform_ceilings(
    store: TenantStore,
) -> None:
    key = store.create("acme", {"max_tools": 3, "max_card_kb": 64})
    quotas = Quotas().merged(store.authenticate(key)[1])
    limits = quotas.store_limits()
    assert (limits.tools, limits.card_bytes) == (3, 64 * 1024)
    assert limits.versions == Quotas().max_versions
    assert limits.stored_bytes == Quotas().max_stored_mb * 1024 * 1024
    with pytest.raises(InvalidRequest, match="max_card_kb may be at most 2048"):
        store.set_quotas("acme", {"max_card_kb": 4096})
    with pytest.raises(InvalidRequest, match="max_demos may be at most 32"):
        Quotas(max_demos=33)
    assert Quotas(max_demos=32).max_demos == 32


def test_usage_is_summed_by_tool_model_and_period(store: TenantStore) -> None:
    day = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)

    def event(hours: float, tool: str, model: str, tokens: int, tenant: str = "acme") -> dict:
        return {
            "tenant": tenant,
            "at": day + dt.timedelta(hours=hours),
            "role": "user",
            "tool": tool,
            "model": model,
            "prompt_tokens": tokens,
            "completion_tokens": 1,
            "cost_usd": tokens / 1000,
        }

    store.record_usage(
        [
            event(1, "add", "openai:gpt-4o-mini", 100),
            event(1.5, "add", "openai:gpt-4o-mini", 50),
            event(25, "", "local:qwen", 10),
            event(2, "add", "x", 999, tenant="globex"),
        ]
    )
    report = store.usage("acme")
    assert (report.total.calls, report.total.prompt_tokens) == (3, 160)
    assert report.total.cost_usd == pytest.approx(0.16)
    assert {k: v.calls for k, v in report.by_tool.items()} == {"": 1, "add": 2}
    assert set(report.by_model) == {"openai:gpt-4o-mini", "local:qwen"}
    assert [(start.day, line.calls) for start, line in report.by_period] == [(20, 2), (21, 1)]
    hourly = store.usage("acme", granularity="hour")
    assert [start.hour for start, _ in hourly.by_period] == [1, 1]  # day 20 01:00, day 21 01:00
    window = store.usage("acme", start=day, end=day + dt.timedelta(hours=1, minutes=10))
    assert window.total.calls == 1
    with pytest.raises(InvalidRequest, match="end must be after"):
        store.usage("acme", start=day, end=day)


async def test_requests_per_minute_refill_over_time(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr("orchestrator.api.quotas.time.monotonic", lambda: now[0])
    gate, quotas = MemoryQuotaGate(), Quotas(requests_per_minute=2)
    await gate.admit("acme", quotas)
    await gate.admit("acme", quotas)
    with pytest.raises(QuotaExceeded) as over:
        await gate.admit("acme", quotas)
    assert over.value.retry_after_s == pytest.approx(30.0)
    await gate.admit("globex", quotas)  # tenants have separate allowances
    now[0] += 30.0
    await gate.admit("acme", quotas)
    with pytest.raises(QuotaExceeded):
        await gate.admit("acme", quotas)


async def test_concurrency_slots_are_released_even_on_errors() -> None:
    gate, quotas = MemoryQuotaGate(), Quotas(concurrent_executions=1, concurrent_makes=1)
    async with gate.execution("acme", quotas):
        with pytest.raises(QuotaExceeded, match="calls running"):
            await gate.execution("acme", quotas).__aenter__()
        async with gate.making("acme", quotas):
            assert gate.in_flight("acme") == (1, 1)
    with pytest.raises(RuntimeError):
        async with gate.execution("acme", quotas):
            raise RuntimeError("the call failed")
    assert gate.in_flight("acme") == (0, 0)


def test_limits_above_the_quota_are_refused_without_a_retry_hint() -> None:
    quotas = Quotas(max_timeout_ms=1000, max_memory_mb=64)
    check_limits("acme", quotas, 1000, 64)
    check_limits("acme", quotas, 0, 0)
    with pytest.raises(QuotaExceeded, match="timeout_ms 1001") as over:
        check_limits("acme", quotas, 1001, 0)
    assert over.value.retry_after_s is None
    with pytest.raises(QuotaExceeded, match="memory_mb 65"):
        check_limits("acme", quotas, 0, 65)


def test_a_memory_limit_below_the_least_a_call_may_have_is_refused() -> None:
    """memory_mb=1 used to run as if it were a limit; below 16 MiB it is refused, at
    the API as at the sandbox's own request model."""
    quotas = Quotas(max_memory_mb=64)
    check_limits("acme", quotas, 0, MIN_MEMORY_MB)
    with pytest.raises(InvalidRequest, match=f"least a call may have, {MIN_MEMORY_MB} MiB"):
        check_limits("acme", quotas, 0, MIN_MEMORY_MB - 1)
    with pytest.raises(ValidationError, match="at least 16"):
        ExecRequest(source="", call="ans = 1", memory_mb=1)
    assert ExecRequest(source="", call="ans = 1", memory_mb=0).memory_mb == 0
