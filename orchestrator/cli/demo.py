"""``latm demo``: run a small tool through a real sandbox and show what happens."""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from rich.console import Console
from rich.table import Table

from orchestrator.config import Settings
from orchestrator.errors import LatmError
from orchestrator.models import ChatParams, Message, open_model
from orchestrator.sandboxes import ExecRequest, SandboxBackend, create_backend

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


# Questions for the user model, which answers each with a call of the tool.
QUESTIONS = [
    "Sort the following words alphabetically: List: syndrome therefrom anchor",
    "Sort the following words alphabetically: List: oven costume counterpart",
]
EXAMPLE = "Sort the following words alphabetically: List: banana apple"
USER_SYSTEM = (
    "You answer a question by calling a Python tool. Reply with Python code only: one line "
    "that calls the tool and assigns the final answer to `ans`.\n\nThe tool:\n"
)


def register(commands: Any) -> None:
    parser = commands.add_parser("demo", help="run a small tool through the sandbox")
    parser.add_argument(
        "--no-model", action="store_true", help="skip the part that needs the user model"
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
        ok = result.status.value == "ok"
        console.print(table)
        if with_model:
            ok = await _user_model(console, settings, backend) and ok
    return 0 if ok else 1


async def _user_model(console: Console, settings: Settings, backend: SandboxBackend) -> bool:
    """The user model turns each question into a call; the call runs in the sandbox."""
    console.print(f"[bold]The user model[/] ([cyan]{settings.user_model}[/]) calls the tool:")
    table = Table("question", "call written by the model", "answer", "tokens", "cost $")
    try:
        async with open_model(settings.user_model, settings) as model:
            for question in QUESTIONS:
                reply = await model.complete(_call_prompt(question), ChatParams(max_tokens=80))
                call = reply.text.strip().removeprefix("```python").removesuffix("```").strip()
                result = await backend.execute("demo", ExecRequest(source=TOOL, call=call))
                shown = json.dumps(result.value) if result.error is None else result.error.message
                tokens = f"{reply.usage.prompt_tokens}+{reply.usage.completion_tokens}"
                table.add_row(question, call, shown, tokens, f"{reply.cost_usd:.6f}")
    except LatmError as exc:
        console.print(f"[red]the user model is not available:[/] {exc}", highlight=False)
        return False
    console.print(table)
    return True


def _call_prompt(question: str) -> list[Message]:
    # The usage demo as a worked exchange: small models follow it far more reliably.
    return [
        Message(role="system", content=f"{USER_SYSTEM}```python\n{TOOL}```"),
        Message(role="user", content=f"Question: {EXAMPLE}"),
        Message(role="assistant", content=f'ans = sort_words("{EXAMPLE}")'),
        Message(role="user", content=f"Question: {question}"),
    ]
