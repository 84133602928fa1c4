"""``latm demo``: run a small tool through a real sandbox and show what happens."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from orchestrator.cli._runtime import open_registry, role_models
from orchestrator.cli._tables import fitted
from orchestrator.cli.make_cmd import show_card, show_event
from orchestrator.config import Settings
from orchestrator.errors import LatmError
from orchestrator.latm.engine import Engine
from orchestrator.latm.tasks import Task, load_task
from orchestrator.latm.user import UserConfig
from orchestrator.models import TokenUsage
from orchestrator.sandboxes import ExecRequest, SandboxBackend, Status, create_backend

# A tool as a maker model would write it for BIG-Bench Hard's word_sorting task.
TOOL = '''\
import re
from collections import Counter


def sort_words(text: str) -> str:
    """Sort the words of a 'Sort the following words alphabetically' question."""
    match = re.search(r"List:\\s*(.*)", text)
    words = (match.group(1) if match else text).split()
    return " ".join(sorted(words))


def letter_histogram(text: str) -> dict:
    counts = Counter()
    for ch in text.lower():
        if ch.isalpha():
            counts[ch] += 1
    return dict(counts.most_common(3))
'''

CALLS: list[tuple[str, str, dict[str, Any]]] = [
    (
        "a normal call",
        "ans = sort_words(question)",
        {"question": "Sort the following words alphabetically: List: syndrome therefrom"},
    ),
    ("an expression", "letter_histogram('mississippi')", {}),
    ("a forbidden import", "import os\nans = os.listdir('/')", {}),
    ("a dunder escape attempt", "ans = ().__class__.__bases__[0].__subclasses__()", {}),
    ("an infinite loop", "while True:\n    pass", {}),
    ("a memory bomb", "ans = 'x' * (10 ** 10)", {}),
    ("the tool again (after all that)", "sort_words('List: pear apple fig')", {}),
]


DEMO_TASK = Path(__file__).with_name("demo_tasks") / "sum_numbers.jsonl"
TENANT = "demo"


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "demo", help="run tools through the sandbox, then make and use a tool with LATM"
    )
    parser.add_argument(
        "--no-model", action="store_true", help="skip the part that needs the models"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    console = Console()
    if not console.is_terminal:
        console = Console(width=160)  # piped output: keep statuses whole
    return asyncio.run(_demo(console, with_model=not args.no_model))


async def _demo(console: Console, *, with_model: bool) -> int:
    settings = Settings()
    backend = create_backend(settings.backend, settings)
    console.print(
        f"[bold]LATM sandbox demo[/] - backend [cyan]{backend.name}[/], isolation "
        f"[cyan]{backend.isolation[0]}[/]"
    )
    console.print("Tool module:", style="bold")
    console.print(TOOL, style="dim", markup=False)
    table = Table("what", "call", "status", "value / error", "wall ms")
    table.columns[2].no_wrap = True
    ok = True
    async with backend:
        for label, call, args in CALLS:
            request = ExecRequest(source=TOOL, call=call, args=args, timeout_ms=1000, memory_mb=128)
            result = await backend.execute("demo", request)
            shown = json.dumps(result.value) if result.error is None else result.error.message
            table.add_row(
                label,
                call.replace("\n", "; "),
                result.status.value,
                shown[:70],
                f"{result.usage.wall_ms:.1f}",
            )
        ok = result.status is Status.OK
        console.print(fitted(table, console))
        if with_model:
            ok = await _latm(console, settings, backend) and ok
    return 0 if ok else 1


async def _latm(console: Console, settings: Settings, backend: SandboxBackend) -> bool:
    """The whole loop on the embedded models: make, verify and register a tool for a small
    task, then answer new questions with it, and show what each role cost."""
    task = load_task(DEMO_TASK)
    console.rule(f"[bold]LATM[/] on {task.name}: maker {settings.maker_model}, "
                 f"user {settings.user_model}")  # fmt: skip
    user, maker = role_models(settings, settings.user_model, settings.maker_model)
    with open_registry(settings) as registry:
        engine = Engine(
            backend=backend,
            registry=registry,
            maker=maker,
            user=user,
            user_config=UserConfig.from_settings(settings),
        )
        try:
            return await _make_and_use(console, engine, task)
        except LatmError as exc:
            console.print(
                f"[red]the models are not available:[/] {escape(str(exc))}", highlight=False
            )
            return False
        finally:
            await engine.aclose()


async def _make_and_use(console: Console, engine: Engine, task: Task) -> bool:
    made = await engine.make(TENANT, task, progress=lambda event: show_event(console, event))
    if made.card is None:
        console.print(
            f"[red]no tool was published:[/] {escape(made.reason or '')}", highlight=False
        )
        return False
    show_card(console, made.card)
    table = Table("question", "route", "call written by the user model", "answer", "expected")
    user = TokenUsage()
    for example in task.split().test:
        solved = await engine.solve(TENANT, example.input)
        for usage in solved.usage.values():
            user = user + usage
        route = f"{solved.tool} v{solved.version}" if solved.tool else "direct"
        table.add_row(example.input, route, solved.call or "", str(solved.answer), example.target)
    console.print(fitted(table, console))
    questions = len(task.split().test)
    console.print(
        f"[bold]cost split[/]: maker {made.usage.total_tokens} tokens (${made.usage.cost_usd:.6f}, "
        f"once); user and dispatcher {user.total_tokens} tokens (${user.cost_usd:.6f}) for "
        f"{questions} questions, {user.total_tokens // max(questions, 1)} per question",
        highlight=False,
    )
    return True
