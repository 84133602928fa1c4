"""``latm report`` and ``latm repair``: tell a tool's regression suite the right answer to
a request (or that its answer was wrong); have the maker repair a tool against its suite
(here, or with ``--server`` on a server)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape

from orchestrator.cli._runtime import add_common
from orchestrator.cli._session import open_session
from orchestrator.cli.make_cmd import show_event, show_outcome
from orchestrator.errors import LatmError
from orchestrator.latm.outcomes import Report, Reported
from orchestrator.latm.progress import MakeEvent, Relayed
from orchestrator.latm.repair import RepairResult


def register(commands: Any) -> None:
    report = commands.add_parser(
        "report", help="report a request's right answer (or a wrong one) to its tool's suite"
    )
    report.add_argument("--request", default=None, metavar="ID", help="a Solve/exec request id")
    report.add_argument("--tool", default=None, help="the tool (with --question)")
    report.add_argument("--question", default=None, help="the question (with --tool)")
    given = report.add_mutually_exclusive_group(required=True)
    given.add_argument("--answer", default=None, help="the right answer")
    given.add_argument("--wrong", action="store_true", help="the request's answer was wrong")
    report.take_json("one JSON object on stdout")
    report.take_tenant()
    report.take_remote()
    report.set_defaults(run=run_report)

    repair = commands.add_parser(
        "repair", help="repair a tool on its failing cases; publish only if its suite passes"
    )
    repair.add_argument("tool", help="the tool to repair (its latest version)")
    repair.take_json("print the result as JSON")
    add_common(repair, maker=True)
    repair.take_remote()
    repair.set_defaults(run=run_repair)


def run_report(args: argparse.Namespace) -> int:
    report = Report(
        request_id=args.request,
        tool=args.tool,
        question=args.question,
        answer=args.answer,
        wrong=args.wrong,
    )
    try:
        kept = asyncio.run(_report(args, report))
    except LatmError as exc:
        print(f"latm report: {escape(str(exc))}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report_json(kept)))
    else:
        print(f"kept in the suite of {kept.case.tool} ({kept.suite} cases)")
    return 0


async def _report(args: argparse.Namespace, report: Report) -> Reported:
    async with open_session(args) as session:
        return await session.report(report)


def report_json(kept: Reported) -> dict[str, Any]:
    case = kept.case
    return {
        "tool": case.tool,
        "version": case.version,
        "source": case.source,
        "expected": case.expected,
        "wrong": case.wrong,
        "request_id": case.request_id,
        "suite": kept.suite,
        "repairing": kept.repairing,
    }


def run_repair(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    try:
        result = asyncio.run(_repair(args, console))
    except LatmError as exc:
        console.print(f"[red]latm repair:[/red] {escape(str(exc))}", highlight=False)
        return 1
    report = repair_json(result) if args.json else None
    return show_outcome(console, report, result.card, result.reason, "not repaired")


async def _repair(args: argparse.Namespace, console: Console) -> RepairResult:
    async with open_session(args) as session:
        with console.status(f"repairing {args.tool}", spinner="dots") as status:

            def progress(event: MakeEvent | Relayed) -> None:
                show_event(console, event)
                status.update(f"{event.stage}: {event.message[:70]}")

            return await session.repair(args.tool, progress)


def repair_json(result: RepairResult) -> dict[str, Any]:
    return {
        "tool": result.tool,
        "published": result.card is not None,
        "version": result.card.version if result.card else None,
        "reason": result.reason,
        "failing": result.failing,
        "suite": result.suite,
        "usage": result.usage.to_dict(),
        "wall_s": round(result.wall_s, 3),
    }
