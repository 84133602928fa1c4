"""The tool registry: immutable, versioned tool cards per tenant, with usage and candidates.

Every method runs in its own session and transaction, so one registry can be shared by
threads, and a failed call leaves the database as it was. Tenants are namespaces: every
query is filtered by tenant, and nothing of one tenant is visible from another.
"""

from __future__ import annotations

import builtins
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Literal, TypedDict

from sqlalchemy import Engine, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from orchestrator.errors import InvalidRequest, QuotaExceeded, ToolNotFound
from orchestrator.latm.cards import ToolCard
from orchestrator.registry._engine import (
    RegistryUnavailable,
    create_registry_engine,
    default_database_url,
    lock_until_commit,
    translate_errors,
)
from orchestrator.registry._queries import one_version, summaries, usage_by_role
from orchestrator.registry.notices import TOOLS, notify
from orchestrator.registry.schema import (
    ROLES,
    TENANT_MAX,
    CandidateRow,
    ToolRow,
    UsageRow,
)

Role = Literal["maker", "user"]
QUESTION_MAX = 20_000
CANDIDATES_MAX = 10_000
# Concurrent publishes of one name race for the next version; each loser looks again, and
# every round has a winner (on SQLite; on PostgreSQL a tenant's publishes take turns).
PUBLISH_ATTEMPTS = 16
# The class of the advisory locks that make a tenant's quota-checked writes take turns
# (the key names the tenant and what is counted).
STORE_LOCK_CLASS = 0x6C61_7473  # "lats"


@dataclass(frozen=True, slots=True)
class StoreLimits:
    """What one tenant may keep: tools, versions of one tool, card bytes in all, and the
    size of one card (its JSON, its usage demos, its verification cases)."""

    tools: int
    versions: int
    stored_bytes: int
    card_bytes: int
    demos: int
    cases: int


@dataclass(frozen=True, slots=True)
class ToolSummary:
    """The latest version of a tool, as listed; ``uses`` and ``cost_usd`` cover all versions."""

    name: str
    version: int
    description: str
    signature: str | None
    entrypoint: str
    sha256: str
    created_at: datetime
    uses: int
    cost_usd: float


class UsageTotals(TypedDict):
    """Counts and sums of recorded uses: calls, successful calls, tokens, dollars, seconds."""

    calls: int
    ok: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float
    wall_s: float


class Usage(UsageTotals):
    """Totals over every version of a tool, and the same totals by role."""

    by_role: dict[str, UsageTotals]


