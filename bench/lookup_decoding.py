"""Prompt-lookup decoding against plain decoding, on the tool user's own prompts.

A tool call mostly copies the question (its words, the bracket string, the availability
strings), so drafting the next tokens from the conversation's own text and letting the model
check them in one batch (llama-cpp-python's ``prompt-lookup-decoding``, the platform's
``LATM_LOCAL_LOOKUP_TOKENS``) can write it in fewer model steps. Greedy decoding is exact
either way, so the replies must be the same and only the seconds may differ.

For each task, the tool is made from ``bench/tools/TASK.json`` as in ``bench/cheap_user.py``;
then for each of the first ``--limit`` test questions the user's first prompt (the tool's
source, its usage demos, the question) goes to one local server per setting, in turn and in
a rotating order, at temperature 0 with the user's token cap. Reported per task and
setting: median and mean seconds per reply, completion tokens, and how many replies equal
the plain server's. Writes ``bench/results/lookup_decoding.json``.

    .venv/bin/python bench/lookup_decoding.py                     # 0.5B, 10 per task
    .venv/bin/python bench/lookup_decoding.py --model qwen2.5-coder-1.5b --lookup 0 10
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import write_report  # noqa: E402 - after the path set-up
from bench.cheap_user import BBH, TASKS, make_tool  # noqa: E402
from bench.sandbox_latency import machine_info  # noqa: E402
from orchestrator.config import Settings  # noqa: E402
from orchestrator.latm.prompts import user_messages  # noqa: E402
from orchestrator.latm.runner import ToolRunner  # noqa: E402
from orchestrator.latm.tasks import load_task  # noqa: E402
from orchestrator.latm.user import USER_PARAMS  # noqa: E402
from orchestrator.models import ModelAdapter, open_model  # noqa: E402
from orchestrator.sandboxes import create_backend  # noqa: E402

DEFAULT_OUT = ROOT / "bench" / "results" / "lookup_decoding.json"


def _row(seconds: list[float], tokens: list[int], same: int) -> dict[str, Any]:
    return {
        "replies": len(seconds),
        "seconds_p50": round(statistics.median(seconds), 3),
        "seconds_mean": round(statistics.fmean(seconds), 3),
        "completion_tokens_mean": round(statistics.fmean(tokens), 1),
        "same_reply_as_plain": same,
    }


async def run(args: argparse.Namespace, report: dict[str, Any]) -> dict[str, Any]:
    settings = Settings()
    backend = create_backend(settings.backend, settings)
    models: dict[int, ModelAdapter] = {
        n: open_model(f"local:{args.model}", settings.model_copy(update={"local_lookup_tokens": n}))
        for n in args.lookup
    }
    results: dict[str, Any] = {}
    try:
        for name in args.tasks:
            task = load_task(BBH / f"{name}.json")
            card = await make_tool(task, ToolRunner(backend, "lookup-decoding"))
            seconds: dict[int, list[float]] = {n: [] for n in models}
            tokens: dict[int, list[int]] = {n: [] for n in models}
            same = dict.fromkeys(models, 0)
            for turn, example in enumerate(list(task.split().test)[: args.limit]):
                messages = user_messages(card, example.input)
                order = list(models)
                order = order[turn % len(order) :] + order[: turn % len(order)]
                texts: dict[int, str] = {}
                for n in order:
                    reply = await models[n].complete(messages, USER_PARAMS)
                    seconds[n].append(reply.latency_s)
                    tokens[n].append(reply.usage.completion_tokens)
                    texts[n] = reply.text
                for n in models:
                    same[n] += texts[n] == texts[min(models)]
            results[name] = {
                "tool": card.signature,
                **{f"lookup_{n}": _row(seconds[n], tokens[n], same[n]) for n in models},
            }
            print(name, results[name], flush=True)
            write_report({**report, "tasks": results}, args.out)
    finally:
        for model in models.values():
            await model.aclose()
        await backend.close()
    return {"tasks": results, "overall": _overall(results, list(models))}


def _overall(results: dict[str, Any], settings: list[int]) -> dict[str, Any]:
    """Per setting: the median over tasks of each task's median seconds, and its ratio to
    the plain server's (below 1: faster)."""
    base = min(settings)
    out: dict[str, Any] = {}
    for n in settings:
        p50 = [r[f"lookup_{n}"]["seconds_p50"] for r in results.values()]
        ratios = [
            r[f"lookup_{n}"]["seconds_p50"] / r[f"lookup_{base}"]["seconds_p50"]
            for r in results.values()
        ]
        out[f"lookup_{n}"] = {
            "median_of_task_p50_s": round(statistics.median(p50), 3),
            "median_ratio_to_plain": round(statistics.median(ratios), 3),
            "same_reply_as_plain": sum(
                r[f"lookup_{n}"]["same_reply_as_plain"] for r in results.values()
            ),
            "replies": sum(r[f"lookup_{n}"]["replies"] for r in results.values()),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--limit", type=int, default=10, help="test questions per task")
    parser.add_argument("--model", default="qwen2.5-coder-0.5b")
    parser.add_argument("--lookup", nargs="+", type=int, default=[0, 10],
                        help="drafted tokens per setting (0: plain decoding)")  # fmt: skip
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if 0 not in args.lookup:
        parser.error("--lookup must include 0 (plain decoding, the peer)")
    report = {
        "benchmark": "lookup_decoding",
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "config": {"model": args.model, "limit": args.limit, "lookup": args.lookup,
                   "params": USER_PARAMS.model_dump(), "split": "test from index 10"},
        "machine": machine_info(),
    }  # fmt: skip
    result = asyncio.run(run(args, report))
    write_report({**report, **result}, args.out)
    print(result["overall"], f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
