"""Grounding a tool user's call in its question, on TEXT only.

A light model copies arguments out of a long question and drops or adds a bracket, mis-spells
a name, or cuts a word short. Where a string literal of the call is not in the question but
nearly copies one stretch of it, the literal is replaced with that stretch, exactly as the
question has it (whitespace runs as one space). Nothing here compiles or runs the call: the
lexer finds the literals and the replacement is a string edit.
"""

from __future__ import annotations

import io
import json
import re
import tokenize
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

# How far a literal may be from the stretch it is snapped to: at most this share of its
# length (in words, or in symbols for a literal without letters or digits) is changed.
SNAP_SHARE = 0.2
WORD_RATIO = 0.8  # the least similarity of a one-word literal to the question's word
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'_:-]*")
_CLAUSE_END = re.compile(r"[.?!:;,\n]+\s*")


@dataclass(frozen=True)
class Snap:
    """One literal of the call replaced with the question's stretch it nearly copies."""

    written: str
    snapped: str


def in_question(value: str, question: str) -> bool:
    """Whether ``value`` is in the question as written: whitespace runs count as one space,
    a literal with letters or digits must start and end on word boundaries, and one with
    neither is compared with no spaces at all."""
    if any(c.isalnum() for c in value):
        text = " ".join(question.split())
        wanted = re.escape(" ".join(value.split()))
        return re.search(rf"(?<![A-Za-z0-9]){wanted}(?![A-Za-z0-9])", text) is not None
    bare = "".join(value.split())
    return len(bare) <= 1 or bare in "".join(question.split())


def snap_literals(call: str, question: str) -> tuple[str, list[Snap]]:
    """The call with each near-copied string literal replaced by the question's stretch,
    and what was replaced. Literals with escapes, prefixes (raw, bytes, f-strings) or that
    match nothing closely enough are left as they are, for the grounding check to report."""
    edits: list[tuple[int, int, str]] = []
    snaps: list[Snap] = []
    starts = _line_starts(call)
    literals = [(token, _plain_value(token.string)) for token in _string_tokens(call)]
    # The call's own literals that are in the question: the words a near copy most likely
    # meant ("peach" is the "peaches" listed beside it, not the question's "each").
    copied = {v for _, v in literals if v is not None and v.strip() and in_question(v, question)}
    for token, value in literals:
        if value is None or "\\" in value or not value.strip():
            continue
        if value in copied:
            stretch = bracketed_stretch(value, question)
        else:
            stretch = nearest_stretch(value, question, copied)
        if stretch is None:
            continue
        start = starts[token.start[0] - 1] + token.start[1]
        end = starts[token.end[0] - 1] + token.end[1]
        edits.append((start, end, json.dumps(stretch, ensure_ascii=False)))
        snaps.append(Snap(value, stretch))
    for start, end, text in reversed(edits):
        call = call[:start] + text + call[end:]
    return call, snaps


def bracketed_stretch(value: str, question: str) -> str | None:
    """For a literal copied from the question with its brackets unbalanced where it cut a
    run of brackets short ("(1 - 4) - (2 * 3))" out of "((1 - 4) - (2 * 3))"): the one
    stretch that puts back the fewest of the run's brackets and balances them, or None.
    A sequence the question itself leaves open (a Dyck prefix) is copied whole and stays."""
    if _balanced(value) or not any(c in _OPENING + _CLOSING for c in value):
        return None
    text, wanted = " ".join(question.split()), " ".join(value.split())
    found: set[str] = set()
    for match in re.finditer(re.escape(wanted), text):
        left = right = 0
        while left < match.start() and text[match.start() - left - 1] in _OPENING:
            left += 1
        while match.end() + right < len(text) and text[match.end() + right] in _CLOSING:
            right += 1
        fits = sorted(
            (a + b, text[match.start() - a : match.end() + b])
            for a in range(left + 1)
            for b in range(right + 1)
            if a + b and _balanced(text[match.start() - a : match.end() + b])
        )
        if fits:
            found.add(fits[0][1])
    return found.pop() if len(found) == 1 else None


_OPENING, _CLOSING = "([{", ")]}"


def _balanced(text: str) -> bool:
    """Whether the round, square and curly brackets of ``text`` pair up (other characters,
    ``<`` and ``>`` among them, are not brackets here)."""
    stack: list[str] = []
    for c in text:
        if c in _OPENING:
            stack.append(_CLOSING[_OPENING.index(c)])
        elif c in _CLOSING and (not stack or stack.pop() != c):
            return False
    return not stack


def _plain_value(body: str) -> str | None:
    """The text of a plain string literal; None for a prefixed one (r, b, f, u)."""
    quote = body[:3] if body[:3] in ('"""', "'''") else body[:1]
    if quote not in ('"', "'", '"""', "'''") or not body.endswith(quote):
        return None
    return body[len(quote) : -len(quote)]


