"""The tool user: a light model turns a question into a call of a tool; the sandbox runs it.

Also the chain-of-thought answer, used when no tool fits and as the paper's baseline.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from orchestrator.config import Settings
from orchestrator.errors import LatmError
from orchestrator.latm import prompts
from orchestrator.latm.cards import ToolCard, UserCheck
from orchestrator.latm.code import call_problems, copied_run, first_call
from orchestrator.latm.grounding import snap_literals
from orchestrator.latm.runner import ToolRunner
from orchestrator.latm.scoring import Scorer, get_scorer
from orchestrator.latm.tasks import Example
from orchestrator.models import ChatParams, Message, ModelAdapter, TokenUsage

log = logging.getLogger(__name__)
USER_PARAMS = ChatParams(max_tokens=256, temperature=0.0)
COT_PARAMS = ChatParams(max_tokens=768, temperature=0.0)
_FINAL = re.compile(r"answer is:?\s*(.+?)\s*\.?\s*$", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class UserConfig:
    """How hard the tool user tries, each technique on its own switch (for ablations).

    ``retries``: replies after the first that get the exact problem back (a sandbox error,
    and with ``checks`` the problems read from the call's text: no ``ans``, the tool
    defined again, an import; with ``grounding`` also a string not copied from the
    question). ``samples``: calls sampled at ``temperature`` after the greedy one, each
    run in the sandbox; the answer is the value most calls agree on, and sampling stops
    once ``agree`` calls agree. ``snap``: a string that nearly copies one stretch of the
    question (a bracket dropped, a word cut short) is replaced with that stretch before the
    call runs, instead of being sent back. ``escalate``: a question the model answers with
    doubt (no answer; a reply that needed correcting; sampled calls that do not reach
    ``agree`` votes) is asked again of the tool user's stronger model, when it has one.
    ``check``: when a tool is published, the model answers the held-out cases the tool
    passed (:func:`check_user`); a tool it misses any of is used by the stronger model.
    ``feedback``: a retry gets the problem back; without it a retry is a fresh call
    sampled from the same prompt at ``temperature`` (a seed each), which a weak model that
    copies words of the feedback into its next call may do better with.
    """

    retries: int = 2
    checks: bool = True
    grounding: bool = False
    snap: bool = True
    samples: int = 0
    temperature: float = 0.7
    agree: int = 2
    escalate: bool = False
    check: bool = False
    feedback: bool = True

    @classmethod
    def from_settings(cls, settings: Settings) -> UserConfig:
        return cls(
            retries=settings.user_retries,
            feedback=settings.user_feedback,
            grounding=settings.user_grounding,
            snap=settings.user_snap,
            samples=settings.user_samples,
            temperature=settings.user_temperature,
            agree=settings.user_agree,
            escalate=settings.user_escalate,
            check=settings.user_check,
        )

    @classmethod
    def plain(cls) -> UserConfig:
        """One call and one retry with the sandbox's error: the first tool user's way."""
        return cls(retries=1, checks=False, grounding=False, snap=False, samples=0, escalate=False)


@dataclass
class Answer:
    """An answer and how it was reached."""

    answer: str | None  # normalised by the tool's scorer; None when there is none
    value: Any = None  # the raw value (tool) or text (chain of thought)
    tool: str | None = None  # "name" of the tool used, or None
    version: int | None = None
    call: str | None = None  # the call that gave the answer; with none, the last written
    error: str | None = None
    attempts: int = 0  # model replies asked for
    usage: TokenUsage = field(default_factory=TokenUsage)
    # Calls that ran and gave a value, and the share of them that gave this answer.
    candidates: int = 0
    confidence: float | None = None
    # A call raised inside the tool's own code (not the call's): a case for its suite.
    tool_fault: bool = False
    snapped: int = 0  # strings replaced with the stretch of the question they nearly copy
    escalated: bool = False  # asked again of the stronger model, in doubt of the first
    model: str | None = None  # the spec of the model whose call gave the answer

    @property
    def ok(self) -> bool:
        return self.error is None and self.answer is not None


@dataclass
class _Candidate:
    value: Any
    call: str
    model: str
    corrected: bool = False  # a reply before this one was sent back with a problem


class ToolUser:
    """Writes calls of one tool, has the sandbox run them, and answers with the value the
    calls agree on; every problem goes back to the model as exactly what to change.

    ``stronger``: the model a question answered with doubt goes to (``config.escalate``):
    a cascade, so most questions cost the light model's tokens only."""

    def __init__(
        self,
        model: ModelAdapter,
        runner: ToolRunner,
        *,
        params: ChatParams = USER_PARAMS,
        config: UserConfig | None = None,
        stronger: ModelAdapter | None = None,
    ) -> None:
        self.model = model
        self.runner = runner
        self.params = params
        self.config = config or UserConfig()
        self.stronger = stronger if self.config.escalate else None

    async def answer(self, card: ToolCard, question: str) -> Answer:
        messages = prompts.user_messages(card, question)
        result = Answer(answer=None, tool=card.name, version=card.version)
        reasons: list[str] = []
        found = await self._agreed(card, question, messages, result, reasons)
        winner = _agreeing(found)[0] if found else None
        if self.stronger is not None and self._in_doubt(card, question, found):
            result.escalated = True
            try:
                stronger = await self._candidate(
                    self.stronger, card, question, messages, self.params, result, reasons
                )
            except LatmError as exc:  # not there (not fetched, an outage): the light answer
                log.warning("escalation failed: %s", exc)
                reasons.append(f"the stronger model failed: {exc}")
                stronger = None
            if stronger is not None:
                winner, found = stronger, [*found, stronger]
        if winner is None:
            result.error = f"no answer after {result.attempts} replies: " + "; ".join(
                dict.fromkeys(reasons)
            )
            return result
        votes = sum(_key(c.value) == _key(winner.value) for c in found)
        result.value, result.call, result.model = winner.value, winner.call, winner.model
        result.answer = normalise(card, question, winner.value)
        result.candidates, result.confidence = len(found), round(votes / len(found), 3)
        return result

    async def _agreed(
        self,
        card: ToolCard,
        question: str,
        messages: list[Message],
        result: Answer,
        reasons: list[str],
    ) -> list[_Candidate]:
        """The light model's calls that ran: the greedy one (after corrections), then
        sampled ones until ``agree`` of them agree."""
        first = await self._candidate(
            self.model, card, question, messages, self.params, result, reasons
        )
        if first is None:
            return []
        found = [first]
        sampled = self.params.model_copy(update={"temperature": self.config.temperature})
        for _ in range(self.config.samples if self.model.samples else 0):
            if _agreeing(found)[1] >= self.config.agree:
                break
            try:
                candidate = await self._candidate(
                    self.model, card, question, messages, sampled, result, reasons, retries=0
                )
            except LatmError as exc:  # the model failed (a deadline, an outage): keep what is
                log.warning("sampling stopped: %s", exc)  # found; it is an answer already
                break
            if candidate is not None:
                found.append(candidate)
        return found

    async def _candidate(  # noqa: PLR0917 - one try's parts
        self,
        model: ModelAdapter,
        card: ToolCard,
        question: str,
        messages: list[Message],
        params: ChatParams,
        result: Answer,
        reasons: list[str],
        retries: int | None = None,
    ) -> _Candidate | None:
        """One call that runs and gives a value, after up to ``retries`` corrections."""
        for attempt in range(1 + (self.config.retries if retries is None else retries)):
            completion = await model.complete(messages, params)
            result.usage = result.usage + completion.usage
            result.attempts += 1
            call = first_call(completion.text)
            if self.config.snap:
                call, snaps = snap_literals(call, question)
                result.snapped += len(snaps)
            result.call = call  # the last written, if none runs
            problems = self._problems(card, question, call)
            if not problems:
                outcome = await self.runner.run(card.source, call)
                if outcome.ok and not (self.config.checks and _empty(outcome.value)):
                    return _Candidate(outcome.value, call, model.spec, corrected=attempt > 0)
                if outcome.ok:
                    problems = [
                        f"The tool returned {outcome.value!r}: the arguments do not describe "
                        "this question. Check each one against the question."
                    ]
                else:
                    result.tool_fault = result.tool_fault or outcome.origin == "tool"
                    problems = [f"Running that failed: {outcome.error}"]
            reasons += problems
            if self.config.feedback:
                messages = prompts.user_feedback(messages, completion.text, problems)
            else:  # the same prompt (its cached prefix whole), sampled afresh
                params = params.model_copy(
                    update={
                        "temperature": max(params.temperature, self.config.temperature),
                        "seed": attempt + 1,
                    }
                )
        return None

    def _in_doubt(self, card: ToolCard, question: str, found: list[_Candidate]) -> bool:
        """No call ran; or the greedy call came after a correction, or copies a run of a
        worked example's arguments that the question does not hold; or sampled calls were
        asked for and fewer than ``agree`` (or than all of them) agree."""
        if not found or found[0].corrected:
            return True
        examples = [demo.solution for demo in card.usage_demos]
        if copied_run(found[0].call, question, examples):
            return True
        return len(found) > 1 and _agreeing(found)[1] < min(self.config.agree, len(found))

    def _problems(self, card: ToolCard, question: str, call: str) -> list[str]:
        if not self.config.checks:
            return []
        return call_problems(
            call,
            card.entrypoint,
            question,
            grounding=self.config.grounding,
            examples=[demo.solution for demo in card.usage_demos],
        )


