"""Tenants of the public API, their API keys, quotas and billed usage.

A key is ``latm_<key id>_<secret>``: the key id finds the row, and only the sha256 of the
whole key is stored, compared in constant time. Keys carry 256 random bits, so a plain hash
is enough (a slow password hash protects low-entropy secrets, which these are not).
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import func, select, update

from orchestrator.errors import InvalidRequest, Unauthenticated
from orchestrator.latm.cards import MAX_CARD_BYTES, MAX_CASES, MAX_DEMOS
from orchestrator.registry.notices import KEYS, notify
from orchestrator.registry.schema import (
    MODEL_MAX,
    NAME_MAX,
    TENANT_MAX,
    ApiKeyRow,
    TenantRow,
    UsageEventRow,
)
from orchestrator.registry.store import StoreLimits, ToolRegistry

TENANT_PATTERN = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_.-]{{0,{TENANT_MAX - 1}}}")
KEY_PATTERN = re.compile(r"latm_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")
Granularity = Literal["hour", "day"]
# Quotas the platform caps whatever a tenant is granted: a card's parser refuses larger
# cards and more demos or cases; a question or MakeTool request must fit a gRPC message.
CEILINGS = {
    "max_card_kb": MAX_CARD_BYTES // 1024,
    "max_demos": MAX_DEMOS,
    "max_cases": MAX_CASES,
    "max_make_kb": 3 * 1024,
    "max_question_chars": 1_000_000,
    "max_make_examples": 10_000,
}


@dataclass(frozen=True)
class Quotas:
    """What one tenant may use at once and per minute, keep in the registry, and send.

    Each is a whole number >= 1; those with a platform ceiling (:data:`CEILINGS`) may not
    exceed it, since the platform's own checks (a card's parser, the gRPC message cap)
    refuse more whatever the quota says.
    """

    requests_per_minute: int = 600
    concurrent_executions: int = 8
    concurrent_makes: int = 1
    max_timeout_ms: int = 30_000
    max_memory_mb: int = 512
    # What a tenant may keep: tools, versions of one tool, and card bytes in all.
    max_tools: int = 1000
    max_versions: int = 100
    max_stored_mb: int = 256
    # One card: its JSON, its usage demos, its verification cases.
    max_card_kb: int = MAX_CARD_BYTES // 1024
    max_demos: int = MAX_DEMOS
    max_cases: int = MAX_CASES
    # One request: a MakeTool's examples and their bytes, a question's characters, and
    # the prompt tokens of each model call it makes (estimated before the call).
    max_make_examples: int = 1000
    max_make_kb: int = 1024
    max_question_chars: int = 20_000
    max_prompt_tokens: int = 32_000

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidRequest(f"quota {item.name} must be a whole number >= 1")
            ceiling = CEILINGS.get(item.name)
            if ceiling is not None and value > ceiling:
                raise InvalidRequest(f"quota {item.name} may be at most {ceiling}, the platform's")

    def store_limits(self) -> StoreLimits:
        """What the registry holds this tenant to when it publishes a card."""
        return StoreLimits(
            tools=self.max_tools,
            versions=self.max_versions,
            stored_bytes=self.max_stored_mb * 1024 * 1024,
            card_bytes=self.max_card_kb * 1024,
            demos=self.max_demos,
            cases=self.max_cases,
        )

    def merged(self, overrides: Mapping[str, int | None]) -> Quotas:
        """These defaults with the non-None ``overrides`` applied."""
        known = {item.name for item in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise InvalidRequest(f"unknown quota {', '.join(unknown)}; known: {sorted(known)}")
        values = {name: getattr(self, name) for name in known}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return Quotas(**values)


@dataclass(frozen=True)
class Tenant:
    """A tenant as listed: its own quota overrides (None: the default) and key count."""

    name: str
    created_at: datetime
    revoked: bool
    keys: int
    overrides: dict[str, int | None]


@dataclass(frozen=True)
class UsageLine:
    """Sums of usage events: completions, tokens and dollars."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0


@dataclass(frozen=True)
class UsageReport:
    """A tenant's usage over a period: in total, by tool, by model and by time bucket."""

    tenant: str
    total: UsageLine
    by_tool: dict[str, UsageLine]
    by_model: dict[str, UsageLine]
    by_period: list[tuple[datetime, UsageLine]]


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> tuple[str, str]:
    """A fresh key and its id."""
    key_id = secrets.token_hex(8)
    return f"latm_{key_id}_{secrets.token_urlsafe(32)}", key_id


