"""The queries the registry sends, built with SQLAlchemy Core; each is one statement."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, case, func, select

from orchestrator.registry.schema import ToolRow, UsageRow


def one_version(what: Any, tenant: str, name: str, version: int | None) -> Select:
    """``what`` of one version of a tool: ``version``, or the latest."""
    query = select(what).where(ToolRow.tenant == tenant, ToolRow.name == name)
    if version is not None:
        return query.where(ToolRow.version == version)
    return query.order_by(ToolRow.version.desc()).limit(1)


def summaries(tenant: str) -> Select:
    """The latest version of each tool joined with the usage totals of its name."""
    latest = (
        select(ToolRow.name, func.max(ToolRow.version).label("version"))
        .where(ToolRow.tenant == tenant)
        .group_by(ToolRow.name)
        .subquery()
    )
    used = (
        select(
            ToolRow.name,
            func.count(UsageRow.id).label("uses"),
            func.sum(UsageRow.cost_usd).label("cost_usd"),
        )
        .join(UsageRow, UsageRow.tool_id == ToolRow.id)
        .where(ToolRow.tenant == tenant)
        .group_by(ToolRow.name)
        .subquery()
    )
    return (
        select(
            ToolRow.name,
            ToolRow.version,
            ToolRow.description,
            ToolRow.signature,
            ToolRow.entrypoint,
            ToolRow.sha256,
            ToolRow.created_at,
            func.coalesce(used.c.uses, 0).label("uses"),
            func.coalesce(used.c.cost_usd, 0.0).label("cost_usd"),
        )
        .join(latest, (latest.c.name == ToolRow.name) & (latest.c.version == ToolRow.version))
        .outerjoin(used, used.c.name == ToolRow.name)
        .where(ToolRow.tenant == tenant)
        .order_by(ToolRow.name)
    )


def usage_by_role(tenant: str, name: str) -> Select:
    return (
        select(
            UsageRow.role,
            func.count(UsageRow.id).label("calls"),
            func.sum(case((UsageRow.ok, 1), else_=0)).label("ok"),
            func.sum(UsageRow.prompt_tokens).label("prompt_tokens"),
            func.sum(UsageRow.completion_tokens).label("completion_tokens"),
            func.sum(UsageRow.cost_usd).label("cost_usd"),
            func.sum(UsageRow.wall_s).label("wall_s"),
        )
        .join(ToolRow, ToolRow.id == UsageRow.tool_id)
        .where(ToolRow.tenant == tenant, ToolRow.name == name)
        .group_by(UsageRow.role)
    )
