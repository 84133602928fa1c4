"""The tool maker: propose a tool from the demos, verify it on held-out cases, wrap it.

The maker model writes code; only the sandbox runs it, and only the orchestrator grades it,
with the task's scorer against the expected targets: the model never grades itself. The
validation cases are never shown while the tool is proposed, and a tool whose source holds the
examples' answers, or branches on their literal inputs, is rejected with the reason.

Best of n: up to ``candidates`` tools are sampled from the same proposing prompt (the first
greedily, the others at ``RETRY_TEMPERATURE``; one prompt prefix, so a llama.cpp server reuses
its cache). Each that solves the demos goes to verification; the first that passes every
held-out case is kept and the rest are never sampled. Every candidate's outcome is reported.
A candidate that fails on the demos gets ``repairs`` replies with the feedback (a sampling
maker's budget is better spent on fresh candidates: a small model's repairs rarely fix its
function) or, when not given, ``max_attempts - 1`` as every stage does.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from orchestrator.latm import prompts
from orchestrator.latm.cards import (
    NAME_PATTERN,
    Provenance,
    ToolCard,
    UsageDemo,
    Verification,
    VerificationCase,
    source_sha256,
)
from orchestrator.latm.code import ToolShape, memorisation, tool_shape
from orchestrator.latm.grounding import snap_literals
from orchestrator.latm.hints import import_hint, import_lines
from orchestrator.latm.progress import (
    AttemptFailed,
    AttemptStarted,
    CandidateScored,
    CaseGraded,
    DemosSolved,
    MakeFailed,
    Progress,
    Stage,
    Verified,
    ignore,
)
from orchestrator.latm.replies import NO_FUNCTION, Reply, pick_calls, read_reply, reply_problems
from orchestrator.latm.runner import Outcome, ToolRunner
from orchestrator.latm.scoring import Scorer, choose_scorer
from orchestrator.latm.tasks import Example, Split, Task
from orchestrator.models import ChatParams, Message, ModelAdapter, TokenUsage

MAKER_PARAMS = ChatParams(max_tokens=1536, temperature=0.0)
RETRY_TEMPERATURE = 0.7
_MAX_QUOTED = 120  # characters of a function's line quoted back with its error
IMPORTS_ADDED = 3  # names a proposed tool forgot to import that the maker adds itself


class Rejected(Exception):
    """One attempt failed; the problems go back to the maker verbatim."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)


@dataclass
class Draft:
    """The tool as it stands: its source, shape, and the demo calls that solved the demos."""

    source: str
    shape: ToolShape
    demos: list[UsageDemo]


@dataclass(frozen=True)
class Candidate:
    """One candidate tool's outcome, as the making report and the card's provenance keep it."""

    number: int
    signature: str | None  # None: no tool solved the demos
    passed: int  # held-out cases passed, at best over the verify attempts
    total: int
    chars: int  # the source's length: among equals, the shortest is the simplest
    problem: str | None = None
    kept: bool = False

    def to_dict(self) -> dict[str, object]:
        return {
            "candidate": self.number,
            "signature": self.signature,
            "solved_demos": self.signature is not None,
            "passed": self.passed,
            "total": self.total,
            "chars": self.chars,
            "problem": self.problem,
            "kept": self.kept,
        }


@dataclass
class MakeResult:
    """What making gave: a verified card, or the reason there is none."""

    task: str
    card: ToolCard | None
    reason: str | None
    attempts: dict[str, int] = field(default_factory=dict)
    candidates: list[Candidate] = field(default_factory=list)
    usage: TokenUsage = field(default_factory=TokenUsage)
    wall_s: float = 0.0

    @property
    def verified(self) -> bool:
        return self.card is not None


class ToolMaker:
    """Turns a task's demos into a verified tool card (or a clear reason why not)."""

    def __init__(
        self,
        model: ModelAdapter,
        runner: ToolRunner,
        *,
        max_attempts: int = 3,
        params: ChatParams = MAKER_PARAMS,
        candidates: int = 1,
        repairs: int | None = None,
        snap: bool = True,
        varied_demos: bool = False,
    ) -> None:
        self.model = model
        self.runner = runner
        self.max_attempts = max_attempts
        self.params = params
        self.candidates = max(1, candidates)
        # Proposing replies per candidate: its first, then one per repair.
        self.propose_attempts = max_attempts if repairs is None else 1 + max(0, repairs)
        # A string of a call that nearly copies a stretch of its question is that stretch,
        # as in the tool user's calls (LATM_USER_SNAP): a tool is proven on the questions,
        # not on the maker's slips in copying them.
        self.snap = snap
        # Demos whose answers differ where the task allows (LATM_MAKER_VARIED_DEMOS).
        self.varied_demos = varied_demos

    async def make(
        self,
        task: Task,
        split: Split | None = None,
        progress: Progress | None = None,
    ) -> MakeResult:
        """Propose, verify and wrap a tool for ``task``; ``progress`` hears every step."""
        started = time.monotonic()
        if self.varied_demos:
            split = task.varied(split)
        parts = task.split(split)
        job = _Job(self, task, parts.demos, parts.validation, progress or ignore)
        result = MakeResult(task=task.name, card=None, reason=None)
        try:
            draft, verification = await job.best()
            result.card = job.wrap(draft, verification, time.monotonic() - started)
            job.say(Verified(result.card.name, verification.passed, verification.total))
        except Rejected as exc:
            result.reason = str(exc)
            job.say(MakeFailed(result.reason))
        result.attempts = dict(job.attempts)
        result.candidates = list(job.candidates)
        result.usage = job.usage
        result.wall_s = time.monotonic() - started
        return result