async def check_user(user: ToolUser, card: ToolCard) -> UserCheck:
    """The tool user on the held-out cases the tool itself passed, each asked as a question
    (the answers are the card's, never shown to the model): how many it answers right."""
    scorer = get_scorer(card.scorer or "exact")
    cases = [case for case in card.verification.cases if case.passed]
    correct = 0
    for case in cases:
        answer = await user.answer(card, case.question)
        example = Example(index=-1, input=case.question, target=case.expected)
        correct += answer.ok and scorer.matches(answer.value, example)
    return UserCheck(model=user.model.spec, correct=correct, questions=len(cases))


def needs_stronger(card: ToolCard, user_model: str) -> bool:
    """Whether this user model missed any of the card's held-out cases when it was checked
    (a check by another model says nothing about this one)."""
    check = card.verification.user
    return check is not None and check.model == user_model and not check.passed


def _empty(value: Any) -> bool:
    """A value that answers nothing: None, or an empty string or collection."""
    return value is None or (isinstance(value, str | list | tuple | dict) and not value)


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=repr)


def _agreeing(found: list[_Candidate]) -> tuple[_Candidate, int]:
    """The candidate whose value most candidates share (the earliest on a tie), and how
    many share it."""
    keys = [_key(c.value) for c in found]
    counts = Counter(keys)
    best = max(range(len(found)), key=lambda n: (counts[keys[n]], -n))
    return found[best], counts[keys[best]]


def normalise(card: ToolCard, question: str, value: Any) -> str | None:
    scorer: Scorer = get_scorer(card.scorer or "exact")
    return scorer.normalise(value, Example(index=-1, input=question, target=""))


async def chain_of_thought(model: ModelAdapter, question: str) -> Answer:
    """Answer directly, thinking step by step; the final answer is the last 'answer is X'."""
    completion = await model.complete(prompts.cot_messages(question), COT_PARAMS)
    matches = _FINAL.findall(completion.text)
    answer = matches[-1].strip() if matches else None
    return Answer(
        answer=answer,
        value=completion.text,
        error=None if answer else "the reply has no 'So the answer is ...' line",
        attempts=1,
        usage=completion.usage,
    )
