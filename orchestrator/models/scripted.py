"""``scripted:FILE``: canned responses, in order, for deterministic tests and demos.

FILE holds a JSON array. Each item is either the response text, or an object with the text
and expectations on the prompt it answers::

    ["ans = sort_words('b a')",
     {"response": "def f(x): ...", "expect": ["Write a Python function"],
      "expect_regex": "examples?:"}]

Every string in ``expect`` must occur in the prompt (all messages joined) and ``expect_regex``
must match somewhere in it; otherwise the call fails with :class:`ModelRejected` naming the
step. Asking for more responses than the script holds raises :class:`ScriptExhausted`.
Token counts are estimates (words and punctuation), since no tokenizer is involved.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import InvalidRequest, ModelRejected, ScriptExhausted
from orchestrator.models.base import ChatParams, Message, ModelAdapter, PriceLookup, RawCompletion

_TOKEN = re.compile(r"\w+|[^\w\s]")


def estimate_tokens(text: str) -> int:
    return len(_TOKEN.findall(text))


@dataclass(frozen=True)
class ScriptStep:
    response: str
    expect: tuple[str, ...] = ()
    expect_regex: str | None = None

    def check(self, prompt: str, index: int, path: Path) -> None:
        missing = [text for text in self.expect if text not in prompt]
        if missing:
            raise ModelRejected(
                f"scripted model {path.name}, step {index + 1}: the prompt lacks {missing[0]!r}"
            )
        if self.expect_regex is not None and not re.search(self.expect_regex, prompt):
            raise ModelRejected(
                f"scripted model {path.name}, step {index + 1}: the prompt does not match "
                f"{self.expect_regex!r}"
            )


class ScriptedModel(ModelAdapter):
    """Returns the script's responses in order; thread- and task-safe."""

    samples = False  # a replay: every reply is the next one, whatever the temperature

    def __init__(self, spec: str, path: Path, *, prices: PriceLookup | None = None) -> None:
        super().__init__(spec, prices=prices)
        self.path = path
        self.steps = load_script(path)
        self.calls = 0
        self._lock = asyncio.Lock()

    @property
    def remaining(self) -> int:
        return len(self.steps) - self.calls

    async def _complete(self, messages: list[Message], params: ChatParams) -> RawCompletion:
        async with self._lock:
            index = self.calls
            if index >= len(self.steps):
                raise ScriptExhausted(
                    f"scripted model {self.path.name} has {len(self.steps)} responses; "
                    f"call {index + 1} asked for another"
                )
            self.calls += 1
        prompt = "\n".join(message.content for message in messages)
        step = self.steps[index]
        step.check(prompt, index, self.path)
        return RawCompletion(
            text=step.response,
            model=f"scripted/{self.path.name}",
            prompt_tokens=estimate_tokens(prompt),
            completion_tokens=estimate_tokens(step.response),
        )


def load_script(path: Path) -> tuple[ScriptStep, ...]:
    """Read and check a script file; any malformed item refuses the whole file."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InvalidRequest(f"cannot read model script {path}: {exc}") from None
    if not isinstance(raw, list):
        raise InvalidRequest(f"model script {path} must be a JSON array of responses")
    return tuple(_step(item, number, path) for number, item in enumerate(raw, 1))


def _step(item: object, number: int, path: Path) -> ScriptStep:
    if isinstance(item, str):
        return ScriptStep(item)
    if isinstance(item, dict) and isinstance(item.get("response"), str):
        expect = item.get("expect", [])
        expect = [expect] if isinstance(expect, str) else expect
        regex = item.get("expect_regex")
        unknown = set(item) - {"response", "expect", "expect_regex"}
        if (
            not unknown
            and isinstance(expect, list)
            and all(isinstance(text, str) for text in expect)
            and (regex is None or isinstance(regex, str))
        ):
            if regex is not None:
                _compile(regex, number, path)
            return ScriptStep(item["response"], tuple(expect), regex)
    raise InvalidRequest(
        f"model script {path}, item {number}: expected a string or "
        '{"response": str, "expect": [str], "expect_regex": str}'
    )


def _compile(regex: str, number: int, path: Path) -> None:
    try:
        re.compile(regex)
    except re.error as exc:
        raise InvalidRequest(f"model script {path}, item {number}: bad regex: {exc}") from None