class ToolRegistry:
    """Tool cards stored by tenant, name and version, in SQLite or PostgreSQL."""

    def __init__(self, engine: Engine) -> None:
        """Wrap an engine whose schema is migrated; use :meth:`open` instead."""
        self._engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._closed = False

    @classmethod
    def open(cls, url: str | None = None) -> ToolRegistry:
        """Open (and create or migrate) the registry at ``url``.

        Args:
            url: a SQLAlchemy URL (``sqlite:///path`` or ``postgresql+psycopg://...``);
                None opens the default SQLite file (see ``default_database_url``).
        """
        return cls(create_registry_engine(url or default_database_url()))

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (for what shares the registry's database: replicas'
        quotas and change notices)."""
        return self._engine

    @property
    def shared(self) -> bool:
        """Whether several processes may serve this registry at once (PostgreSQL; a
        SQLite file serves one)."""
        return self._engine.dialect.name == "postgresql"

    def close(self) -> None:
        """Release the database connections; the registry cannot be used afterwards."""
        self._closed = True
        self._engine.dispose()

    def __enter__(self) -> ToolRegistry:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- tools ---

    def publish(self, tenant: str, card: ToolCard, limits: StoreLimits | None = None) -> ToolCard:
        """Store ``card`` as the next version of its name, and return it with that version.

        Publishing the source the latest version already has returns that version unchanged.
        With ``limits``, a card that would take the tenant past one is refused. A tenant's
        publishes take turns (an advisory lock on PostgreSQL, held until the transaction
        ends), so two at once on different replicas cannot each fit alone and pass together.

        Raises:
            InvalidRequest: a bad tenant, or a source that does not match its sha256.
            QuotaExceeded: the card is over ``limits``, or there is no room for it.
        """
        tenant = _tenant(tenant)
        if card.provenance.sha256 != card.sha256:
            raise InvalidRequest(
                f"tool card {card.name!r}: the source does not match provenance.sha256"
            )
        if limits is not None:
            check_card(card, limits)
        attempt = 1
        while True:
            try:
                with self.transaction(f"publishing {card.name!r}") as session:
                    return _publish_in(session, tenant, card, limits)
            except RegistryUnavailable as exc:
                if attempt >= PUBLISH_ATTEMPTS or not isinstance(exc.__cause__, IntegrityError):
                    raise
                attempt += 1

    def check_room(self, tenant: str, name: str, limits: StoreLimits) -> None:
        """Refuse early, before a tool is made, when ``tenant`` could not keep a new
        version of ``name`` (too many tools, versions, or bytes stored already).

        Raises:
            QuotaExceeded: no room.
        """
        tenant = _tenant(tenant)
        with self.transaction(f"checking room for {name!r}") as session:
            _check_room(session, tenant, name, limits, adding=0)

    def get(self, tenant: str, name: str, version: int | None = None) -> ToolCard:
        """The card of ``name`` at ``version`` (the latest by default).

        Raises:
            ToolNotFound: no such tool, or no such version, in this tenant.
        """
        tenant, version = _tenant(tenant), _version(version)
        with self.transaction(f"reading {name!r}") as session:
            text = session.scalars(one_version(ToolRow.card_json, tenant, name, version)).first()
        if text is None:
            raise ToolNotFound(_missing(tenant, name, version))
        return _stored_card(text)

    def list(self, tenant: str) -> builtins.list[ToolSummary]:
        """The latest version of every tool of ``tenant``, by name, in one query."""
        tenant = _tenant(tenant)
        with self.transaction("listing tools") as session:
            rows = session.execute(summaries(tenant)).all()
        return [
            ToolSummary(
                name=row.name,
                version=row.version,
                description=row.description,
                signature=row.signature,
                entrypoint=row.entrypoint,
                sha256=row.sha256,
                created_at=_utc(row.created_at),
                uses=row.uses,
                cost_usd=float(row.cost_usd),
            )
            for row in rows
        ]

    def revision(self, tenant: str) -> tuple[int, int, str]:
        """A cheap fingerprint of ``tenant``'s set of tool versions: it changes whenever a
        version is published or removed, so callers can cache :meth:`list` against it."""
        tenant = _tenant(tenant)
        with self.transaction("reading the revision") as session:
            count, last_id, last_at = session.execute(
                select(
                    func.count(ToolRow.id), func.max(ToolRow.id), func.max(ToolRow.created_at)
                ).where(ToolRow.tenant == tenant)
            ).one()
        return int(count), int(last_id or 0), str(last_at)

    def remove(self, tenant: str, name: str, version: int | None = None) -> int:
        """Delete one version of ``name``, or all of them by default, with their usage.

        Returns:
            How many versions were deleted.

        Raises:
            ToolNotFound: nothing matched.
        """
        tenant, version = _tenant(tenant), _version(version)
        where = [ToolRow.tenant == tenant, ToolRow.name == name]
        if version is not None:
            where.append(ToolRow.version == version)
        with self.transaction(f"removing {name!r}") as session:
            removed = session.scalars(delete(ToolRow).where(*where).returning(ToolRow.id)).all()
            if not removed:
                raise ToolNotFound(_missing(tenant, name, version))
            notify(session, TOOLS, tenant)
        return len(removed)

    def export(self, tenant: str, name: str, version: int | None = None) -> str:
        """The card of ``name`` (latest by default) as ``latm.tool/v1`` JSON."""
        return self.get(tenant, name, version).to_json()

    def import_card(self, tenant: str, text: str | bytes) -> ToolCard:
        """Parse a card's JSON (checking its sha256) and publish it into ``tenant`` as given.

        The registry cannot run code: the API and ``latm tools import`` go through
        :meth:`orchestrator.latm.engine.Engine.import_card`, which proves the card in the
        tenant's sandbox first. This is for cards the platform has already proven.

        An import never overwrites: the same source gives back the latest version,
        a changed source becomes a new version.

        Raises:
            InvalidRequest: malformed JSON, not a tool card, or a source that does not
                match its sha256.
        """
        return self.publish(tenant, ToolCard.from_json(text))

    # --- usage ---

    def record_use(
        self,
        tenant: str,
        name: str,
        version: int | None,
        *,
        role: Role,
        ok: bool,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        cost_usd: float = 0.0,
        wall_s: float = 0.0,
    ) -> None:
        """Record one use of a tool version (the latest if ``version`` is None).

        Raises:
            InvalidRequest: an unknown role, or a negative or non-finite count.
            ToolNotFound: no such tool version in this tenant.
        """
        tenant, version = _tenant(tenant), _version(version)
        if role not in ROLES:
            raise InvalidRequest(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        _non_negative(
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost_usd=cost_usd,
            wall_s=wall_s,
        )
        with self.transaction(f"recording a use of {name!r}") as session:
            tool_id = session.scalars(one_version(ToolRow.id, tenant, name, version)).first()
            if tool_id is None:
                raise ToolNotFound(_missing(tenant, name, version))
            session.add(
                UsageRow(
                    tool_id=tool_id,
                    tenant=tenant,
                    role=role,
                    ok=bool(ok),
                    prompt_tokens=prompt_tokens,
                    completion_tokens=completion_tokens,
                    cost_usd=float(cost_usd),
                    wall_s=float(wall_s),
                )
            )

    def usage(self, tenant: str, name: str) -> Usage:
        """Calls, successes, tokens, cost and time of every version of ``name``, by role.

        Raises:
            ToolNotFound: no tool of that name in this tenant.
        """
        tenant = _tenant(tenant)
        with self.transaction(f"reading the usage of {name!r}") as session:
            if session.scalars(one_version(ToolRow.id, tenant, name, None)).first() is None:
                raise ToolNotFound(_missing(tenant, name, None))
            rows = session.execute(usage_by_role(tenant, name)).all()
        by_role = {role: _totals(None) for role in ROLES}
        by_role.update({row.role: _totals(row) for row in rows})
        return Usage(**_sum(builtins.list(by_role.values())), by_role=by_role)

    # --- candidates ---

    def add_candidate(self, tenant: str, question: str) -> None:
        """Remember a request that no tool fitted, for making a tool later."""
        tenant = _tenant(tenant)
        if not question.strip():
            raise InvalidRequest("a candidate question must not be empty")
        if len(question) > QUESTION_MAX:
            raise InvalidRequest(f"a candidate question is limited to {QUESTION_MAX} characters")
        with self.transaction("adding a candidate") as session:
            session.add(CandidateRow(tenant=tenant, question=question))

    def candidates(self, tenant: str, limit: int = 100) -> builtins.list[str]:
        """The latest ``limit`` candidate questions of ``tenant``, newest first."""
        tenant = _tenant(tenant)
        if not 1 <= limit <= CANDIDATES_MAX:
            raise InvalidRequest(f"limit must be between 1 and {CANDIDATES_MAX}, not {limit}")
        query = (
            select(CandidateRow.question)
            .where(CandidateRow.tenant == tenant)
            .order_by(CandidateRow.id.desc())
            .limit(limit)
        )
        with self.transaction("reading candidates") as session:
            return builtins.list(session.scalars(query).all())

    @contextmanager
    def transaction(self, doing: str) -> Iterator[Session]:
        """A session in a transaction: committed on success, rolled back on any error."""
        if self._closed:
            raise RegistryUnavailable("the tool registry is closed")
        with translate_errors(doing), self._sessions.begin() as session:
            yield session


def _publish_in(
    session: Session, tenant: str, card: ToolCard, limits: StoreLimits | None
) -> ToolCard:
    lock_until_commit(session, STORE_LOCK_CLASS, f"{tenant}\ntools")
    latest = session.scalars(one_version(ToolRow, tenant, card.name, None)).first()
    if latest is not None and latest.sha256 == card.sha256:
        return _stored_card(latest.card_json)
    version = latest.version + 1 if latest else 1
    stored = card.model_copy(update={"version": version})
    text = stored.to_json()
    size = len(text.encode())
    if limits is not None:
        _check_room(session, tenant, card.name, limits, adding=size)
    session.add(
        ToolRow(
            tenant=tenant,
            name=stored.name,
            version=version,
            sha256=stored.sha256,
            description=stored.description,
            entrypoint=stored.entrypoint,
            signature=stored.signature,
            task=stored.task,
            card_json=text,
            card_bytes=size,
        )
    )
    notify(session, TOOLS, tenant)
    return stored


def check_card(card: ToolCard, limits: StoreLimits) -> None:
    """Raise :class:`QuotaExceeded` when ``card`` is over the size limits of one card."""
    size = len(card.to_json().encode())
    for what, count, limit in (
        ("bytes of card JSON", size, limits.card_bytes),
        ("usage demos", len(card.usage_demos), limits.demos),
        ("verification cases", len(card.verification.cases), limits.cases),
    ):
        if count > limit:
            raise QuotaExceeded(
                f"tool card {card.name!r} has {count} {what}; this tenant's cards may have "
                f"at most {limit}"
            )


def _check_room(
    session: Session, tenant: str, name: str, limits: StoreLimits, *, adding: int
) -> None:
    """Raise :class:`QuotaExceeded` unless one more version of ``name`` (``adding`` bytes)
    fits the tenant's tools, that tool's versions and the tenant's stored bytes."""
    mine = ToolRow.tenant == tenant
    tools, stored = session.execute(
        select(
            func.count(func.distinct(ToolRow.name)),
            func.coalesce(
                func.sum(func.coalesce(ToolRow.card_bytes, func.length(ToolRow.card_json))), 0
            ),
        ).where(mine)
    ).one()
    versions = session.scalar(select(func.count(ToolRow.id)).where(mine, ToolRow.name == name))
    if not versions and tools >= limits.tools:
        raise QuotaExceeded(
            f"tenant {tenant!r} has {tools} tools, its quota; delete one to add {name!r}"
        )
    if versions and versions >= limits.versions:
        raise QuotaExceeded(
            f"tool {name!r} has {versions} versions, the tenant's quota; delete old versions "
            "to add another"
        )
    if int(stored) + adding > limits.stored_bytes:
        raise QuotaExceeded(
            f"tenant {tenant!r} stores {int(stored)} bytes of tool cards; {adding} more would "
            f"pass its quota of {limits.stored_bytes}"
        )


