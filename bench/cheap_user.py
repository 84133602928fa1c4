"""The cheap path of LATM: the embedded 0.5B user answering the paper's six tasks with
tools a strong maker wrote, each technique of the tool user added in turn.

For each task, the tool is made the way ``latm make --maker scripted:bench/tools/TASK.json``
makes it: the scripted reply (a strong maker's function and its calls) is proposed,
checked on the demos and verified on the validation cases in the sandbox; nothing is
published unless it passes. Then the user model answers the first ``--limit`` test
questions (the paper's split: test from index 10) once per configuration:

* ``plain``: one call, one retry with the sandbox's error (the first tool user);
* ``feedback``: + the call's text checked (no ``ans``, the tool defined again, an import),
  each problem sent back, up to 2 retries;
* ``grounding``: + strings not copied from the question sent back;
* ``snapping``: + a string that nearly copies one stretch of the question replaced with it;
* ``agreement``: + ``--samples`` calls sampled at temperature 0.7, answer by agreement,
  stopping once 2 agree;
* ``snapping_no_grounding`` (out of turn): ``feedback`` + snapping, without grounding;
* ``escalation``: ``snapping_no_grounding`` + one sampled call, and a question answered
  with doubt (no answer, a corrected reply, the two calls disagreeing) asked again of the
  ``--stronger`` model (the cascade of ``LATM_USER_ESCALATE``);
* ``stronger``: ``snapping_no_grounding`` with the ``--stronger`` model as the only user,
  the peer the cascade is measured against;
* ``checked``: ``LATM_USER_CHECK``: the light model answers the tool's held-out cases
  first (``check_user``); a tool it misses any of is used by the ``--stronger`` model;

and, with ``--cot N``, the chain-of-thought baseline with the same model on the first N
(``--configs`` with no name: that baseline alone, e.g. of the ``--user 1.5B``).
Accuracy is the task scorer's match; tokens and seconds are per question. Writes
``bench/results/cheap_user.json``.

The configurations run one after another on the same questions, and a configuration often
asks the model exactly what an earlier one asked (the first greedy call, most of all). Such
a completion is asked once: later configurations replay it and are charged the seconds it
took when it ran (``Replaying``), so each configuration's seconds per question are those it
would take alone, and the ablation costs about one configuration's model time.

    .venv/bin/python bench/cheap_user.py                      # 6 tasks, --limit 50
    .venv/bin/python bench/cheap_user.py --tasks word_sorting --limit 5 --configs plain
    .venv/bin/python bench/cheap_user.py --user local:qwen2.5-coder-1.5b --configs --cot 50
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import statistics
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import write_report  # noqa: E402 - after the path set-up
from bench.sandbox_latency import machine_info  # noqa: E402
from orchestrator.config import Settings  # noqa: E402
from orchestrator.latm.cards import ToolCard  # noqa: E402
from orchestrator.latm.maker import ToolMaker  # noqa: E402
from orchestrator.latm.runner import ToolRunner  # noqa: E402
from orchestrator.latm.scoring import choose_scorer  # noqa: E402
from orchestrator.latm.tasks import Task, load_task  # noqa: E402
from orchestrator.latm.user import ToolUser, UserConfig, chain_of_thought, check_user  # noqa: E402
from orchestrator.models import ModelAdapter, open_model  # noqa: E402
from orchestrator.models.base import (  # noqa: E402
    ChatParams,
    Completion,
    Message,
    RawCompletion,
)
from orchestrator.sandboxes import create_backend  # noqa: E402

DEFAULT_OUT = ROOT / "bench" / "results" / "cheap_user.json"
BBH = ROOT.parent / "shared" / "bbh"
TOOLS = ROOT / "bench" / "tools"
TASKS = (
    "logical_deduction_five_objects",
    "tracking_shuffled_objects_five_objects",
    "dyck_languages",
    "word_sorting",
    "chinese_remainder_theorem",
    "schedule_meeting",
)
# The paper's GPT-3.5 tool user with GPT-4's tools (Cai et al., 2023, Table 3).
PAPER = {
    "logical_deduction_five_objects": 79.7,
    "tracking_shuffled_objects_five_objects": 99.6,
    "dyck_languages": 92.2,
    "word_sorting": 98.3,
    "chinese_remainder_theorem": 100.0,
    "schedule_meeting": 100.0,
}


def configs(samples: int) -> dict[str, UserConfig]:
    plain = UserConfig.plain()
    feedback = replace(plain, retries=2, checks=True)
    grounding = replace(feedback, grounding=True)
    snapping = replace(grounding, snap=True)
    return {
        "plain": plain,
        "feedback": feedback,
        "grounding": grounding,
        "snapping": snapping,
        "agreement": replace(snapping, samples=samples, agree=2),
        # Out of turn: snapping without grounding's feedback (which the 0.5B follows badly).
        "snapping_no_grounding": replace(feedback, snap=True),
        "escalation": replace(feedback, snap=True, samples=1, agree=2, escalate=True),
        "stronger": replace(feedback, snap=True),
        "checked": replace(feedback, snap=True, check=True),
        # The defaults, with each retry a fresh sample rather than the problem sent back.
        "fresh_retries": replace(feedback, snap=True, feedback=False),
    }


class Replaying(ModelAdapter):
    """A model whose completions are asked once per question: the n-th identical request
    made for a question replays the n-th reply that request got (from any configuration),
    and its measured seconds are added to :attr:`replayed_s`."""

    def __init__(self, inner: ModelAdapter) -> None:
        super().__init__(inner.spec)
        self.inner = inner
        self.replayed_s = 0.0
        self._kept: dict[tuple[str, int], Completion] = {}
        self._seen: Counter[str] = Counter()

    def question(self) -> None:
        """A new question: its completions are kept apart from the previous one's."""
        self._kept.clear()

    def configuration(self) -> None:
        """A new configuration on the same question: its requests count from the first."""
        self._seen.clear()

    async def complete(
        self, messages: list[Message] | tuple[Message, ...], params: ChatParams | None = None
    ) -> Completion:
        request = json.dumps(
            [[m.model_dump() for m in messages], (params or ChatParams()).model_dump()],
            sort_keys=True,
        )
        self._seen[request] += 1
        key = (request, self._seen[request])
        if key in self._kept:
            self.replayed_s += self._kept[key].latency_s
            return self._kept[key]
        self._kept[key] = completion = await self.inner.complete(messages, params)
        return completion

    async def _complete(self, messages: list[Message], params: ChatParams) -> RawCompletion:
        raise NotImplementedError  # complete() is overridden

    async def aclose(self) -> None:
        await self.inner.aclose()


