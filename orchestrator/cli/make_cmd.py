"""``latm make`` and ``latm solve``: make a tool from a task file; answer a question (here,
or with ``--server`` on a server)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.syntax import Syntax

from orchestrator.cli._runtime import add_common
from orchestrator.cli._session import open_session
from orchestrator.errors import LatmError
from orchestrator.latm.cards import ToolCard
from orchestrator.latm.engine import Solved
from orchestrator.latm.maker import MakeResult
from orchestrator.latm.progress import CaseGraded, MakeEvent, Relayed
from orchestrator.latm.tasks import Split, load_task


def register(commands: Any) -> None:
    make = commands.add_parser("make", help="make, verify and register a tool from a task file")
    make.add_argument("task_file", type=Path, help="BBH-format JSON or JSONL (input, target)")
    make.add_argument("--split", default=None, help="demos/validation/test, e.g. 0-2/5-7/10")
    make.take_json("print the result as JSON")
    add_common(make, maker=True)
    make.take_remote()
    make.set_defaults(run=run_make)

    solve = commands.add_parser("solve", help="answer a question with a tool (or directly)")
    solve.add_argument("question", help="the request")
    solve.add_argument("--tool", default=None, help="use this tool instead of dispatching")
    solve.take_json("one JSON object on stdout")
    add_common(solve)
    solve.take_remote()
    solve.set_defaults(run=run_solve)


def run_make(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    try:
        task = load_task(args.task_file)
        split = Split.parse(args.split) if args.split else None
        result = asyncio.run(_make(args, task, split, console))
    except LatmError as exc:
        console.print(f"[red]latm make:[/red] {escape(str(exc))}", highlight=False)
        return 1
    report = make_report(result) if args.json else None
    return show_outcome(console, report, result.card, result.reason, "no tool published")


def show_outcome(
    console: Console,
    report: dict[str, Any] | None,
    card: ToolCard | None,
    reason: str | None,
    refused: str,
) -> int:
    """A making's or a repair's end: the JSON ``report`` when asked for, else the card
    it published, else why none (after ``refused``); the exit status, 0 with a card."""
    if report is not None:
        print(json.dumps(report, indent=2))
    elif card is not None:
        show_card(Console(), card)
    else:
        console.print(f"[red]{refused}:[/red] {escape(reason or '')}", highlight=False)
    return 0 if card is not None else 1


async def _make(
    args: argparse.Namespace, task: Any, split: Split | None, console: Console
) -> MakeResult:
    async with open_session(args) as session:
        with console.status(f"making a tool for {task.name}", spinner="dots") as status:

            def progress(event: MakeEvent | Relayed) -> None:
                show_event(console, event)
                status.update(f"{event.stage}: {event.message[:70]}")

            return await session.make(task, split, progress)


def show_event(console: Console, event: MakeEvent | Relayed) -> None:
    """One line per step of a making (held-out cases show in the verification's outcome).
    The message carries model text (a maker's error, a tool's output): never markup."""
    if not isinstance(event, CaseGraded):
        console.print(f"[cyan]{event.stage:>8}[/cyan] {escape(event.message)}", highlight=False)


def make_report(result: MakeResult) -> dict[str, Any]:
    return {
        "task": result.task,
        "published": result.card is not None,
        "tool": result.card.name if result.card else None,
        "version": result.card.version if result.card else None,
        "reason": result.reason,
        "attempts": result.attempts,
        "candidates": [candidate.to_dict() for candidate in result.candidates],
        "usage": result.usage.to_dict(),
        "wall_s": round(result.wall_s, 3),
        "card": json.loads(result.card.to_json()) if result.card else None,
    }


def show_card(console: Console, card: ToolCard) -> None:
    """A tool card for people: signature, description, source, demos, verification, cost."""
    tokens = card.provenance.tokens
    console.print(
        Panel.fit(
            f"[bold]{card.name}[/bold] v{card.version}  {card.signature or ''}\n"
            f"{card.description}\n"
            f"verified {card.verification.passed}/{card.verification.total} on held-out cases; "
            f"scorer {card.scorer}; made by {card.provenance.maker} in "
            f"{card.provenance.attempts} attempt(s), {tokens.get('prompt', 0)}+"
            f"{tokens.get('completion', 0)} tokens, ${card.provenance.cost_usd:.6f}",
            title="tool card",
        )
    )
    console.print(Syntax(card.source, "python", line_numbers=False))
    for demo in card.usage_demos:
        console.print(f"[dim]Q:[/dim] {escape(demo.question[:100])}", highlight=False)
        console.print(
            f"   {escape(demo.solution)}  [dim]->[/dim] {escape(demo.answer[:80])}", highlight=False
        )


def run_solve(args: argparse.Namespace) -> int:
    try:
        solved = asyncio.run(_solve(args))
    except LatmError as exc:
        if args.json:
            print(json.dumps({"answer": None, "tool": None, "error": exc.to_dict()}))
        else:
            print(f"latm solve: {escape(str(exc))}", file=sys.stderr)
        return 1
    report = solved.to_dict()
    if args.json:
        print(json.dumps(report))
    else:
        route = f"tool {solved.tool} v{solved.version}" if solved.tool else "no tool (direct)"
        print(solved.answer if solved.answer is not None else f"(no answer: {solved.error})")
        print(f"[{route}; ${solved.cost_usd:.6f}; {solved.wall_s:.2f} s]", file=sys.stderr)
    return 0 if solved.answer is not None else 1


async def _solve(args: argparse.Namespace) -> Solved:
    async with open_session(args) as session:
        return await session.solve(args.question, args.tool)
