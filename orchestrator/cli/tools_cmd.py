"""``latm tools list | show | export | import | rm``: the tenant's tools in the registry."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from orchestrator.cli._runtime import open_registry
from orchestrator.cli._tables import fitted
from orchestrator.cli.make_cmd import show_card
from orchestrator.config import Settings
from orchestrator.errors import LatmError
from orchestrator.latm.cards import ToolCard
from orchestrator.latm.imports import reverified
from orchestrator.latm.runner import ToolRunner
from orchestrator.registry import ToolSummary
from orchestrator.sandboxes import create_backend


def register(commands: Any) -> None:
    parser = commands.add_parser("tools", help="list, show, export, import or remove tools")
    parser.take_tenant()
    sub = parser.add_subparsers(dest="tools_command", required=True)

    listing = sub.add_parser("list", help="the latest version of each tool")
    listing.take_tenant()
    listing.take_json()
    listing.set_defaults(run=run_list)

    for name, help_text, run in (
        ("show", "a tool card, for people", run_show),
        ("export", "a tool card as JSON (latm.tool/v1) on stdout", run_export),
        ("rm", "remove a tool (every version unless --version)", run_rm),
    ):
        command = sub.add_parser(name, help=help_text)
        command.add_argument("name", help="tool name")
        command.add_argument("--version", type=int, default=None, help="one version")
        command.take_tenant()
        command.set_defaults(run=run)

    importing = sub.add_parser("import", help="import a tool card (JSON file, or - for stdin)")
    importing.add_argument("file", help="path to the card, or -")
    importing.take_tenant()
    importing.set_defaults(run=run_import)


def _guarded(run: Any) -> Any:
    def wrapper(args: argparse.Namespace) -> int:
        try:
            with open_registry(Settings()) as registry:
                return int(run(args, registry))
        except LatmError as exc:
            print(f"latm tools {args.tools_command}: {exc}", file=sys.stderr)
            return 1

    return wrapper


@_guarded
def run_list(args: argparse.Namespace, registry: Any) -> int:
    tools = registry.list(args.tenant)
    if args.json:
        rows = [
            {
                "name": t.name,
                "version": t.version,
                "signature": t.signature,
                "description": t.description,
                "sha256": t.sha256,
                "uses": t.uses,
                "cost_usd": t.cost_usd,
            }
            for t in tools
        ]
        print(json.dumps(rows, indent=2))
        return 0
    console = Console()
    console.print(fitted(table(args.tenant, tools), console))
    return 0


def table(tenant: str, tools: list[ToolSummary]) -> Table:
    view = Table(title=f"tools of tenant {tenant}")
    view.add_column("name", no_wrap=True)
    view.add_column("version", no_wrap=True)
    for column in ("signature", "uses", "cost $", "description"):
        view.add_column(column)
    for t in tools:
        view.add_row(
            t.name,
            str(t.version),
            t.signature or "",
            str(t.uses),
            f"{t.cost_usd:.6f}",
            t.description[:60],
        )
    return view


@_guarded
def run_show(args: argparse.Namespace, registry: Any) -> int:
    show_card(Console(), registry.get(args.tenant, args.name, args.version))
    return 0


@_guarded
def run_export(args: argparse.Namespace, registry: Any) -> int:
    print(registry.export(args.tenant, args.name, args.version))
    return 0


@_guarded
def run_import(args: argparse.Namespace, registry: Any) -> int:
    try:
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text("utf-8")
    except OSError as exc:
        print(f"latm tools import: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 1
    card = registry.publish(args.tenant, asyncio.run(_reverified(args.tenant, text)))
    print(f"{card.name} v{card.version} (usage demos proven {card.verification.passed}/"
          f"{card.verification.total} in the sandbox)")  # fmt: skip
    return 0


async def _reverified(tenant: str, text: str) -> ToolCard:
    """The card proven again in the tenant's sandbox (see orchestrator.latm.imports)."""
    settings = Settings()
    backend = create_backend(settings.backend, settings)
    try:
        return await reverified(ToolCard.from_json(text), ToolRunner(backend, tenant))
    finally:
        await backend.close()


@_guarded
def run_rm(args: argparse.Namespace, registry: Any) -> int:
    removed = registry.remove(args.tenant, args.name, args.version)
    print(f"removed {removed} version(s) of {args.name}")
    return 0
