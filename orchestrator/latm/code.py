"""Reading model-written code as TEXT: code blocks, the tool's name and docstring, and the
memorisation guard.

Nothing here compiles, evaluates or imports what a model wrote; the orchestrator must never
do that (a test enforces it). Only the lexer (:mod:`tokenize`) looks at it, to find names and
literals; the code itself runs only inside a sandbox.
"""

from __future__ import annotations

import re
import tokenize
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.latm.grounding import in_question, python_tokens, sentence_order
from orchestrator.latm.tasks import Example

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)
_DEF = re.compile(r"^def[ \t]+([A-Za-z][A-Za-z0-9_]*)[ \t]*\((.*?)\)[ \t]*(->[^:]*)?:", re.M | re.S)
_WORD = re.compile(r"[A-Za-z][A-Za-z'&-]{3,}|\d{3,}")


def code_blocks(reply: str) -> list[str]:
    """The fenced code blocks of a reply, in order; the whole reply if it has none."""
    blocks = [body.strip("\n") for _, body in _FENCE.findall(reply)]
    blocks = [block for block in blocks if block.strip()]
    return blocks or ([reply.strip()] if reply.strip() else [])


def first_call(reply: str) -> str:
    """The call snippet in a tool user's reply (its first code block, or the reply)."""
    blocks = code_blocks(reply)
    return blocks[0].strip() if blocks else ""


@dataclass(frozen=True)
class ToolShape:
    name: str
    signature: str
    docstring: str


def tool_shape(source: str) -> ToolShape | None:
    """The last top-level function (the tool; helpers come first), its signature and
    docstring, read from the text."""
    matches = list(_DEF.finditer(source))
    if not matches:
        return None
    last = matches[-1]
    arguments = " ".join(last.group(2).split())
    returns = f" {last.group(3).strip()}" if last.group(3) else ""
    return ToolShape(
        name=last.group(1),
        signature=f"{last.group(1)}({arguments}){returns}",
        docstring=_docstring_after(source, last.end()),
    )


def _docstring_after(source: str, offset: int) -> str:
    for token in python_tokens(source[offset:]):
        if token.type in (tokenize.NEWLINE, tokenize.NL, tokenize.INDENT, tokenize.COMMENT):
            continue
        if token.type == tokenize.STRING:
            return " ".join(_string_value(token.string).split())
        return ""
    return ""


def _string_value(literal: str) -> str:
    """The text of a string literal, without prefix and quotes (escapes left as written)."""
    body = literal.lstrip("rRbBuUfF")
    for quote in ('"""', "'''", '"', "'"):
        if body.startswith(quote) and body.endswith(quote) and len(body) >= 2 * len(quote):
            return body[len(quote) : -len(quote)]
    return body


def literals(source: str) -> list[str]:
    """String and number literals of ``source`` (docstrings and comments excluded)."""
    found: list[str] = []
    previous = tokenize.NEWLINE
    for token in python_tokens(source):
        if token.type == tokenize.STRING and previous not in (
            tokenize.NEWLINE,
            tokenize.INDENT,
            tokenize.NL,
        ):
            found.append(_string_value(token.string))
        elif token.type == tokenize.NUMBER:
            found.append(token.string)
        if token.type not in (tokenize.COMMENT, tokenize.NL):
            previous = token.type
    return found


def memorisation(source: str, examples: Sequence[Example]) -> str | None:
    """Why ``source`` looks like it memorised the examples, or None.

    Three signs, each a reason to reject: a literal equal to an example's answer (answers
    of three characters or fewer, such as option letters, are common words of a task, and
    so is an answer two or more examples share, such as "No time slot works."); a long
    literal copied from one example's question; or two or more literals (words of four
    letters or more, numbers of three digits or more) that occur in one example's question
    and in no other example's, i.e. a branch on that particular input.
    """
    found = literals(source)
    flat = [(" ".join(e.target.split()).lower(), e) for e in examples]
    shared = Counter(target for target, _ in flat)
    answers = {target: e for target, e in flat if len(e.target) > 3 and shared[target] == 1}
    for literal in found:
        example = answers.get(" ".join(literal.split()).lower())
        if example is not None:
            return f"the literal {_short(literal)} is the expected answer of an example"
    for literal in found:
        if len(literal) >= 16 and sum(literal in e.input for e in examples) == 1:
            return f"the literal {_short(literal)} is copied from an example's question"
    return _branches_on_inputs(found, examples)