def check_tenant_name(name: str) -> str:
    if not isinstance(name, str) or not TENANT_PATTERN.fullmatch(name):
        raise InvalidRequest(
            f"tenant name {str(name)[:TENANT_MAX]!r} is not valid: 1 to {TENANT_MAX} letters, "
            "digits, '_', '.' or '-', starting with a letter or digit"
        )
    return name


class TenantStore:
    """Tenants, keys and usage events, in the registry's database."""

    def __init__(self, registry: ToolRegistry) -> None:
        self.registry = registry

    # --- tenants and keys ---

    def create(self, name: str, overrides: Mapping[str, int | None] | None = None) -> str:
        """Create tenant ``name`` and return its first API key (shown only this once).

        Raises:
            InvalidRequest: a bad name or quota, or the tenant exists already.
        """
        name = check_tenant_name(name)
        overrides = dict(overrides or {})
        Quotas().merged(overrides)  # validates
        key, key_id = new_key()
        with self.registry.transaction(f"creating tenant {name!r}") as session:
            if session.get(TenantRow, name) is not None:
                raise InvalidRequest(f"tenant {name!r} exists already; use rotate for a new key")
            session.add(TenantRow(name=name, **overrides))
            session.flush()
            session.add(ApiKeyRow(key_id=key_id, tenant=name, key_hash=hash_key(key)))
        return key

    def rotate(self, name: str) -> str:
        """Revoke every key of ``name`` and return a new one (shown only this once)."""
        key, key_id = new_key()
        with self.registry.transaction(f"rotating the key of {name!r}") as session:
            tenant = session.get(TenantRow, check_tenant_name(name))
            if tenant is None or tenant.revoked_at is not None:
                raise InvalidRequest(f"no active tenant {name!r}")
            session.execute(
                update(ApiKeyRow)
                .where(ApiKeyRow.tenant == name, ApiKeyRow.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC))
            )
            session.add(ApiKeyRow(key_id=key_id, tenant=name, key_hash=hash_key(key)))
            notify(session, KEYS, name)
        return key

    def revoke(self, name: str) -> None:
        """Revoke tenant ``name`` and all its keys; its tools stay, unreachable by API."""
        now = datetime.now(UTC)
        with self.registry.transaction(f"revoking {name!r}") as session:
            tenant = session.get(TenantRow, check_tenant_name(name))
            if tenant is None:
                raise InvalidRequest(f"no tenant {name!r}")
            tenant.revoked_at = tenant.revoked_at or now
            session.execute(
                update(ApiKeyRow)
                .where(ApiKeyRow.tenant == name, ApiKeyRow.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            notify(session, KEYS, name)

    def set_quotas(self, name: str, overrides: Mapping[str, int | None]) -> None:
        """Set (or, with None, reset to the default) quotas of ``name``."""
        Quotas().merged(overrides)
        with self.registry.transaction(f"setting quotas of {name!r}") as session:
            tenant = session.get(TenantRow, check_tenant_name(name))
            if tenant is None:
                raise InvalidRequest(f"no tenant {name!r}")
            for key, value in overrides.items():
                setattr(tenant, key, value)
            notify(session, KEYS, name)

    def list(self) -> builtins.list[Tenant]:
        keys = (
            select(ApiKeyRow.tenant, func.count(ApiKeyRow.id).label("active"))
            .where(ApiKeyRow.revoked_at.is_(None))
            .group_by(ApiKeyRow.tenant)
            .subquery()
        )
        query = (
            select(TenantRow, func.coalesce(keys.c.active, 0).label("key_count"))
            .outerjoin(keys, keys.c.tenant == TenantRow.name)
            .order_by(TenantRow.name)
        )
        with self.registry.transaction("listing tenants") as session:
            rows = session.execute(query).all()
        return [
            Tenant(
                name=row.name,
                created_at=_utc(row.created_at),
                revoked=row.revoked_at is not None,
                keys=int(key_count),
                overrides={item.name: getattr(row, item.name) for item in fields(Quotas)},
            )
            for row, key_count in rows
        ]

    def authenticate(self, key: str) -> tuple[str, dict[str, int | None]]:
        """The tenant a key belongs to, and its quota overrides.

        Raises:
            Unauthenticated: a malformed, unknown or revoked key, or a revoked tenant; the
                message never says which, nor quotes the key.
        """
        match = KEY_PATTERN.fullmatch(key or "")
        refused = Unauthenticated("invalid or revoked API key")
        if match is None:
            raise refused
        query = (
            select(ApiKeyRow.key_hash, TenantRow)
            .join(TenantRow, TenantRow.name == ApiKeyRow.tenant)
            .where(
                ApiKeyRow.key_id == match.group(1),
                ApiKeyRow.revoked_at.is_(None),
                TenantRow.revoked_at.is_(None),
            )
        )
        with self.registry.transaction("checking an API key") as session:
            row = session.execute(query).first()
        # Compare even when nothing was found, so timing says nothing about key ids.
        stored = row.key_hash if row is not None else "0" * 64
        if not hmac.compare_digest(stored, hash_key(key)) or row is None:
            raise refused
        tenant: TenantRow = row[1]
        return tenant.name, {item.name: getattr(tenant, item.name) for item in fields(Quotas)}

    # --- usage ---

    def record_usage(self, events: Iterable[Mapping[str, Any]]) -> None:
        """Store usage events (tenant, request_id, role, model, tool, tokens, cost, at)."""
        rows = [
            UsageEventRow(
                tenant=str(event["tenant"])[:TENANT_MAX],
                request_id=str(event.get("request_id") or "")[:64],
                role=str(event.get("role") or "")[:16],
                model=str(event.get("model") or "")[:MODEL_MAX],
                tool=str(event.get("tool") or "")[:NAME_MAX],
                prompt_tokens=int(event.get("prompt_tokens", 0)),
                completion_tokens=int(event.get("completion_tokens", 0)),
                cost_usd=float(event.get("cost_usd", 0.0)),
                at=event.get("at") or datetime.now(UTC),
            )
            for event in events
        ]
        if rows:
            with self.registry.transaction("recording usage") as session:
                session.add_all(rows)

    def usage(
        self,
        tenant: str,
        start: datetime | None = None,
        end: datetime | None = None,
        granularity: Granularity = "day",
    ) -> UsageReport:
        """Usage of ``tenant`` in ``[start, end)``, by tool, model and hour or day."""
        if start is not None and end is not None and end <= start:
            raise InvalidRequest("the usage period's end must be after its start")
        where = [UsageEventRow.tenant == tenant]
        if start is not None:
            where.append(UsageEventRow.at >= start)
        if end is not None:
            where.append(UsageEventRow.at < end)
        query = select(
            UsageEventRow.tool,
            UsageEventRow.model,
            UsageEventRow.at,
            UsageEventRow.prompt_tokens,
            UsageEventRow.completion_tokens,
            UsageEventRow.cost_usd,
        ).where(*where)
        with self.registry.transaction("reading usage") as session:
            rows = session.execute(query).all()
        total: dict[str, list[float]] = {}
        tools: dict[str, list[float]] = {}
        models: dict[str, list[float]] = {}
        periods: dict[datetime, list[float]] = {}
        for row in rows:
            bucket = _bucket(_utc(row.at), granularity)
            for table, key in ((total, ""), (tools, row.tool), (models, row.model)):
                _add(table, key, row)
            _add(periods, bucket, row)
        return UsageReport(
            tenant=tenant,
            total=_line(total.get("")),
            by_tool={key: _line(value) for key, value in sorted(tools.items())},
            by_model={key: _line(value) for key, value in sorted(models.items())},
            by_period=[(key, _line(value)) for key, value in sorted(periods.items())],
        )


def _add(table: dict[Any, list[float]], key: Any, row: Any) -> None:
    sums = table.setdefault(key, [0, 0, 0, 0.0])
    sums[0] += 1
    sums[1] += row.prompt_tokens
    sums[2] += row.completion_tokens
    sums[3] += row.cost_usd


def _line(sums: list[float] | None) -> UsageLine:
    if sums is None:
        return UsageLine()
    return UsageLine(int(sums[0]), int(sums[1]), int(sums[2]), float(sums[3]))


def _bucket(moment: datetime, granularity: Granularity) -> datetime:
    start = moment.replace(minute=0, second=0, microsecond=0)
    return start if granularity == "hour" else start - timedelta(hours=start.hour)


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
