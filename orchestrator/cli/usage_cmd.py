"""``latm usage``: what a tenant's model calls used, in total, by tool, by model and by day
(or hour); with ``--server``, the API key's tenant as the server metered it."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.table import Column, Table

from orchestrator.cli._session import open_session
from orchestrator.cli._tables import fitted
from orchestrator.errors import LatmError
from orchestrator.registry.tenants import UsageLine, UsageReport


def register(commands: Any) -> None:
    usage = commands.add_parser("usage", help="a tenant's model usage: tokens, calls, dollars")
    usage.add_argument("--start", type=moment, default=None, help="from (ISO date or time, UTC)")
    usage.add_argument("--end", type=moment, default=None, help="until, exclusive (default: now)")
    usage.add_argument("--granularity", choices=["hour", "day"], default="day", help="period size")
    usage.take_tenant()
    usage.take_json()
    usage.take_remote()
    usage.set_defaults(run=run)


def moment(text: str) -> datetime:
    """An ISO date or time; without a zone, UTC."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO date or time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def run(args: argparse.Namespace) -> int:
    try:
        report = asyncio.run(_usage(args))
    except LatmError as exc:
        print(f"latm usage: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(as_json(report), indent=2))
        return 0
    console = Console()
    console.print(fitted(table(report), console))
    return 0


async def _usage(args: argparse.Namespace) -> UsageReport:
    async with open_session(args) as session:
        return await session.usage(args.start, args.end, args.granularity)


def as_json(report: UsageReport) -> dict[str, Any]:
    """The report as ``latm usage --json`` prints it; a line is calls, tokens and dollars."""
    return {
        "tenant": report.tenant,
        "total": asdict(report.total),
        "by_tool": {tool: asdict(line) for tool, line in report.by_tool.items()},
        "by_model": {model: asdict(line) for model, line in report.by_model.items()},
        "by_period": [
            {"start": start.isoformat(), **asdict(line)} for start, line in report.by_period
        ],
    }


def table(report: UsageReport) -> Table:
    view = Table(
        Column("usage", no_wrap=True),
        "calls",
        "prompt tokens",
        "completion tokens",
        "cost $",
        title=f"usage of tenant {report.tenant}",
    )
    rows: list[tuple[str, UsageLine]] = [("total", report.total)]
    rows += [(f"tool {tool or '(none)'}", line) for tool, line in report.by_tool.items()]
    rows += [(f"model {model}", line) for model, line in report.by_model.items()]
    rows += [(f"from {start:%Y-%m-%d %H:%M}", line) for start, line in report.by_period]
    for name, line in rows:
        view.add_row(
            name,
            str(line.calls),
            str(line.prompt_tokens),
            str(line.completion_tokens),
            f"{line.cost_usd:.6f}",
        )
    return view