def _branches_on_inputs(found: list[str], examples: Sequence[Example]) -> str | None:
    words_per_example = [set(_WORD.findall(e.input.lower())) for e in examples]
    spread = Counter(word for words in words_per_example for word in words)
    specific = [{w for w in words if spread[w] == 1} for words in words_per_example]
    for words in specific:
        hits = sorted({lit for lit in found if lit.lower() in words})
        if len(hits) >= 2:
            return (
                "the tool branches on the exact inputs of an example (literals "
                f"{', '.join(_short(h) for h in hits[:3])} occur only in that question)"
            )
    return None


def _short(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[: limit - 1] + "…")


_IMPORT_LINE = re.compile(r"^\s*(?:from\s+[\w.]+\s+)?import\s+.+$", re.M)
_ASSIGN_LINE = re.compile(r"^([A-Za-z_]\w*)\s*=[^=]")


def call_problems(
    call: str,
    entrypoint: str,
    question: str,
    *,
    grounding: bool,
    examples: Sequence[str] = (),
) -> list[str]:
    """What is wrong with a tool user's call, read from its text, each said so that the
    model can fix it: no call at all, the tool defined again, an import (the tool's
    module already holds everything), no ``ans``, and (with ``grounding``) a string that
    is not copied from the question or is copied from one of the worked ``examples``)."""
    if not call.strip():
        return [f"Reply with one call of `{entrypoint}` that sets `ans`."]
    problems = []
    if re.search(rf"^\s*def\s+{re.escape(entrypoint)}\s*\(", call, re.M):
        problems.append(f"Do not define `{entrypoint}` again: it is already defined. Only call it.")
    if _IMPORT_LINE.search(call):
        problems.append(
            f"Do not import anything: `{entrypoint}` and every module it uses are already "
            "there. Only call it."
        )
    if not _sets_ans(call):
        problems.append(f"Assign the final answer to `ans`, as in `ans = {entrypoint}(...)`.")
    if grounding:
        problems += ungrounded(call, question, examples)
    return problems


def _sets_ans(call: str) -> bool:
    """Whether the call assigns ``ans``, or is one expression (whose value is the answer)."""
    lines = [
        line for line in call.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]
    if any(re.match(r"^ans\s*(?::[^=]*)?=[^=]", line) for line in lines):
        return True
    logical = sum(1 for token in python_tokens(call) if token.type == tokenize.NEWLINE)
    return logical <= 1 and not any(_ASSIGN_LINE.match(line) for line in lines)


def ungrounded(call: str, question: str, examples: Sequence[str] = ()) -> list[str]:
    """Strings of the call that are not taken from the question: a word mis-copied or cut
    short, a space dropped or added (whitespace runs count as one space), a symbol dropped
    from a sequence (literals without letters or digits are compared with no spaces at
    all), or a run of arguments copied from one of the worked ``examples`` (calls shown to
    the model) rather than from this question. Literals with escapes are not checked."""
    text = " ".join(question.split())
    problems = []
    found = [value for value in _string_literals(call) if "\\" not in value]
    for value in found:
        if not in_question(value, question):
            problems.append(f"{_short(value)} is not in the question; copy it exactly.")
    copied = _copied_run(found, examples, text)
    if copied:
        problems.append(
            f"The arguments {', '.join(map(_short, copied))} are copied from a worked "
            "example, not taken from this question; take every argument from this question."
        )
    return problems


def _string_literals(code: str) -> list[str]:
    return [
        _string_value(token.string)
        for token in python_tokens(code)
        if token.type == tokenize.STRING
        and not token.string.lstrip("rRbBuU").startswith(("f", "F"))
    ]


def copied_run(call: str, question: str, examples: Sequence[str]) -> list[str]:
    """The call's longest run of three or more literals copied from a worked example's call
    in an order this question does not hold (see :func:`ungrounded`); empty if none."""
    found = [value for value in _string_literals(call) if "\\" not in value]
    return _copied_run(found, examples, " ".join(question.split()))


def _copied_run(found: list[str], examples: Sequence[str], question: str) -> list[str]:
    """A run of three or more of the call's literals that a worked example's call also
    has, in that order, but that this question does not hold in that order."""
    for example in examples:
        shown = _string_literals(example)
        for size in range(min(len(found), len(shown)), 2, -1):
            for start in range(len(found) - size + 1):
                run = found[start : start + size]
                if _has_run(shown, run) and not sentence_order(run, question):
                    return run
    return []


def _has_run(items: list[str], run: list[str]) -> bool:
    return any(items[i : i + len(run)] == run for i in range(len(items) - len(run) + 1))