async def make_tool(task: Task, runner: ToolRunner) -> ToolCard:
    """The task's tool, proposed and verified from the strong maker's scripted reply."""
    maker = open_model(f"scripted:{TOOLS / f'{task.name}.json'}")
    made = await ToolMaker(maker, runner, max_attempts=1).make(task)
    if made.card is None:
        raise SystemExit(f"{task.name}: the scripted tool was not verified: {made.reason}")
    return made.card


async def arms(
    model: Replaying,
    runner: ToolRunner,
    chosen: dict[str, UserConfig],
    card: ToolCard,
    task: Task,
    limit: int,
    stronger: Replaying | None = None,
) -> dict[str, dict[str, Any]]:
    """Every configuration on each question in turn (so the model's replies are shared)."""
    scorer = choose_scorer(task)
    test = list(task.split().test)[:limit]
    rows: dict[str, dict[str, Any]] = {
        label: {"correct": 0, "seconds": [], "tokens": [], "replies": [], "confidence": [],
                "snapped": 0, "escalated": 0, "misses": []}
        for label in chosen
    }  # fmt: skip
    models = [model] if stronger is None else [model, stronger]
    checked = None
    if "checked" in chosen and stronger is not None:
        started = time.perf_counter()
        light = ToolUser(model, runner, config=replace(chosen["checked"], check=False))
        check = await check_user(light, card)
        checked = ToolUser(stronger if not check.passed else model, runner, config=light.config)
        rows["checked"]["check"] = check.model_dump() | {
            "seconds": round(time.perf_counter() - started, 2)
        }
    for example in test:
        for each in models:
            each.question()
        for label, config in chosen.items():
            for each in models:
                each.configuration()
            row, replayed = rows[label], sum(each.replayed_s for each in models)
            started = time.perf_counter()
            if label == "checked" and checked is not None:
                user = checked
            elif label == "stronger" and stronger is not None:
                user = ToolUser(stronger, runner, config=config)
            else:
                user = ToolUser(model, runner, config=config, stronger=stronger)
            answer = await user.answer(card, example.input)
            replayed = sum(each.replayed_s for each in models) - replayed
            row["seconds"].append(time.perf_counter() - started + replayed)
            row["escalated"] += answer.escalated
            row["tokens"].append(answer.usage.total_tokens)
            row["replies"].append(answer.attempts)
            row["snapped"] += answer.snapped
            if answer.confidence is not None:
                row["confidence"].append(answer.confidence)
            if answer.error is None and scorer.matches(answer.value, example):
                row["correct"] += 1
            elif len(row["misses"]) < 5:
                row["misses"].append(
                    {
                        "index": example.index,
                        "expected": example.target,
                        "got": answer.answer,
                        "call": answer.call,
                        "error": answer.error,
                    }
                )
    return {label: _summarise(row, len(test)) for label, row in rows.items()}


