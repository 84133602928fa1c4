"""Repairing a tool: the maker gets its source and the cases it fails, and a new version is
kept only when it passes the tool's whole regression suite, old cases and new.

The rules of making hold: the maker writes code and calls, only the sandbox runs them,
only the orchestrator grades them. The held-out part of the suite (the verification cases
and the cases an earlier repair already fixed) is never shown while the fix is proposed,
and the memorisation guard sees every case of the suite.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from orchestrator.latm import prompts
from orchestrator.latm.cards import ToolCard, Verification
from orchestrator.latm.code import ToolShape
from orchestrator.latm.maker import Draft, Rejected, ToolMaker, _Job, graded_case
from orchestrator.latm.progress import MakeFailed, Progress, Verified, ignore
from orchestrator.latm.replies import Reply
from orchestrator.latm.runner import Outcome
from orchestrator.latm.scoring import Scorer, choose_scorer, get_scorer
from orchestrator.latm.tasks import Example, SuiteExample, Task
from orchestrator.models import Message, TokenUsage
from orchestrator.registry.cases import Case

SUITE_UPTO = "suite_upto"  # provenance: the last suite case a repaired version was proven on


@dataclass
class RepairResult:
    """What a repair gave: the new version's card, or the reason nothing changed."""

    tool: str
    card: ToolCard | None
    reason: str | None
    failing: int
    suite: int
    usage: TokenUsage = field(default_factory=TokenUsage)
    wall_s: float = 0.0


@dataclass(frozen=True)
class Suite:
    """A tool's suite, split: the cases to fix (shown to the maker) and the held-out rest."""

    failing: list[SuiteExample]
    held: list[SuiteExample]
    upto: int  # the newest case's id

    @property
    def size(self) -> int:
        return len(self.failing) + len(self.held)


def split_suite(card: ToolCard, cases: Sequence[Case]) -> Suite:
    """The cases reported or failed since ``card`` was last proven are to fix; the rest
    (and a card's own verification cases the table lacks) are held out."""
    upto = int((card.provenance.model_extra or {}).get(SUITE_UPTO, 0))
    # An answer marked wrong says less than the right answer to the same input.
    answered = {(c.kind, c.input) for c in cases if c.expected is not None}
    cases = [c for c in cases if c.expected is not None or (c.kind, c.input) not in answered]
    failing = [c for c in cases if c.source != "verification" and c.id > upto]
    held = [c for c in cases if c not in failing]
    known = {c.input for c in cases}
    legacy = [
        SuiteExample(index=0, input=v.question, target=v.expected)
        for v in card.verification.cases
        if v.question not in known
    ]
    return Suite(
        failing=[_example(c, card.entrypoint) for c in failing],
        held=[_example(c, card.entrypoint) for c in held] + legacy,
        upto=max((c.id for c in cases), default=upto),
    )


def open_cases(card: ToolCard, cases: Sequence[Case]) -> int:
    """How many cases ``card`` has failed since it was last proven."""
    return len(split_suite(card, cases).failing)


async def repair(
    maker: ToolMaker, card: ToolCard, suite: Suite, progress: Progress | None = None
) -> RepairResult:
    """Ask ``maker`` for a version of ``card`` that passes all of ``suite``."""
    started = time.monotonic()
    say = progress or ignore
    job = _RepairJob(maker, card, suite, say)
    result = RepairResult(card.name, None, None, len(suite.failing), suite.size)
    try:
        draft, verification = await job.best()
        result.card = job.wrap(draft, verification, time.monotonic() - started)
        say(Verified(card.name, result.card.verification.passed, result.card.verification.total))
    except Rejected as exc:
        result.reason = f"not repaired; version {card.version} stays: {exc}"
        say(MakeFailed(result.reason))
    result.usage, result.wall_s = job.usage, time.monotonic() - started
    return result


class SuiteScorer(Scorer):
    """The tool's scorer, and for an open case: it ran, and did not give the wrong answer."""

    name = "suite"

    def __init__(self, inner: Scorer) -> None:
        self.inner = inner

    def normalise(self, value: object, example: Example) -> str | None:
        return self.inner.normalise(value, example)

    def fits(self, example: Example) -> bool:
        return self.inner.fits(example)

    def matches(self, value: object, example: Example) -> bool:
        if not (isinstance(example, SuiteExample) and example.open):
            return self.inner.matches(value, example)
        if example.wrong is None:
            return True
        return not self.inner.matches(value, dataclasses.replace(example, target=example.wrong))