class _Job:
    """One making of one tool: the conversation with the maker and its bookkeeping."""

    def __init__(
        self,
        maker: ToolMaker,
        task: Task,
        demos: Sequence[Example],
        validation: Sequence[Example],
        say: Progress,
    ) -> None:
        self.maker = maker
        self.task = task
        self.demos = list(demos)
        self.validation = list(validation)
        self.say = say
        self.scorer: Scorer = choose_scorer(task)
        self.attempts: dict[str, int] = {"propose": 0, "verify": 0}
        self.usage = TokenUsage()
        self.candidate = 1
        self.candidates: list[Candidate] = []
        self.best_passed = 0  # the current candidate's best held-out count so far

    async def ask(self, messages: list[Message], attempt: int) -> str:
        # A retry at temperature 0 tends to repeat the same mistake, and another candidate
        # must differ from the first: sample, each with its own seed (reproducible).
        params = self.maker.params
        if attempt > 1 or self.candidate > 1:
            params = params.model_copy(
                update={
                    "temperature": max(params.temperature, RETRY_TEMPERATURE),
                    "seed": params.seed
                    if params.seed is not None
                    else self.candidate * 100 + attempt,
                }
            )
        completion = await self.maker.model.complete(messages, params)
        self.usage = self.usage + completion.usage
        return completion.text

    async def best(self) -> tuple[Draft, Verification]:
        """Candidates in turn until one passes every held-out case (the early stop: a later
        one cannot beat it, and the bar to publish is every case passed)."""
        reasons: list[list[str]] = []
        for number in range(1, self.maker.candidates + 1):
            self.candidate, self.best_passed = number, 0
            draft: Draft | None = None
            try:
                draft, history = await self.propose()
                draft, verification = await self.verify(draft, history)
            except Rejected as exc:
                reasons.append(exc.problems)
                self.scored(number, draft, exc.problems[1 if len(exc.problems) > 1 else 0])
                continue
            self.scored(number, draft, None)
            return draft, verification
        if len(reasons) == 1:
            raise Rejected(reasons[0])
        raise Rejected(self.none_verified())

    def scored(self, number: int, draft: Draft | None, problem: str | None) -> None:
        total = len(self.validation)
        candidate = Candidate(
            number=number,
            signature=draft.shape.signature if draft else None,
            passed=self.best_passed if draft else 0,
            total=total,
            chars=len(draft.source) if draft else 0,
            problem=problem,
            kept=problem is None,
        )
        self.candidates.append(candidate)
        self.say(
            CandidateScored(
                number, candidate.signature, draft is not None, candidate.passed, total, problem
            )
        )

    def none_verified(self) -> list[str]:
        """The reason when no candidate passed: the best first (most held-out cases passed,
        then the shortest source), each with the problem that stopped it."""
        ranked = sorted(self.candidates, key=lambda c: (-c.passed, c.signature is None, c.chars))
        return [
            f"none of the {len(self.candidates)} candidate tools passed every held-out case; "
            "not published",
            *(
                f"candidate {c.number} ({c.signature or 'no tool'}, {c.passed}/{c.total}): "
                f"{c.problem}"
                for c in ranked
            ),
        ]

    def propose_messages(self) -> list[Message]:
        """The proposing prompt (a repair shows the tool and its failing cases instead)."""
        return prompts.maker_propose(self.task.name, self.demos)

    def verify_messages(self, history: list[Message]) -> list[Message]:
        """The verifying prompt: the held-out questions, never their answers."""
        return prompts.maker_verify(history, self.validation)

    async def propose(self) -> tuple[Draft, list[Message]]:
        # Each attempt is the proposing prompt, then the last reply and what was wrong with
        # it: a reply is a whole function, so earlier ones add only length (a small model's
        # conversation outgrew its 4,096-token context by the third attempt).
        base = messages = self.propose_messages()
        problems: list[str] = []
        for attempt in range(1, self.maker.propose_attempts + 1):
            self.attempts["propose"] += 1
            self.say(AttemptStarted(Stage.PROPOSE, attempt, len(self.demos), self.candidate))
            reply = await self.ask(messages, attempt)
            try:
                draft = await self.draft_from(reply)
            except Rejected as exc:
                problems = exc.problems
                self.say(AttemptFailed(Stage.PROPOSE, attempt, problems[0], self.candidate))
                messages = prompts.feedback(base, reply, problems)
                continue
            self.say(
                DemosSolved(
                    draft.shape.signature, len(self.demos), attempt, candidate=self.candidate
                )
            )
            return draft, [*messages, Message(role="assistant", content=reply)]
        attempts = self.maker.propose_attempts
        raise Rejected([f"no tool after {attempts} attempt{'s' * (attempts > 1)}", *problems[:3]])

    async def draft_from(self, text: str) -> Draft:
        reply = read_reply(text)
        if reply.source is None:
            raise Rejected([NO_FUNCTION])
        shape = self.checked_shape(reply.source)
        calls = self.calls_for(reply, self.demos, "Example", shape.name)
        outcomes = [await self.maker.runner.run(reply.source, call) for call in calls]
        source, outcomes = await self.with_imports(reply.source, calls, outcomes)
        problems = self.grade("Example", self.demos, outcomes, source)
        if problems:
            raise Rejected(problems)
        demos = [
            UsageDemo(question=demo.input, solution=call, answer=demo.target)
            for demo, call in zip(self.demos, calls, strict=True)
        ]
        return Draft(source, shape, demos)

    async def with_imports(
        self, source: str, calls: Sequence[str], outcomes: list[Outcome]
    ) -> tuple[str, list[Outcome]]:
        """The tool with the imports it forgot added at its top, when the demos then get
        further. A NameError of a name an allowed module provides (``Optional``,
        ``datetime``) is a slip small makers make, and a reply spent on it is one not spent
        on a candidate. The line is text added to the tool's text, which still runs only in
        the sandbox; up to ``IMPORTS_ADDED`` names, each with the import that gets furthest."""
        best = current = (source, outcomes)
        for _ in range(IMPORTS_ADDED):
            missing = next(
                (found for out in current[1] if (found := import_lines(out.error or ""))), None
            )
            if missing is None:
                break
            lines = missing[1]
            tried = []
            for line in lines:
                fixed = _with_import(current[0], line)
                tried.append((fixed, [await self.maker.runner.run(fixed, call) for call in calls]))
            current = max(tried, key=lambda each: self.progress(each[1]))
            if any(import_lines(out.error or "") == missing for out in current[1]):
                break
            if self.progress(current[1]) > self.progress(best[1]):
                best = current
        return best

    def progress(self, outcomes: Sequence[Outcome]) -> tuple[int, int]:
        """Demos answered right, then demos that ran."""
        right = sum(
            out.ok and self.scorer.matches(out.value, demo)
            for out, demo in zip(outcomes, self.demos, strict=True)
        )
        return right, sum(out.ok for out in outcomes)

    def calls_for(
        self, reply: Reply, examples: Sequence[Example], label: str, tool: str
    ) -> list[str]:
        """One call per example (its strings snapped to the example's question), or what to
        change in the reply to give that."""
        calls = pick_calls(reply.calls, [example.input for example in examples])
        if calls is None:
            raise Rejected(reply_problems(reply, len(examples), label, tool))
        if not self.maker.snap:
            return calls
        return [
            snap_literals(call, example.input)[0]
            for call, example in zip(calls, examples, strict=True)
        ]

    def checked_shape(self, source: str) -> ToolShape:
        shape = tool_shape(source)
        if shape is None:
            raise Rejected(["the tool block defines no function"])
        if not NAME_PATTERN.fullmatch(shape.name):
            raise Rejected([f"name the function in lower_snake_case (not {shape.name!r})"])
        reason = memorisation(source, self.demos + self.validation)
        if reason:
            raise Rejected(
                [f"the tool must compute its answers, not recall the examples: {reason}"]
            )
        return shape

    def grade(
        self, label: str, examples: Sequence[Example], outcomes: list[Outcome], source: str
    ) -> list[str]:
        problems = []
        for number, (example, outcome) in enumerate(zip(examples, outcomes, strict=True), 1):
            if not outcome.ok:
                where, hint = raised_at(outcome, source), import_hint(outcome.error or "")
                problems.append(f"{label} {number}: {outcome.error}{where}{hint}")
            elif not self.scorer.matches(outcome.value, example):
                problems.append(
                    f"{label} {number}: expected {example.target!r}, got {outcome.shown()}"
                )
        return problems

    async def verify(self, draft: Draft, history: list[Message]) -> tuple[Draft, Verification]:
        messages = self.verify_messages(history)
        problems: list[str] = []
        for attempt in range(1, self.maker.max_attempts + 1):
            self.attempts["verify"] += 1
            self.say(AttemptStarted(Stage.VERIFY, attempt, len(self.validation), self.candidate))
            reply = await self.ask(messages, attempt)
            try:
                draft, cases = await self.check(draft, reply, attempt)
            except Rejected as exc:
                problems = exc.problems
                self.say(AttemptFailed(Stage.VERIFY, attempt, problems[0], self.candidate))
                messages = prompts.feedback(messages, reply, problems)
                continue
            return draft, Verification(passed=len(cases), total=len(cases), cases=cases)
        raise Rejected(
            [
                f"verification failed on all {self.maker.max_attempts} attempts; not published",
                *problems[:3],
            ]
        )

    async def check(
        self, draft: Draft, text: str, attempt: int
    ) -> tuple[Draft, list[VerificationCase]]:
        reply = read_reply(text, known=(draft.shape.name,))
        if reply.source is not None and _lines(reply.source) != _lines(draft.source):
            draft = await self.revised(draft, reply.source)  # a corrected tool came first
        calls = self.calls_for(reply, self.validation, "Question", draft.shape.name)
        outcomes = [await self.maker.runner.run(draft.source, call) for call in calls]
        cases = [
            graded_case(example, outcome, self.scorer)
            for example, outcome in zip(self.validation, outcomes, strict=True)
        ]
        self.best_passed = max(self.best_passed, sum(case.passed for case in cases))
        for case in cases:
            self.say(CaseGraded(case, attempt))
        problems = self.grade("Question", self.validation, outcomes, draft.source)
        if problems:
            raise Rejected(problems)
        return draft, cases

    async def revised(self, draft: Draft, source: str) -> Draft:
        """A corrected tool must still solve the demos with the calls it solved them with."""
        source = source.strip("\n") + "\n"
        shape = self.checked_shape(source)
        outcomes = [await self.maker.runner.run(source, demo.solution) for demo in draft.demos]
        problems = self.grade("Example", self.demos, outcomes, source)
        if problems:
            raise Rejected(["the corrected function no longer solves the examples", *problems])
        return Draft(source, shape, draft.demos)

    def wrap(self, draft: Draft, verification: Verification, wall_s: float) -> ToolCard:
        source = draft.source
        return ToolCard(
            name=draft.shape.name,
            description=draft.shape.docstring or f"A tool for the task {self.task.name}.",
            source=source,
            entrypoint=draft.shape.name,
            signature=draft.shape.signature,
            usage_demos=draft.demos,
            verification=verification,
            provenance=Provenance(
                maker=self.maker.model.spec,
                attempts=sum(self.attempts.values()),
                tokens={
                    "prompt": self.usage.prompt_tokens,
                    "completion": self.usage.completion_tokens,
                },
                cost_usd=round(self.usage.cost_usd, 8),
                created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                sha256=source_sha256(source),
                wall_s=round(wall_s, 3),
                candidates=[candidate.to_dict() for candidate in self.candidates],
            ),
            task=self.task.name,
            scorer=self.scorer.name,
        )


