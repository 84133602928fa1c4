"""The engine's own cost: per-request overhead, and dispatch time with many tools.

1. Overhead: ``Engine.solve`` with scripted models that answer instantly, so what is measured
   is the engine itself (registry reads and writes, the dispatcher's prompt and parsing, the
   user's prompt, the sandboxed call, usage accounting). In the same run, the bare sandboxed
   call is measured as the floor. Target: p50 <= 10 ms.
2. Dispatch with N tools registered (default 10,000), each with a usage demo: the whole
   route as the engine takes it, i.e. the registry read (cached against its revision), the
   BM25 shortlist, the shortlist's demo questions from the card cache and the evidence
   weighed on them, and, when the evidence leaves the choice open, a scripted dispatcher
   model that answers instantly. The shortlist alone is timed beside it. Target: p50 <= 50 ms
   for the whole route.

    .venv/bin/python bench/engine.py            # writes bench/results/engine.json
    .venv/bin/python bench/engine.py --quick    # a small run, for tests
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import write_report  # noqa: E402 - after the path set-up
from bench.sandbox_latency import machine_info, percentile  # noqa: E402
from orchestrator.latm.cards import ToolCard  # noqa: E402
from orchestrator.latm.dispatcher import Choice  # noqa: E402
from orchestrator.latm.engine import Engine  # noqa: E402
from orchestrator.models import open_model  # noqa: E402
from orchestrator.registry import ToolRegistry  # noqa: E402
from orchestrator.sandboxes import ExecRequest, create_backend  # noqa: E402
from tests.support.cards import tool_card  # noqa: E402

DEFAULT_OUT = ROOT / "bench" / "results" / "engine.json"
TENANT = "bench"
TARGET_OVERHEAD_P50_MS = 10.0
TARGET_DISPATCH_P50_MS = 50.0
SOURCE = '''\
def sort_words(words: list) -> str:
    """Sort a list of words alphabetically; returns them joined by single spaces."""
    return " ".join(sorted(words))
'''
CALL = "ans = sort_words(['pear', 'apple', 'fig'])"
QUESTION = "Sort the following words alphabetically: List: pear apple fig"
TOPICS = (
    "sort words alphabetically", "count vowels in a word", "add numbers", "reverse a string",
    "parse dates", "solve a linear equation", "convert units", "schedule meetings",
    "track shuffled objects", "balance parentheses", "evaluate boolean expressions",
    "find the median", "compute remainders", "rank movies", "navigate a grid",
)  # fmt: skip


def card(name: str, description: str, source: str = SOURCE, demo: str | None = None) -> ToolCard:
    """A verified tool ``name`` (``source`` defines it under that name), with one usage
    demo asking ``demo`` when given."""
    demos = [(demo, f"ans = {name}(['b', 'a'])", "a b")] if demo else []
    return tool_card(
        source,
        name,
        demos,
        description=description,
        maker="bench",
        signature=f"{name}(words: list) -> str",
        verification={"passed": 3, "total": 3},
    )


def script(folder: Path, name: str, responses: list[str]) -> str:
    path = folder / f"{name}.json"
    path.write_text(json.dumps(responses))
    return f"scripted:{path}"


def stats_ms(values_s: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values_s]
    return {
        "p50": round(percentile(ms, 50), 3),
        "p90": round(percentile(ms, 90), 3),
        "p99": round(percentile(ms, 99), 3),
        "mean": round(statistics.fmean(ms), 3),
    }


async def overhead(folder: Path, requests: int) -> dict[str, Any]:
    """Engine.solve (dispatch + user + sandbox + accounting) against the bare sandboxed call."""
    backend = create_backend("process")
    registry = ToolRegistry.open(f"sqlite:///{folder / 'overhead.db'}")
    try:
        registry.publish(TENANT, card("sort_words", "Sort words alphabetically."))
        engine = Engine(
            backend=backend,
            registry=registry,
            user=open_model(script(folder, "user", [CALL] * (requests + 10))),
            dispatcher=open_model(script(folder, "dispatcher", ["sort_words"] * (requests + 10))),
        )
        bare, solved = [], []
        for _ in range(10):  # warm-up: sandbox workers forked, caches filled
            await engine.solve(TENANT, QUESTION)
        for _ in range(requests):
            started = time.perf_counter()
            await backend.execute(TENANT, ExecRequest(source=SOURCE, call=CALL))
            bare.append(time.perf_counter() - started)
            started = time.perf_counter()
            answer = await engine.solve(TENANT, QUESTION)
            solved.append(time.perf_counter() - started)
            assert answer.answer == "apple fig pear", answer
    finally:
        await backend.close()
        registry.close()
    engine_ms, bare_ms = stats_ms(solved), stats_ms(bare)
    return {
        "requests": requests,
        "engine_solve_ms": engine_ms,
        "bare_sandbox_call_ms": bare_ms,
        "engine_minus_sandbox_p50_ms": round(engine_ms["p50"] - bare_ms["p50"], 3),
        "target_p50_ms": TARGET_OVERHEAD_P50_MS,
        "meets_target": engine_ms["p50"] <= TARGET_OVERHEAD_P50_MS,
    }


async def dispatch(folder: Path, tools: int, queries: int) -> dict[str, Any]:
    """The engine's route with ``tools`` registered: registry read (cached on its
    revision), BM25 shortlist, demo evidence, and the scripted model when asked."""
    registry = ToolRegistry.open(f"sqlite:///{folder / 'dispatch.db'}")
    try:
        started = time.perf_counter()
        for number in range(tools):
            topic = TOPICS[number % len(TOPICS)]
            source = SOURCE.replace("sort_words", f"tool_{number}")
            described = f"Tool {number}: {topic}, variant {number}."
            demo = f"Please {topic} for item {number}"
            registry.publish(TENANT, card(f"tool_{number}", described, source, demo))
        publish_s = time.perf_counter() - started
        engine = Engine(
            backend=create_backend("process"),  # never started: no call reaches a sandbox
            registry=registry,
            user=open_model(script(folder, "unused", [])),
            dispatcher=open_model(script(folder, "dispatcher", ["tool_0"] * (queries + 1))),
        )
        shortlist_s: list[float] = []
        route_s: list[float] = []
        first_s = 0.0
        routed_by: dict[str, int] = {}
        for number in range(queries + 1):
            question = f"Please {TOPICS[number % len(TOPICS)]} for request {number}"
            started = time.perf_counter()
            shortlist = engine.dispatcher.candidates(question, engine.tools(TENANT))
            shortlisted = time.perf_counter() - started
            assert shortlist, question
            started = time.perf_counter()
            choice = await route(engine, question)
            routed = time.perf_counter() - started
            if number == 0:
                first_s = shortlisted  # reads every tool and builds the index
                continue
            shortlist_s.append(shortlisted)
            route_s.append(routed)
            routed_by[choice.by] = routed_by.get(choice.by, 0) + 1
    finally:
        registry.close()
    result = stats_ms(route_s)
    return {
        "tools": tools,
        "queries": queries,
        "publish_all_s": round(publish_s, 2),
        "first_request_ms": round(first_s * 1000, 1),
        "dispatch_ms": result,
        "shortlist_only_ms": stats_ms(shortlist_s),
        "routed_by": routed_by,
        "target_p50_ms": TARGET_DISPATCH_P50_MS,
        "meets_target": result["p50"] <= TARGET_DISPATCH_P50_MS,
    }


async def route(engine: Engine, question: str) -> Choice:
    """The engine's dispatch of one question: shortlist, demo evidence, model if asked."""
    tools = engine.tools(TENANT)
    return await engine.dispatcher.choose(
        question, tools, lambda shortlist: engine.demo_questions(TENANT, shortlist)
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=300, help="engine requests")
    parser.add_argument("--tools", type=int, default=10_000, help="tools registered")
    parser.add_argument("--queries", type=int, default=100, help="dispatch queries")
    parser.add_argument("--quick", action="store_true", help="a small run, for tests")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON output path")
    args = parser.parse_args(argv)
    if args.quick:
        args.requests, args.tools, args.queries = 30, 300, 20
    console = Console()
    started = dt.datetime.now(dt.UTC)
    with tempfile.TemporaryDirectory(prefix="latm-bench-") as tmp:
        console.print(f"engine overhead: {args.requests} requests")
        over = asyncio.run(overhead(Path(tmp), args.requests))
        console.print(f"dispatch: {args.tools} tools, {args.queries} queries")
        disp = asyncio.run(dispatch(Path(tmp), args.tools, args.queries))
    report = {
        "benchmark": "engine",
        "date": started.date().isoformat(),
        "machine": machine_info(),
        "overhead": over,
        "dispatch": disp,
    }
    write_report(report, args.out)
    console.print(
        f"engine.solve p50 {over['engine_solve_ms']['p50']} ms (bare sandbox call "
        f"{over['bare_sandbox_call_ms']['p50']} ms; target <= {TARGET_OVERHEAD_P50_MS})\n"
        f"dispatch with {disp['tools']} tools p50 {disp['dispatch_ms']['p50']} ms "
        f"(shortlist alone {disp['shortlist_only_ms']['p50']} ms; routed by {disp['routed_by']}; "
        f"first request {disp['first_request_ms']} ms; target <= {TARGET_DISPATCH_P50_MS})\n"
        f"wrote {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
