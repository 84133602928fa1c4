"""The dispatcher and the functional cache: does a request fit a tool already made?

Beyond a shortlist's worth of tools, BM25 over the tools' names, signatures and
descriptions narrows the candidates first, so the prompt stays small with thousands of
tools; that index is built once per tenant and set of tools.

Then evidence the platform can check decides with the light model, not the model alone:
how closely the question matches each candidate's usage-demo questions, by two measures
over words and word pairs (numbers folded to one token): the TF-IDF cosine with the
closest demo (counts damped by a logarithm, weighted over the candidates' demos), and the
recall of the frame the tool's demos share (see :func:`frame_recall`).
A question close to one tool's demos and far ahead of the next tool's is routed there
without asking the model; a question close to none is answered directly; in a narrow band
between, the model chooses, and its choice stands only if the evidence ranks that tool
first (and the engine answers directly if that tool's calls then all fail). Without
demos to compare (cards that have none) the model alone decides, as in the paper.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import pairwise
from types import MappingProxyType
from typing import Any, Protocol

from orchestrator.latm import prompts
from orchestrator.models import ChatParams, ModelAdapter, TokenUsage

DISPATCH_PARAMS = ChatParams(max_tokens=24, temperature=0.0)
_NAME = re.compile(r"[a-z][a-z0-9_]*")
_TOKEN = re.compile(r"[a-z]+|\d+|[^\sa-z\d]")

# Evidence thresholds, on the best candidate's score (0..1) and its lead over the next
# one as a share of it (0..1), for each of the two measures. Picked on BIG-Bench Hard
# questions 60-159 of twelve tasks with a tool and fourteen without (bench/routing.py
# routes questions 10-59): all 1,200 went to their own tool on evidence alone and 17 of
# the 1,386 that fit no tool reached the band where the model is asked, none further;
# with one tool registered, each of the six paper tasks' tools took all 100 of its
# questions, and at most 8 of the 1,386 others reached the model (2 passed).
ROUTE_SURE = 0.25  # cosine: at or above, with a lead of ROUTE_LEAD: routed there
ROUTE_LEAD = 0.45
FRAME_SURE = 0.70  # frame recall: at or above, with a lead of FRAME_LEAD: routed there
FRAME_LEAD = 0.50
ROUTE_MAYBE = 0.20  # cosine: at or above, with a lead of ROUTE_MAYBE_LEAD: the model is
ROUTE_MAYBE_LEAD = 0.30  # asked (below both: no tool fits, answered without the model)
ROUTE_TIE = 0.02  # candidates this close to the best are all "first"

# A tool's usage-demo questions, looked up by the engine (the registry's summaries have
# none); an empty list when the card has no demos.
DemoLookup = Callable[[Sequence["ToolEntry"]], Awaitable[Mapping[str, Sequence[str]]]]


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
    """The dispatcher's decision: a tool, or none, and what deciding cost.

    ``by`` says what decided: "evidence" (the demos alone), "model" (the model, with the
    evidence agreeing, or alone where there was none) or "shortlist" (nothing matched).
    ``confidence`` (0 to 1) is, for a tool, its score times its lead over the next
    candidate (by the measure that stands out more); for none, one minus that; ``None``
    without evidence.
    ``similarity`` is each candidate's best match with its demo questions, ``frame`` how
    much of what its demo questions share the question has (see :func:`frame_recall`).
    """

    tool: str | None
    candidates: list[str] = field(default_factory=list)
    usage: TokenUsage = field(default_factory=TokenUsage)
    by: str = "model"
    confidence: float | None = None
    similarity: dict[str, float] = field(default_factory=dict)
    frame: dict[str, float] = field(default_factory=dict)


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

    def __init__(self, model: ModelAdapter, *, shortlist: int = 8, weigh_all: int = 64) -> None:
        """``shortlist``: the most tools the model is shown; ``weigh_all``: up to this
        many tools, every one's demos are weighed (no BM25 cut first, which misses a
        question with few words, like an arithmetic expression)."""
        self.model = model
        self.shortlist = shortlist
        self.weigh_all = weigh_all
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

    async def choose(
        self, question: str, tools: Sequence[ToolEntry], demos: DemoLookup | None = None
    ) -> Choice:
        """The tool for ``question``, or none; ``demos`` gives the candidates' usage-demo
        questions, the evidence the model's choice is checked against."""
        weigh_all = demos is not None and len(tools) <= self.weigh_all
        shortlist = list(tools) if weigh_all else self.candidates(question, tools)
        names = [tool.name for tool in shortlist]
        if not shortlist:
            return Choice(tool=None, candidates=names, by="shortlist")
        found = await demos(shortlist) if demos is not None else {}
        if not any(found.values()):  # no demos to weigh: the model alone, on the shortlist
            shortlist = self.candidates(question, tools) if weigh_all else shortlist
            if not shortlist:
                return Choice(tool=None, by="shortlist")
            return await self._ask(question, shortlist, [tool.name for tool in shortlist])
        given = {name: found.get(name, ()) for name in names}
        cosine = Standing(demo_similarity(question, given))
        frame = Standing(frame_recall(question, given))
        ranked = sorted(names, key=lambda name: (-cosine.score[name], -frame.score[name]))
        evidence = Choice(tool=None, candidates=ranked, by="evidence",
                          similarity=cosine.score, frame=frame.score)  # fmt: skip
        sure = set(cosine.first if cosine.passes(ROUTE_SURE, ROUTE_LEAD) else ())
        sure |= set(frame.first if frame.passes(FRAME_SURE, FRAME_LEAD) else ())
        strength = max(cosine.strength, frame.strength)
        if len(sure) == 1:
            evidence.tool, evidence.confidence = sure.pop(), round(strength, 3)
            return evidence
        # Several tools the demos cannot tell apart (copies of one card), or a match
        # that is not conclusive: the model chooses, among the candidates the demos
        # point to. A match weaker still: no tool fits.
        allowed = sure or set(cosine.first if cosine.passes(ROUTE_MAYBE, ROUTE_MAYBE_LEAD) else ())
        if not allowed:
            evidence.confidence = round(1 - strength, 3)
            return evidence
        shown = ranked[: self.shortlist]
        asked = await self._ask(question, [_named(shortlist, name) for name in shown], shown)
        asked.candidates = ranked
        asked.similarity, asked.frame = cosine.score, frame.score
        if asked.tool is not None and asked.tool not in allowed:
            asked.tool = None  # the model's pick is not one the demos point to
        asked.confidence = round(strength if asked.tool is not None else 1 - strength, 3)
        return asked

    async def _ask(self, question: str, shortlist: Sequence[ToolEntry], names: list[str]) -> Choice:
        listed = [(tool.name, _one_line(tool)) for tool in shortlist]
        completion = await self.model.complete(
            prompts.dispatch_messages(question, listed), DISPATCH_PARAMS
        )
        return Choice(tool=pick(completion.text, names), candidates=names, usage=completion.usage)


