"""The tool registry: tool cards stored per tenant, immutable and versioned, with their
usage and the requests no tool fitted (SQLite by default, PostgreSQL by URL)."""

from orchestrator.registry._engine import (
    RegistryUnavailable,
    default_database_url,
    lock_until_commit,
)
from orchestrator.registry.cases import Case, CaseBook, NewCase, Served
from orchestrator.registry.store import (
    StoreLimits,
    ToolRegistry,
    ToolSummary,
    Usage,
    UsageTotals,
    check_card,
)

__all__ = [
    "Case",
    "CaseBook",
    "NewCase",
    "RegistryUnavailable",
    "Served",
    "StoreLimits",
    "ToolRegistry",
    "ToolSummary",
    "Usage",
    "UsageTotals",
    "check_card",
    "default_database_url",
    "lock_until_commit",
]
