"""``latm bench``: the paper's experiment, LATM against chain of thought, per task."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from orchestrator.cli._runtime import add_common, open_engine
from orchestrator.cli._tables import fitted
from orchestrator.cli.make_cmd import show_event
from orchestrator.errors import LatmError
from orchestrator.latm.experiment import TaskReport, run_task
from orchestrator.latm.progress import MakeEvent
from orchestrator.latm.tasks import Split, load_task


def register(commands: Any) -> None:
    bench = commands.add_parser("bench", help="the paper's experiment: LATM vs chain of thought")
    bench.add_argument("task_files", nargs="+", type=Path, metavar="TASK_FILE")
    bench.add_argument("--tool", default=None, help="use this registered tool; make none")
    bench.add_argument(
        "--baseline", choices=("cot", "none"), default="cot", help="the baseline to run"
    )
    bench.add_argument("--limit", type=int, default=None, help="test questions per task")
    bench.add_argument("--split", default=None, help="demos/validation/test, e.g. 0-2/5-7/10")
    bench.add_argument("--json", type=Path, default=None, metavar="OUT", help="write JSON here")
    add_common(bench, maker=True)
    bench.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    started = dt.datetime.now(dt.UTC)
    try:
        tasks = [load_task(path) for path in args.task_files]
        split = Split.parse(args.split) if args.split else None
        reports = asyncio.run(_bench(args, tasks, split, console))
    except LatmError as exc:
        console.print(f"[red]latm bench:[/red] {escape(str(exc))}", highlight=False)
        return 1
    out = Console()
    out.print(fitted(table(reports), out))
    if args.json:
        document = {
            "benchmark": "latm_vs_cot",
            "started": started.isoformat(timespec="seconds"),
            "maker": args.maker,
            "user": args.user,
            "limit": args.limit,
            "tasks": [report.to_dict() for report in reports],
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(document, indent=2) + "\n")
        console.print(f"wrote {args.json}")
    failed = [report for report in reports if report.error]
    for report in failed:
        console.print(
            f"[red]latm bench:[/red] {escape(report.task)}: {escape(report.error or '')}",
            highlight=False,
        )
    return 1 if failed else 0


async def _bench(
    args: argparse.Namespace, tasks: list[Any], split: Split | None, console: Console
) -> list[TaskReport]:
    reports = []
    async with open_engine(args, maker=args.tool is None) as engine:
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
        with Progress(*columns, TimeElapsedColumn(), console=console) as bar:
            for task in tasks:
                size = len(task.split(split).test[: args.limit])
                arms = 1 + (args.baseline == "cot")
                job = bar.add_task(f"{task.name}: making a tool", total=size * arms)

                def said(event: MakeEvent, job: Any = job, name: str = task.name) -> None:
                    bar.update(job, description=f"{name}: {event.stage}")
                    show_event(console, event)

                def tick(job: Any = job, name: str = task.name) -> None:
                    bar.update(job, advance=1, description=f"{name}: answering")

                reports.append(
                    await run_task(
                        engine,
                        args.tenant,
                        task,
                        split=split,
                        limit=args.limit,
                        tool=args.tool,
                        baseline=args.baseline == "cot",
                        progress=said,
                        tick=tick,
                    )
                )
    return reports


def table(reports: list[TaskReport]) -> Table:
    view = Table(title="LATM vs chain of thought (accuracy %, exact match)")
    view.add_column("task", no_wrap=True)
    for column in (
        "n", "tool", "attempts", "LATM %", "answered by", "CoT %", "maker tok", "user tok",
        "CoT tok", "cost $", "wall s",
    ):  # fmt: skip
        view.add_column(column)
    for r in reports:
        latm, cot = r.latm, r.cot
        cost = r.maker_usage.cost_usd + sum(a.usage.cost_usd for a in (latm, cot) if a)
        wall = r.make_wall_s + sum(a.wall_s for a in (latm, cot) if a)
        view.add_row(
            r.task,
            str(r.test_size),
            r.tool or f"none ({(r.make_reason or r.error or '')[:40]})",
            "/".join(f"{k[0]}{v}" for k, v in r.make_attempts.items()) or "-",
            _pct(latm.accuracy(r.test_size) if latm else None),
            (latm.model or "-") if latm else "-",
            _pct(cot.accuracy(r.test_size) if cot else None),
            str(r.maker_usage.total_tokens),
            str(latm.usage.total_tokens if latm else 0),
            str(cot.usage.total_tokens if cot else 0),
            f"{cost:.4f}",
            f"{wall:.0f}",
        )
    return view


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"