def _totals(row: Any) -> UsageTotals:
    """Totals from a row of ``usage_by_role`` (zeros for None)."""
    return UsageTotals(
        calls=int(row.calls) if row else 0,
        ok=int(row.ok) if row else 0,
        prompt_tokens=int(row.prompt_tokens) if row else 0,
        completion_tokens=int(row.completion_tokens) if row else 0,
        cost_usd=float(row.cost_usd) if row else 0.0,
        wall_s=float(row.wall_s) if row else 0.0,
    )


def _sum(parts: builtins.list[UsageTotals]) -> UsageTotals:
    return UsageTotals(
        calls=sum(part["calls"] for part in parts),
        ok=sum(part["ok"] for part in parts),
        prompt_tokens=sum(part["prompt_tokens"] for part in parts),
        completion_tokens=sum(part["completion_tokens"] for part in parts),
        cost_usd=sum(part["cost_usd"] for part in parts),
        wall_s=sum(part["wall_s"] for part in parts),
    )


def _stored_card(text: str) -> ToolCard:
    try:
        return ToolCard.from_json(text)
    except InvalidRequest as exc:  # written by us, so the database was altered behind us
        raise RegistryUnavailable(f"tool registry: a stored card is corrupt: {exc}") from None


def _tenant(tenant: str) -> str:
    if not isinstance(tenant, str) or not tenant.strip():
        raise InvalidRequest("a tenant is required (a non-empty name)")
    if len(tenant) > TENANT_MAX or tenant != tenant.strip() or not tenant.isprintable():
        raise InvalidRequest(
            f"tenant {tenant[:TENANT_MAX]!r} is not valid: at most {TENANT_MAX} printable "
            "characters, without surrounding spaces"
        )
    return tenant


def _version(version: int | None) -> int | None:
    if version is not None and (
        isinstance(version, bool) or not isinstance(version, int) or version < 1
    ):
        raise InvalidRequest(f"a tool version is a whole number from 1, not {version!r}")
    return version


def _non_negative(**values: float) -> None:
    for key, value in values.items():
        if not math.isfinite(value) or value < 0:
            raise InvalidRequest(f"{key} must be a finite number >= 0, not {value!r}")


def _missing(tenant: str, name: str, version: int | None) -> str:
    which = f"tool {name!r}" if version is None else f"version {version} of tool {name!r}"
    return f"no {which} in tenant {tenant!r}"


def _utc(moment: datetime) -> datetime:
    # SQLite gives back naive datetimes; every stored time is UTC.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