def _lines(source: str) -> list[str]:
    """The source's non-blank lines: the same tool written again with other spacing is
    no correction."""
    return [line.rstrip() for line in source.splitlines() if line.strip()]


def raised_at(outcome: Outcome, source: str) -> str:
    """Where in the function an error was raised, quoting the line (text only: the line
    number is the sandbox's), so that a small model sees what to fix; empty when the error
    did not come from the function's own code."""
    lines = source.splitlines()
    if outcome.origin != "tool" or not 0 < outcome.line <= len(lines):
        return ""
    quoted = lines[outcome.line - 1].strip()
    if len(quoted) > _MAX_QUOTED:
        quoted = quoted[: _MAX_QUOTED - 1] + "…"
    return f" (raised in the function at line {outcome.line}: `{quoted}`)"


def graded_case(example: Example, outcome: Outcome, scorer: Scorer) -> VerificationCase:
    """One held-out case as recorded on a card: what was expected, what the sandbox
    gave, and whether the scorer (never the model) found them the same."""
    return VerificationCase(
        question=example.input,
        expected=example.target,
        got=outcome.shown() if outcome.ok else None,
        passed=outcome.ok and scorer.matches(outcome.value, example),
        error=outcome.error,
    )


def _with_import(source: str, line: str) -> str:
    """``source`` with ``line`` added after its ``from __future__`` imports (or first)."""
    lines = source.splitlines(keepends=True)
    at = 0
    while at < len(lines) and lines[at].startswith("from __future__ import"):
        at += 1
    return "".join([*lines[:at], line + "\n", *lines[at:]])
