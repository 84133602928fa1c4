"""Read-only views of one tenant's registry rows that the API's messages do not carry:
every version of a tool, and tool calls with their failures. Each is one statement, always
filtered by the tenant the caller's key belongs to."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select

from orchestrator.registry import ToolRegistry
from orchestrator.registry.schema import ToolRow, UsageEventRow, UsageRow


@dataclass(frozen=True)
class VersionRow:
    version: int
    created_at: datetime
    sha256: str


@dataclass(frozen=True)
class Calls:
    """Calls of a tool by the tool user, and how many of them failed."""

    calls: int = 0
    failed: int = 0

    @property
    def failure_rate(self) -> float | None:
        return self.failed / self.calls if self.calls else None


def versions(registry: ToolRegistry, tenant: str, name: str) -> list[VersionRow]:
    """Every stored version of ``name``, oldest first."""
    query = (
        select(ToolRow.version, ToolRow.created_at, ToolRow.sha256)
        .where(ToolRow.tenant == tenant, ToolRow.name == name)
        .order_by(ToolRow.version)
    )
    with registry.transaction(f"listing the versions of {name!r}") as session:
        return [VersionRow(*row) for row in session.execute(query).all()]


def version_counts(registry: ToolRegistry, tenant: str) -> dict[str, int]:
    query = (
        select(ToolRow.name, func.count(ToolRow.id))
        .where(ToolRow.tenant == tenant)
        .group_by(ToolRow.name)
    )
    with registry.transaction("counting versions") as session:
        return {name: int(count) for name, count in session.execute(query).all()}


def calls(registry: ToolRegistry, tenant: str) -> dict[str, Calls]:
    """Per tool name: the tool user's calls of any version, and the failed ones."""
    query = (
        select(
            ToolRow.name,
            func.count(UsageRow.id),
            func.sum(case((UsageRow.ok, 0), else_=1)),
        )
        .join(UsageRow, UsageRow.tool_id == ToolRow.id)
        .where(ToolRow.tenant == tenant, UsageRow.role == "user")
        .group_by(ToolRow.name)
    )
    with registry.transaction("counting tool calls") as session:
        return {
            name: Calls(int(count), int(failed or 0))
            for name, count, failed in session.execute(query).all()
        }


def cost_by_role(registry: ToolRegistry, tenant: str) -> dict[str, float]:
    """Model cost in dollars by role (maker, user, ...) over all of ``tenant``'s usage."""
    query = (
        select(UsageEventRow.role, func.sum(UsageEventRow.cost_usd))
        .where(UsageEventRow.tenant == tenant)
        .group_by(UsageEventRow.role)
    )
    with registry.transaction("reading usage by role") as session:
        return {role or "other": float(cost or 0) for role, cost in session.execute(query).all()}