class Standing:
    """The candidates by one measure: the first (within ``ROUTE_TIE`` of the best, so
    copies of one card tie), the best score and its lead over the best of the rest."""

    def __init__(self, score: dict[str, float]) -> None:
        self.score = score
        self.best = max(score.values(), default=0.0)
        self.first = [name for name, value in score.items() if value >= self.best - ROUTE_TIE]
        rest = max((v for name, v in score.items() if name not in self.first), default=0.0)
        self.lead = (self.best - rest) / self.best if self.best > 0 else 0.0

    @property
    def strength(self) -> float:
        """How far the first stand out: the best score times its lead (0 to 1)."""
        return self.best * self.lead

    def passes(self, at_least: float, lead: float) -> bool:
        return self.best >= at_least and self.lead >= lead


def _named(tools: Sequence[ToolEntry], name: str) -> ToolEntry:
    return next(tool for tool in tools if tool.name == name)


@lru_cache(maxsize=4096)
def _features(text: str) -> Mapping[Any, int]:
    """Words and word pairs of ``text``, lower-cased, every number the same token, with
    their counts. Cached (read-only): a card's demo questions are weighed on every
    request routed, and never change."""
    tokens = ["0" if t[0].isdigit() else t for t in _TOKEN.findall(text.lower())]
    features: Counter[Any] = Counter(tokens)
    features.update(pairwise(tokens))
    return MappingProxyType(features)


def demo_similarity(question: str, demos: Mapping[str, Sequence[str]]) -> dict[str, float]:
    """For each tool, the TF-IDF cosine between ``question`` and its closest demo question.

    The weights come from the demo questions of all the tools given, so what every tool's
    questions share (articles, punctuation, "the answer") counts for little and what sets
    one tool's questions apart counts for much. 0 for a tool without demos.
    """
    documents = [(name, _features(text)) for name, texts in demos.items() for text in texts]
    counts: Counter[Any] = Counter()
    for _, features in documents:
        counts.update(features.keys())
    total = len(documents) + 1

    def weighted(features: Mapping[Any, int]) -> dict[Any, float]:
        # Smoothed: a feature in every demo still counts (once), so one tool's demos,
        # which share their frame, still match a question in that frame.
        # Counts damped by a logarithm: a table's many "0 ," pairs must not outweigh words.
        return {
            k: (1 + math.log(v)) * (1 + math.log(total / (counts.get(k, 0) + 1)))
            for k, v in features.items()
        }

    asked = weighted(_features(question))
    asked_norm = math.sqrt(sum(v * v for v in asked.values()))
    best = dict.fromkeys(demos, 0.0)
    for name, features in documents:
        demo = weighted(features)
        norm = math.sqrt(sum(v * v for v in demo.values())) * asked_norm
        if norm:
            dot = sum(v * demo.get(k, 0.0) for k, v in asked.items())
            best[name] = max(best[name], round(dot / norm, 4))
    return best


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


def frame_recall(question: str, demos: Mapping[str, Sequence[str]]) -> dict[str, float]:
    """For each tool, how much of its demo questions' frame ``question`` has.

    A tool's frame is the words and word pairs at least two of its demo questions share
    (all of them with one demo): the task's wording, not one question's data. Each is
    weighted by how few of the tools' frames hold it; the recall is the weight found in
    the question over the frame's whole. Unlike the cosine, a question's own data (a
    long word list) does not dilute it, which matters when few tools are registered.
    """
    frames: dict[str, set[Any]] = {}
    for name, texts in demos.items():
        seen: Counter[Any] = Counter()
        for text in texts:
            seen.update(set(_features(text)))
        need = min(2, len(texts))
        frames[name] = {feature for feature, count in seen.items() if count >= need}
    holders: Counter[Any] = Counter()
    for features in frames.values():
        holders.update(features)
    total = len(frames) + 1
    asked = set(_features(question))
    recall = {}
    for name, features in frames.items():
        weights = {f: 1 + math.log(total / (holders[f] + 1)) for f in features}
        whole = sum(weights.values())
        found = sum(weight for f, weight in weights.items() if f in asked)
        recall[name] = round(found / whole, 4) if whole else 0.0
    return recall