class _RepairJob(_Job):
    """A making whose demos are the tool's usage demos and failing cases, whose held-out
    cases are the rest of its suite, and whose tool keeps its name."""

    def __init__(self, maker: ToolMaker, card: ToolCard, suite: Suite, say: Progress) -> None:
        demos = [
            SuiteExample(index=0, input=demo.question, target=demo.answer)
            for demo in card.usage_demos
        ]
        examples = tuple(demos + suite.failing + suite.held)
        task = Task(name=card.task or card.name, examples=examples, source="regression suite")
        super().__init__(maker, task, demos + suite.failing, suite.held, say)
        self.card, self.suite = card, suite
        self.kept_demos = len(demos)
        inner = get_scorer(card.scorer) if card.scorer else choose_scorer(task)
        self.scorer, self.inner_scorer = SuiteScorer(inner), inner
        self.seen: dict[tuple[str, str | None], Outcome] = {}

    def propose_messages(self) -> list[Message]:
        return prompts.maker_repair(self.card.source, self.task.name, self.demos)

    def verify_messages(self, history: list[Message]) -> list[Message]:
        return prompts.verify_questions(history, self.validation)

    async def verify(self, draft: Draft, history: list[Message]) -> tuple[Draft, Verification]:
        if any(_asked(example) for example in self.validation):
            return await super().verify(draft, history)
        draft, cases = await self.check(draft, "", 1)  # nothing to ask: run the fixed calls
        return draft, Verification(passed=len(cases), total=len(cases), cases=cases)

    def calls_for(
        self, reply: Reply, examples: Sequence[Example], label: str, tool: str
    ) -> list[str]:
        asked = [example for example in examples if _asked(example)]
        calls = iter(super().calls_for(reply, asked, label, tool) if asked else [])
        return [_fixed(example) or next(calls) for example in examples]

    def checked_shape(self, source: str) -> ToolShape:
        shape = super().checked_shape(source)
        if shape.name != self.card.entrypoint:
            raise Rejected([f"keep the function's name {self.card.entrypoint!r}"])
        return shape

    def grade(
        self, label: str, examples: Sequence[Example], outcomes: list[Outcome], source: str
    ) -> list[str]:
        for example, outcome in zip(examples, outcomes, strict=True):
            self.seen[_key(example)] = outcome
        return super().grade(label, examples, outcomes, source)

    def wrap(self, draft: Draft, verification: Verification, wall_s: float) -> ToolCard:
        proven = [
            graded_case(example, self.seen[_key(example)], self.scorer)
            for example in [*self.demos[self.kept_demos :], *self.validation]
            if not (isinstance(example, SuiteExample) and example.open)
        ]
        made = super().wrap(draft, verification, wall_s)
        provenance = made.provenance.model_copy(
            update={"repaired_from": self.card.version, SUITE_UPTO: self.suite.upto}
        )
        return made.model_copy(
            update={
                "name": self.card.name,
                "description": draft.shape.docstring or self.card.description,
                "usage_demos": draft.demos[: self.kept_demos],
                "verification": Verification(passed=len(proven), total=len(proven), cases=proven),
                "provenance": provenance,
                "task": self.card.task,
                "scorer": self.inner_scorer.name,
                "input_schema": None,
            }
        )


def _example(case: Case, entrypoint: str) -> SuiteExample:
    call = None
    if case.kind == "arguments":
        call = f"import json\nans = {entrypoint}(**json.loads({case.input!r}))"
    return SuiteExample(
        index=case.id,
        input=case.input,
        target=case.expected if case.expected is not None else "",
        open=case.expected is None,
        wrong=case.wrong,
        call=call,
    )


def _asked(example: Example) -> bool:
    return _fixed(example) is None


def _fixed(example: Example) -> str | None:
    return example.call if isinstance(example, SuiteExample) else None


def _key(example: Example) -> tuple[str, str | None]:
    return (example.input, _fixed(example))
