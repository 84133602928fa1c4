"""``latm tools list | show | export | import | rm``: the tenant's tools, in this machine's
registry or (``--server``) on a server."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from orchestrator.cli._session import Session, open_session
from orchestrator.cli._tables import fitted
from orchestrator.cli.make_cmd import show_card
from orchestrator.errors import LatmError
from orchestrator.registry import ToolSummary

Command = Callable[[argparse.Namespace, Session], Awaitable[int]]


def register(commands: Any) -> None:
    parser = commands.add_parser("tools", help="list, show, export, import or remove tools")
    parser.take_tenant()
    parser.take_remote()
    sub = parser.add_subparsers(dest="tools_command", required=True)

    listing = sub.add_parser("list", help="the latest version of each tool")
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
        command.set_defaults(run=run)

    importing = sub.add_parser("import", help="import a tool card (JSON file, or - for stdin)")
    importing.add_argument("file", help="path to the card, or -")
    importing.set_defaults(run=run_import)
    for command in sub.choices.values():
        command.take_tenant()
        command.take_remote()


def _guarded(run: Command) -> Callable[[argparse.Namespace], int]:
    def wrapper(args: argparse.Namespace) -> int:
        try:
            return asyncio.run(_in_session(run, args))
        except LatmError as exc:
            print(f"latm tools {args.tools_command}: {exc}", file=sys.stderr)
            return 1

    return wrapper


async def _in_session(run: Command, args: argparse.Namespace) -> int:
    async with open_session(args) as session:
        return await run(args, session)


@_guarded
async def run_list(args: argparse.Namespace, session: Session) -> int:
    tools = await session.list_tools()
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
    console.print(fitted(table(await session.tenant(), tools), console))
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
async def run_show(args: argparse.Namespace, session: Session) -> int:
    show_card(Console(), await session.card(args.name, args.version))
    return 0


@_guarded
async def run_export(args: argparse.Namespace, session: Session) -> int:
    print(await session.export(args.name, args.version))
    return 0


@_guarded
async def run_import(args: argparse.Namespace, session: Session) -> int:
    try:
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text("utf-8")
    except OSError as exc:
        print(f"latm tools import: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 1
    card = await session.import_card(text)
    print(f"{card.name} v{card.version} (usage demos proven {card.verification.passed}/"
          f"{card.verification.total} in the sandbox)")  # fmt: skip
    return 0


@_guarded
async def run_rm(args: argparse.Namespace, session: Session) -> int:
    removed = await session.remove(args.name, args.version)
    print(f"removed {removed} version(s) of {args.name}")
    return 0
