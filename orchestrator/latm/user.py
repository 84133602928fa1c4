"""The tool user: a light model turns a question into a call of a tool; the sandbox runs it.

Also the chain-of-thought answer, used when no tool fits and as the paper's baseline.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from orchestrator.latm import prompts
from orchestrator.latm.cards import ToolCard
from orchestrator.latm.code import first_call
from orchestrator.latm.runner import ToolRunner
from orchestrator.latm.scoring import Scorer, get_scorer
from orchestrator.latm.tasks import Example
from orchestrator.models import ChatParams, ModelAdapter, TokenUsage

USER_PARAMS = ChatParams(max_tokens=256, temperature=0.0)
COT_PARAMS = ChatParams(max_tokens=768, temperature=0.0)
_FINAL = re.compile(r"answer is:?\s*(.+?)\s*\.?\s*$", re.IGNORECASE | re.MULTILINE)


@dataclass
class Answer:
    """An answer and how it was reached."""

    answer: str | None  # normalised by the tool's scorer; None when there is none
    value: Any = None  # the raw value (tool) or text (chain of thought)
    tool: str | None = None  # "name" of the tool used, or None
    version: int | None = None
    call: str | None = None
    error: str | None = None
    attempts: int = 0
    usage: TokenUsage = field(default_factory=TokenUsage)

    @property
    def ok(self) -> bool:
        return self.error is None and self.answer is not None


class ToolUser:
    """Writes and runs calls of one tool; one retry with the sandbox's error shown."""

    def __init__(
        self, model: ModelAdapter, runner: ToolRunner, *, params: ChatParams = USER_PARAMS
    ) -> None:
        self.model = model
        self.runner = runner
        self.params = params

    async def answer(self, card: ToolCard, question: str) -> Answer:
        messages = prompts.user_messages(card, question)
        result = Answer(answer=None, tool=card.name, version=card.version)
        for attempt in (1, 2):
            completion = await self.model.complete(messages, self.params)
            result.usage = result.usage + completion.usage
            result.attempts = attempt
            result.call = first_call(completion.text)
            outcome = await self.runner.run(card.source, result.call)
            if outcome.ok:
                result.value, result.error = outcome.value, None
                result.answer = normalise(card, question, outcome.value)
                return result
            result.error = outcome.error
            messages = prompts.user_retry(messages, completion.text, outcome.error or "")
        return result


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
