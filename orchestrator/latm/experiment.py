"""The paper's experiment: per task, LATM's accuracy against a chain-of-thought baseline.

A tool is made from the split's demos and validation cases (or an imported one is used), then
the user model answers the test questions with it (as a served request is answered: the
stronger model takes a tool whose user check the user model failed); the user model answers
them again directly, thinking step by step. Accuracy is the task scorer's exact match on the
test set.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from orchestrator.errors import ModelError
from orchestrator.latm.cards import ToolCard
from orchestrator.latm.engine import Engine
from orchestrator.latm.progress import Progress
from orchestrator.latm.scoring import Scorer, choose_scorer
from orchestrator.latm.tasks import Example, Split, Task
from orchestrator.latm.user import chain_of_thought
from orchestrator.models import TokenUsage, usage_scope

Tick = Callable[[], None]


@dataclass
class Arm:
    """One way of answering the test set (LATM or the baseline) and how it went."""

    correct: int = 0
    answered: int = 0
    model: str | None = None  # the model the questions went to (escalations: the stronger)
    escalated: int = 0
    usage: TokenUsage = field(default_factory=TokenUsage)
    wall_s: float = 0.0
    misses: list[dict[str, Any]] = field(default_factory=list)

    def accuracy(self, total: int) -> float | None:
        return round(100.0 * self.correct / total, 1) if total else None

    def to_dict(self, total: int) -> dict[str, Any]:
        return {
            "accuracy": self.accuracy(total),
            "correct": self.correct,
            "answered": self.answered,
            "model": self.model,
            "escalated": self.escalated,
            **self.usage.to_dict(),
            "wall_s": round(self.wall_s, 2),
            "misses": self.misses[:5],
        }


@dataclass
class TaskReport:
    task: str
    scorer: str
    test_size: int
    tool: str | None = None
    tool_made: bool = False
    make_attempts: dict[str, int] = field(default_factory=dict)
    make_reason: str | None = None
    maker_usage: TokenUsage = field(default_factory=TokenUsage)
    make_wall_s: float = 0.0
    latm: Arm | None = None
    cot: Arm | None = None
    error: str | None = None  # a model that failed mid-task: what was measured before stays

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "scorer": self.scorer,
            "test_size": self.test_size,
            "tool": self.tool,
            "tool_made": self.tool_made,
            "make_attempts": self.make_attempts,
            "make_reason": self.make_reason,
            "maker": {**self.maker_usage.to_dict(), "wall_s": round(self.make_wall_s, 2)},
            "latm": self.latm.to_dict(self.test_size) if self.latm else None,
            "cot": self.cot.to_dict(self.test_size) if self.cot else None,
            "error": self.error,
        }


async def run_task(
    engine: Engine,
    tenant: str,
    task: Task,
    *,
    split: Split | None = None,
    limit: int | None = None,
    tool: str | None = None,
    baseline: bool = True,
    progress: Progress | None = None,
    tick: Tick | None = None,
) -> TaskReport:
    """Make (or take) a tool for ``task`` and score LATM and the baseline on its test set.

    A model that fails mid-task (unreachable, timed out, refusing) ends this task only: the
    report says so in ``error`` and keeps what was measured, so that a run over many task
    files loses one task, not the run."""
    run = _Run(engine, tenant, task, split, choose_scorer(task), progress, tick or (lambda: None))
    test = list(task.split(split).test)[:limit]
    report = TaskReport(task=task.name, scorer=run.scorer.name, test_size=len(test))
    try:
        card = await run.tool(tool, report)
        if card is not None:
            report.latm = await run.latm(card, test)
        if baseline:
            report.cot = await run.cot(test)
    except ModelError as exc:
        report.error = f"{type(exc).__name__}: {exc}"
    return report


@dataclass
class _Run:
    engine: Engine
    tenant: str
    task: Task
    split: Split | None
    scorer: Scorer
    progress: Progress | None
    tick: Tick

    async def tool(self, name: str | None, report: TaskReport) -> ToolCard | None:
        if name is not None:
            card = self.engine.registry.get(self.tenant, name)
            report.tool = f"{card.name} v{card.version}"
            return card
        made = await self.engine.make(self.tenant, self.task, self.split, self.progress)
        report.make_attempts, report.make_reason = made.attempts, made.reason
        report.maker_usage, report.make_wall_s = made.usage, made.wall_s
        if made.card is None:
            return None
        report.tool_made = True
        report.tool = f"{made.card.name} v{made.card.version}"
        return made.card

    async def latm(self, card: ToolCard, test: list[Example]) -> Arm:
        # As a served request is answered: the user settings, and the stronger model for a
        # tool whose user check the user model failed.
        user = self.engine.tool_user(self.tenant, card=card)
        arm, started = Arm(model=user.model.spec), time.monotonic()
        for example in test:
            with usage_scope(tenant=self.tenant, tool=card.name):
                answer = await user.answer(card, example.input)
            arm.usage = arm.usage + answer.usage
            arm.answered += answer.error is None
            arm.escalated += answer.escalated
            if answer.error is None and self.scorer.matches(answer.value, example):
                arm.correct += 1
            else:
                arm.misses.append(_miss(example, answer.answer, answer.error, answer.call))
            self.tick()
        arm.wall_s = time.monotonic() - started
        return arm

    async def cot(self, test: list[Example]) -> Arm:
        arm, started = Arm(), time.monotonic()
        for example in test:
            with usage_scope(tenant=self.tenant):
                answer = await chain_of_thought(self.engine.user_model, example.input)
            arm.usage = arm.usage + answer.usage
            arm.answered += answer.answer is not None
            if answer.answer is not None and self.scorer.matches(answer.answer, example):
                arm.correct += 1
            else:
                arm.misses.append(_miss(example, answer.answer, answer.error, None))
            self.tick()
        arm.wall_s = time.monotonic() - started
        return arm


def _miss(example: Example, got: str | None, error: str | None, call: str | None) -> dict[str, Any]:
    return {
        "index": example.index,
        "expected": example.target,
        "got": got,
        "error": error,
        "call": call,
    }