def _summarise(row: dict[str, Any], questions: int) -> dict[str, Any]:
    return {
        "accuracy": round(100 * row["correct"] / questions, 1),
        "correct": row["correct"],
        "questions": questions,
        "seconds_per_question": round(statistics.fmean(row["seconds"]), 2),
        "seconds_p50": round(statistics.median(row["seconds"]), 2),
        "tokens_per_question": round(statistics.fmean(row["tokens"]), 1),
        "replies_per_question": round(statistics.fmean(row["replies"]), 2),
        "mean_confidence": (
            round(statistics.fmean(row["confidence"]), 3) if row["confidence"] else None
        ),
        "strings_snapped": row["snapped"],
        "escalated_share": round(row["escalated"] / questions, 3),
        **({"user_check": row["check"]} if "check" in row else {}),
        "misses": row["misses"],
    }


async def cot(model: ModelAdapter, task: Task, limit: int) -> dict[str, Any]:
    scorer = choose_scorer(task)
    test = list(task.split().test)[:limit]
    correct, seconds, tokens = 0, [], []
    for example in test:
        started = time.perf_counter()
        answer = await chain_of_thought(model, example.input)
        seconds.append(time.perf_counter() - started)
        tokens.append(answer.usage.total_tokens)
        correct += answer.answer is not None and scorer.matches(answer.answer, example)
    return {
        "accuracy": round(100 * correct / len(test), 1),
        "questions": len(test),
        "seconds_per_question": round(statistics.fmean(seconds), 2),
        "tokens_per_question": round(statistics.fmean(tokens), 1),
    }


def summary(results: dict[str, Any], labels: list[str]) -> dict[str, Any]:
    """The tasks so far and, per configuration, the mean accuracy over them."""
    means = {
        label: round(statistics.fmean(r[label]["accuracy"] for r in results.values()), 1)
        for label in labels
        if results and all(label in r for r in results.values())
    }
    return {"tasks": results, "mean_accuracy": means}


async def run(args: argparse.Namespace, report: dict[str, Any]) -> dict[str, Any]:
    """Every task in turn; the report is written after each, so a cut-off run keeps them."""
    settings = Settings()
    backend = create_backend(settings.backend, settings)
    model = Replaying(open_model(args.user, settings))
    chosen = {name: c for name, c in configs(args.samples).items() if name in args.configs}
    stronger = (
        Replaying(open_model(args.stronger, settings))
        if {"escalation", "stronger", "checked"} & set(chosen)
        else None
    )
    labels = [*chosen, "cot"] if args.cot else list(chosen)
    results: dict[str, Any] = {}
    try:
        for name in args.tasks:
            task = load_task(BBH / f"{name}.json")
            runner = ToolRunner(backend, "cheap-user")
            card = await make_tool(task, runner)
            row: dict[str, Any] = {"tool": card.signature, "paper_gpt35": PAPER.get(name)}
            row |= await arms(model, runner, chosen, card, task, args.limit, stronger)
            for label in chosen:
                print(name, label, {k: v for k, v in row[label].items() if k != "misses"},
                      flush=True)  # fmt: skip
            if args.cot:
                row["cot"] = await cot(model.inner, task, args.cot)
                print(name, "cot", row["cot"], flush=True)
            results[name] = row
            write_report({**report, **summary(results, labels)}, args.out)
    finally:
        await model.aclose()
        if stronger is not None:
            await stronger.aclose()
        await backend.close()
    return summary(results, labels)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    parser.add_argument("--limit", type=int, default=50, help="test questions per task")
    parser.add_argument("--configs", nargs="*", default=list(configs(2)), choices=list(configs(2)),
                        help="none: only the chain-of-thought baseline (--cot)")  # fmt: skip
    parser.add_argument("--samples", type=int, default=2, help="sampled calls (agreement)")
    parser.add_argument("--cot", type=int, default=0, help="baseline questions per task")
    parser.add_argument("--user", default="local:qwen2.5-coder-0.5b")
    parser.add_argument("--stronger", default="local:qwen2.5-coder-1.5b",
                        help="the model of the escalation and stronger configurations")  # fmt: skip
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    report = {
        "benchmark": "cheap_user",
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "config": {"user": args.user, "stronger": args.stronger, "limit": args.limit,
                   "samples": args.samples,
                   "configs": args.configs, "cot": args.cot, "split": "0-2/5-7/10"},
        "machine": machine_info(),
    }  # fmt: skip
    result = asyncio.run(run(args, report))
    write_report({**report, **result}, args.out)
    print(f"mean accuracy by configuration: {result['mean_accuracy']}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
