"""Routing with the cheap model: the dispatcher, the 0.5B model and the usage demos'
evidence, with the six paper tasks' tools and six unrelated BIG-Bench Hard tools registered.

Each of the twelve tools is made as ``latm make --maker scripted:bench/tools/TASK.json``
makes it (proposed, checked on the demos, verified on the validation cases in the
sandbox) and published for one tenant. Then the dispatcher routes test questions
(the paper's split: from index 10): ``--limit`` of each tool's task, which must go to
that tool, and ``--none-limit`` of each of fourteen tasks no tool was made for, which must
go to none. Two dispatchers side by side:

* ``evidence``: the platform's (demo similarity; the model asked only where that is not
  conclusive, and overruled when its pick is not the tool the demos point to);
* ``model``: the model alone, as in the paper (``--model-limit`` per task, as it asks the
  model for every question).

Writes ``bench/results/routing.json``: per task, the share routed right, how often the
model was asked, the mean route confidence, and seconds per question.

    .venv/bin/python bench/routing.py                   # --limit 50 --none-limit 20
    .venv/bin/python bench/routing.py --limit 5 --none-limit 2 --model-limit 2
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import write_report  # noqa: E402 - after the path set-up
from bench.cheap_user import BBH, TASKS, make_tool  # noqa: E402
from bench.sandbox_latency import machine_info  # noqa: E402
from orchestrator.config import Settings  # noqa: E402
from orchestrator.latm.engine import Engine  # noqa: E402
from orchestrator.latm.runner import ToolRunner  # noqa: E402
from orchestrator.latm.tasks import load_task  # noqa: E402
from orchestrator.models import open_model  # noqa: E402
from orchestrator.registry import ToolRegistry  # noqa: E402
from orchestrator.sandboxes import create_backend  # noqa: E402

DEFAULT_OUT = ROOT / "bench" / "results" / "routing.json"
TENANT = "routing"
UNRELATED = (
    "boolean_expressions",
    "multistep_arithmetic_two",
    "navigate",
    "web_of_lies",
    "object_counting",
    "temporal_sequences",
)
# Every other task of the collection, but the paper tasks' three- and seven-object
# variants (the five-object tools answer those too).
NO_TOOL = (
    "causal_judgement",
    "date_understanding",
    "disambiguation_qa",
    "formal_fallacies",
    "geometric_shapes",
    "hyperbaton",
    "matrixshapes",
    "movie_recommendation",
    "penguins_in_a_table",
    "reasoning_about_colored_objects",
    "ruin_names",
    "salient_translation_error_detection",
    "snarks",
    "sports_understanding",
)


async def route(engine: Engine, questions: list[str], expected: str | None,
                evidence: bool) -> dict[str, Any]:  # fmt: skip
    """Route each question; how many went to ``expected`` (a tool's name, or None)."""
    tools = engine.tools(TENANT)
    right, asked, tokens, seconds, confidence = 0, 0, 0, [], []
    wrong: dict[str, int] = {}
    for question in questions:
        started = time.perf_counter()
        demos = (lambda shortlist: engine.demo_questions(TENANT, shortlist)) if evidence else None
        choice = await engine.dispatcher.choose(question, tools, demos)
        seconds.append(time.perf_counter() - started)
        asked += choice.usage.total_tokens > 0
        tokens += choice.usage.total_tokens
        if choice.confidence is not None:
            confidence.append(choice.confidence)
        if choice.tool == expected:
            right += 1
        else:
            key = choice.tool or "none"
            wrong[key] = wrong.get(key, 0) + 1
    return {
        "right": right,
        "questions": len(questions),
        "share_right": round(right / len(questions), 3),
        "model_asked": asked,
        "tokens_per_question": round(tokens / len(questions), 1),
        "seconds_per_question": round(statistics.fmean(seconds), 3),
        "mean_confidence": round(statistics.fmean(confidence), 3) if confidence else None,
        "wrong": wrong,
    }


def totals(rows: dict[str, dict[str, Any]], names: tuple[str, ...], arm: str) -> dict[str, Any]:
    chosen = [rows[name][arm] for name in names if arm in rows.get(name, {})]
    right = sum(row["right"] for row in chosen)
    questions = sum(row["questions"] for row in chosen)
    return {"right": right, "questions": questions,
            "share_right": round(right / questions, 3) if questions else None}  # fmt: skip


async def run(args: argparse.Namespace) -> dict[str, Any]:
    settings = Settings()
    backend = create_backend(settings.backend, settings)
    model = open_model(args.model, settings)
    rows: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as folder:
        registry = ToolRegistry.open(f"sqlite:///{Path(folder) / 'routing.db'}")
        engine = Engine(backend=backend, registry=registry, user=model)
        try:
            runner = ToolRunner(backend, TENANT)
            made: dict[str, str] = {}
            for name in (*TASKS, *UNRELATED):
                card = await make_tool(load_task(BBH / f"{name}.json"), runner)
                made[name] = registry.publish(TENANT, card).name
                print("published", card.name, card.signature, flush=True)
            for name in (*TASKS, *UNRELATED, *NO_TOOL):
                task = load_task(BBH / f"{name}.json")
                expected = made.get(name)
                limit = args.limit if expected else args.none_limit
                test = [example.input for example in task.split().test]
                rows[name] = {
                    "expected": expected,
                    "evidence": await route(engine, test[:limit], expected, evidence=True),
                }
                if args.model_limit:
                    rows[name]["model"] = await route(
                        engine, test[: args.model_limit], expected, evidence=False
                    )
                print(name, {arm: rows[name][arm]["share_right"] for arm in ("evidence", "model")
                             if arm in rows[name]}, flush=True)  # fmt: skip
        finally:
            await engine.aclose()
            await backend.close()
            registry.close()
    return {
        "tasks": rows,
        "totals": {
            arm: {
                "paper_tasks": totals(rows, TASKS, arm),
                "unrelated_tools": totals(rows, UNRELATED, arm),
                "no_tool": totals(rows, NO_TOOL, arm),
            }
            for arm in ("evidence", "model")
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--limit", type=int, default=50, help="questions per task with a tool")
    parser.add_argument("--none-limit", type=int, default=20, help="questions per task without")
    parser.add_argument("--model-limit", type=int, default=10,
                        help="questions per task, model-alone dispatcher (0: skip)")  # fmt: skip
    parser.add_argument("--model", default="local:qwen2.5-coder-0.5b")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    result = asyncio.run(run(args))
    report = {
        "benchmark": "routing",
        "started_at": started,
        "config": {"model": args.model, "limit": args.limit, "none_limit": args.none_limit,
                   "model_limit": args.model_limit, "split": "0-2/5-7/10"},
        "machine": machine_info(),
        **result,
    }  # fmt: skip
    write_report(report, args.out)
    print(f"totals: {result['totals']}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
