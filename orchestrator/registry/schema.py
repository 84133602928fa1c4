"""The registry's tables as a typed SQLAlchemy ORM.

This is the model the code reads and writes; the database schema itself is created only by
the Alembic migrations in ``migrations/versions``, and a test checks that the two agree.
A tool row is immutable once written: a changed tool is a new row with the next version.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

TENANT_MAX = 128
NAME_MAX = 64
KEY_ID_MAX = 32
MODEL_MAX = 256
ROLES = ("maker", "user")


def utc_now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """The registry's declarative base; every constraint and index is named explicitly."""


class ToolRow(Base):
    """One version of one tool of one tenant; ``card_json`` is the whole card, as JSON."""

    __tablename__ = "tools"
    __table_args__ = (
        UniqueConstraint("tenant", "name", "version", name="uq_tools_tenant_name_version"),
        Index("ix_tools_tenant_name", "tenant", "name"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(TENANT_MAX))
    name: Mapped[str] = mapped_column(String(NAME_MAX))
    version: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text)
    entrypoint: Mapped[str] = mapped_column(String(NAME_MAX))
    signature: Mapped[str | None] = mapped_column(Text)
    task: Mapped[str | None] = mapped_column(Text)
    card_json: Mapped[str] = mapped_column(Text)
    # The UTF-8 size of card_json (None for versions stored before it was kept).
    card_bytes: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class UsageRow(Base):
    """One call of a tool (by the tool user) or one use while making it (by the maker)."""

    __tablename__ = "tool_usage"
    __table_args__ = (
        CheckConstraint("role IN ('maker', 'user')", name="ck_tool_usage_role"),
        Index("ix_tool_usage_tool_id", "tool_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tool_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("tools.id", name="fk_tool_usage_tool_id", ondelete="CASCADE")
    )
    tenant: Mapped[str] = mapped_column(String(TENANT_MAX))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    role: Mapped[str] = mapped_column(String(8))
    ok: Mapped[bool] = mapped_column(Boolean)
    prompt_tokens: Mapped[int] = mapped_column(Integer)
    completion_tokens: Mapped[int] = mapped_column(Integer)
    cost_usd: Mapped[float] = mapped_column(Float)
    wall_s: Mapped[float] = mapped_column(Float)


class CandidateRow(Base):
    """A request that no tool fitted: material for making a tool later."""

    __tablename__ = "candidates"
    __table_args__ = (Index("ix_candidates_tenant_id", "tenant", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(TENANT_MAX))
    question: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class TenantRow(Base):
    """A tenant of the public API; its quotas override the deployment's defaults."""

    __tablename__ = "tenants"

    name: Mapped[str] = mapped_column(String(TENANT_MAX), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Quotas: None means the deployment's default.
    requests_per_minute: Mapped[int | None] = mapped_column(Integer)
    concurrent_executions: Mapped[int | None] = mapped_column(Integer)
    concurrent_makes: Mapped[int | None] = mapped_column(Integer)
    max_timeout_ms: Mapped[int | None] = mapped_column(Integer)
    max_memory_mb: Mapped[int | None] = mapped_column(Integer)
    max_tools: Mapped[int | None] = mapped_column(Integer)
    max_versions: Mapped[int | None] = mapped_column(Integer)
    max_stored_mb: Mapped[int | None] = mapped_column(Integer)
    max_card_kb: Mapped[int | None] = mapped_column(Integer)
    max_demos: Mapped[int | None] = mapped_column(Integer)
    max_cases: Mapped[int | None] = mapped_column(Integer)
    max_make_examples: Mapped[int | None] = mapped_column(Integer)
    max_make_kb: Mapped[int | None] = mapped_column(Integer)
    max_question_chars: Mapped[int | None] = mapped_column(Integer)
    max_prompt_tokens: Mapped[int | None] = mapped_column(Integer)


class ApiKeyRow(Base):
    """One API key of a tenant, stored only as the sha256 of the whole key."""

    __tablename__ = "api_keys"
    __table_args__ = (
        UniqueConstraint("key_id", name="uq_api_keys_key_id"),
        Index("ix_api_keys_tenant", "tenant"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_id: Mapped[str] = mapped_column(String(KEY_ID_MAX))
    tenant: Mapped[str] = mapped_column(
        String(TENANT_MAX),
        ForeignKey("tenants.name", name="fk_api_keys_tenant", ondelete="CASCADE"),
    )
    key_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class UsageEventRow(Base):
    """One model completion billed to a tenant: by role, model and tool (``""``: none)."""

    __tablename__ = "usage_events"
    __table_args__ = (Index("ix_usage_events_tenant_at", "tenant", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(TENANT_MAX))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    request_id: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    model: Mapped[str] = mapped_column(String(MODEL_MAX))
    tool: Mapped[str] = mapped_column(String(NAME_MAX))
    prompt_tokens: Mapped[int] = mapped_column(Integer)
    completion_tokens: Mapped[int] = mapped_column(Integer)
    cost_usd: Mapped[float] = mapped_column(Float)


CASE_SOURCES = ("verification", "reported", "failure")
CASE_KINDS = ("question", "arguments")


class CaseRow(Base):
    """One case of a tool's regression suite: a question (or entrypoint arguments, as JSON)
    and the right answer, or the answer known to be wrong, or neither (the tool raised)."""

    __tablename__ = "regression_cases"
    __table_args__ = (
        CheckConstraint(
            "source IN ('verification', 'reported', 'failure')", name="ck_regression_cases_source"
        ),
        CheckConstraint("kind IN ('question', 'arguments')", name="ck_regression_cases_kind"),
        Index("ix_regression_cases_tenant_tool", "tenant", "tool"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(TENANT_MAX))
    tool: Mapped[str] = mapped_column(String(NAME_MAX))
    # The tool version the case was found against (None: any, e.g. an old card's cases).
    version: Mapped[int | None] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    input: Mapped[str] = mapped_column(Text)
    expected: Mapped[str | None] = mapped_column(Text)
    wrong: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16))
    request_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class RequestRow(Base):
    """One request a tool answered (Solve) or ran (ExecuteTool): what a later report of its
    outcome needs to become a regression case."""

    __tablename__ = "tool_requests"
    __table_args__ = (
        CheckConstraint("kind IN ('question', 'arguments')", name="ck_tool_requests_kind"),
        Index("ix_tool_requests_tenant_request_id", "tenant", "request_id"),
        Index("ix_tool_requests_tenant_created_at", "tenant", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant: Mapped[str] = mapped_column(String(TENANT_MAX))
    request_id: Mapped[str] = mapped_column(String(64))
    tool: Mapped[str] = mapped_column(String(NAME_MAX))
    version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    input: Mapped[str] = mapped_column(Text)
    answer: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class QuotaBucketRow(Base):
    """A tenant's request-rate token bucket, shared by every replica (PostgreSQL only: a
    single SQLite server keeps its buckets in memory)."""

    __tablename__ = "quota_buckets"

    tenant: Mapped[str] = mapped_column(String(TENANT_MAX), primary_key=True)
    tokens: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class QuotaLeaseRow(Base):
    """One concurrency slot a replica holds for a call in flight, until ``expires_at``: the
    replica renews it while the call runs and deletes it at the end, so the slots of a
    replica that died free themselves once their leases run out."""

    __tablename__ = "quota_leases"
    __table_args__ = (Index("ix_quota_leases_tenant_kind", "tenant", "kind"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(TENANT_MAX))
    kind: Mapped[str] = mapped_column(String(16))
    replica: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
