"""The dispatcher and the functional cache: does a request fit a tool already made?

A light model decides, as in the paper. Beyond a shortlist's worth of tools, BM25 over the
tools' names, signatures and descriptions narrows the candidates first, so the prompt stays
small with thousands of tools. The index is built once per tenant and set of tools.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from orchestrator.latm import prompts
from orchestrator.models import ChatParams, ModelAdapter, TokenUsage

DISPATCH_PARAMS = ChatParams(max_tokens=24, temperature=0.0)
_NAME = re.compile(r"[a-z][a-z0-9_]*")


class ToolEntry(Protocol):
    """What the dispatcher needs of a registered tool (the registry's summaries fit)."""

    @property
    def name(self) -> str: ...

    @property
    def description(self) -> str: ...

    @property
    def signature(self) -> str | None: ...


@dataclass
class Choice:
    """The dispatcher's decision: a tool, or none, and what deciding cost."""

    tool: str | None
    candidates: list[str] = field(default_factory=list)
    usage: TokenUsage = field(default_factory=TokenUsage)


class Shortlist:
    """BM25 over a fixed list of tools (``bm25s``); rebuilt only when the list changes."""

    def __init__(self, tools: Sequence[ToolEntry]) -> None:
        import bm25s

        self.tools = list(tools)
        self._bm25s = bm25s
        self._index = bm25s.BM25()
        corpus = [_document(tool) for tool in self.tools]
        self._index.index(self._tokens(corpus), show_progress=False)

    def _tokens(self, texts: list[str]) -> Any:
        return self._bm25s.tokenize(texts, stopwords="en", show_progress=False)

    def top(self, question: str, k: int) -> list[ToolEntry]:
        k = min(k, len(self.tools))
        documents, scores = self._index.retrieve(self._tokens([question]), k=k, show_progress=False)
        return [self.tools[int(i)] for i, s in zip(documents[0], scores[0], strict=True) if s > 0]


def _document(tool: ToolEntry) -> str:
    words = f"{tool.name} {tool.signature or ''}".replace("_", " ")
    return f"{words} {tool.description}"


class Dispatcher:
    """Picks the tool for a question, or none."""

    def __init__(self, model: ModelAdapter, *, shortlist: int = 8) -> None:
        self.model = model
        self.shortlist = shortlist
        self._cache: tuple[Sequence[ToolEntry], tuple[str, ...], Shortlist] | None = None

    def candidates(self, question: str, tools: Sequence[ToolEntry]) -> list[ToolEntry]:
        """All tools when few; otherwise the BM25 shortlist (no model involved).

        ``tools`` is read, never changed; a caller must not change a list after passing it
        (pass a new one), since the index is kept for the list it was built from.
        """
        if len(tools) <= self.shortlist:
            return list(tools)
        # The engine hands over the same list until the tenant's tools change: then no key
        # over thousands of tools need be built on the request's path.
        if self._cache is None or self._cache[0] is not tools:
            key = tuple(f"{tool.name}\0{tool.description}" for tool in tools)
            if self._cache is None or self._cache[1] != key:
                self._cache = (tools, key, Shortlist(tools))
            else:
                self._cache = (tools, key, self._cache[2])
        return self._cache[2].top(question, self.shortlist)

    async def choose(self, question: str, tools: Sequence[ToolEntry]) -> Choice:
        shortlist = self.candidates(question, tools)
        names = [tool.name for tool in shortlist]
        if not shortlist:
            return Choice(tool=None, candidates=names)
        listed = [(tool.name, _one_line(tool)) for tool in shortlist]
        completion = await self.model.complete(
            prompts.dispatch_messages(question, listed), DISPATCH_PARAMS
        )
        return Choice(tool=pick(completion.text, names), candidates=names, usage=completion.usage)


def pick(reply: str, names: Sequence[str]) -> str | None:
    """The tool the reply names (the first one mentioned), or None for 'none' or no match."""
    words = _NAME.findall(reply.lower().replace("`", " "))
    known = set(names)
    for word in words:
        if word in known:
            return word
        if word == "none":
            return None
    return None


def _one_line(tool: ToolEntry) -> str:
    text = " ".join(tool.description.split())
    signature = f" [{tool.signature}]" if tool.signature else ""
    return (text[:200] + signature) if text else (signature.strip() or tool.name)