def nearest_stretch(value: str, question: str, copied: Collection[str] = ()) -> str | None:
    """The one stretch of the question that ``value`` nearly copies, or None. A one-word
    ``value`` prefers the words in ``copied`` (what the same call copied exactly) and then
    the words it begins (a word cut short) over others as near."""
    if any(c.isalnum() for c in value):
        words = value.split()
        if len(words) == 1:
            return _nearest_word(value, question, copied)
        text = question.split()
        chosen = _align(words, text)
        return " ".join(text[chosen[0] : chosen[1]]) if chosen is not None else None
    symbols = list("".join(value.split()))
    spaced = question.split()
    # Symbols are aligned one by one; the stretch keeps the question's own spacing.
    marks = [(n, c) for n, word in enumerate(spaced) for c in word]
    chosen = _align(symbols, [c for _, c in marks])
    if chosen is None:
        return None
    first, last = marks[chosen[0]][0], marks[chosen[1] - 1][0]
    stretch = spaced[first : last + 1]
    if any(c.isalnum() for word in stretch for c in word):
        return None  # the stretch runs into words: not a copy of a symbol sequence
    return " ".join(stretch)


def _nearest_word(value: str, question: str, copied: Collection[str] = ()) -> str | None:
    folded = value.casefold()
    near = [
        (
            word in copied,
            word.casefold().startswith(folded),  # a word cut short
            SequenceMatcher(None, folded, word.casefold()).ratio(),
            SequenceMatcher(None, value, word).ratio(),  # the case decides a tie
            word,
        )
        for word in dict.fromkeys(_WORD.findall(question))
    ]
    scored = sorted((rank for rank in near if rank[2] >= WORD_RATIO), reverse=True)
    if not scored:
        return None
    if len(scored) > 1 and scored[1][:4] == scored[0][:4]:
        return None  # two words as near: which one was meant is not clear
    return scored[0][4]


def _align(items: Sequence[str], text: Sequence[str]) -> tuple[int, int] | None:
    """The stretch ``text[i:j]`` with the fewest edits from ``items`` (free start and end in
    ``text``), if it is unique and within :data:`SNAP_SHARE` of ``items``' length."""
    if not items or not text:
        return None
    # cost[j]: edits aligning items[:i] with a stretch of text ending at j; start[j]: its i.
    cost = [0] * (len(text) + 1)
    start = list(range(len(text) + 1))
    for i, item in enumerate(items, 1):
        new_cost, new_start = [i] + [0] * len(text), [0] * (len(text) + 1)
        for j, word in enumerate(text, 1):
            options = (
                (cost[j - 1] + (0 if word == item else 1), start[j - 1]),
                (cost[j] + 1, start[j]),  # an item with nothing in the text
                (new_cost[j - 1] + 1, new_start[j - 1]),  # a word of the text left out
            )
            new_cost[j], new_start[j] = min(options)
        cost, start = new_cost, new_start
    best = min(cost)
    ends = [j for j, c in enumerate(cost) if c == best]
    if len(ends) > 1:  # a tie: a stretch that ends as the literal ends is the one copied
        ends = [j for j in ends if j and text[j - 1] == items[-1]]
    if best == 0 or best > max(1, int(SNAP_SHARE * len(items))) or len(ends) != 1:
        return None
    return start[ends[0]], ends[0]


def sentence_order(items: Sequence[str], question: str) -> bool:
    """Whether the question holds ``items`` in this order, read clause by clause: each
    item is in the clause of the one before or in a later one (within one clause any order
    is fine, as in "the green book is right of the gray book"), and no place in the
    question stands for two items."""
    text = " ".join(question.split())
    starts = [0] + [m.end() for m in _CLAUSE_END.finditer(text)]
    at, used = 0, set()
    for item in items:
        wanted = re.escape(" ".join(item.split()))
        pattern = re.compile(rf"(?<![A-Za-z0-9]){wanted}(?![A-Za-z0-9])")
        found = next((m for m in pattern.finditer(text, at) if m.start() not in used), None)
        if found is None:
            return False
        used.add(found.start())
        at = max(s for s in starts if s <= found.start())
    return True


def _line_starts(text: str) -> list[int]:
    starts, at = [], 0
    for line in text.splitlines(keepends=True):
        starts.append(at)
        at += len(line)
    return [*starts, at]


def python_tokens(code: str) -> Iterator[tokenize.TokenInfo]:
    """The tokens of ``code`` (read by the lexer, never compiled) up to the first that
    cannot be read: a model's text is often cut short or broken."""
    try:
        yield from tokenize.generate_tokens(io.StringIO(code).readline)
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return


def _string_tokens(code: str) -> list[tokenize.TokenInfo]:
    return [token for token in python_tokens(code) if token.type == tokenize.STRING]
