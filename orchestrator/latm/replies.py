"""Reading a maker's reply as TEXT: the tool's source and one call per question.

Small models write the same thing in many shapes: the function and its calls in separate
```python blocks (the form the prompt shows), all in one block, calls without ``ans =``
(``print(f(x))``, ``f(x)``, ``result = f(x)``, ``assert f(x) == y``), calls under
``if __name__ == "__main__":``, prose between or around the code, or more calls than
questions (tests, the shown example again). All of them are read here with line logic and
regular expressions only: nothing is parsed as Python, compiled or run. A misread reply costs
one sandbox run that fails; the sandbox is the judge.

A statement is a line at column 0 with its continuation lines (open brackets, a trailing
backslash, an open triple quote, or the indented body of a compound statement). Statements
that define things (``def``, ``class``, decorators, imports) and everything before the last
``def`` are the tool; statements after it that call one of its functions are calls.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from orchestrator.latm.code import literals

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_CODE_TAGS = {"", "python", "py", "python3", "py3"}
_DEF = re.compile(r"^(?:async\s+)?def\s+([A-Za-z]\w*)\s*\(")
_SOURCE_HEAD = re.compile(r"^(?:def|class|async\s+def|import|from)\s|^@")
_MAIN = re.compile(r"""^if\s+__name__\s*==\s*['"]__main__['"]\s*:""")
_CONTINUES = re.compile(r"^(?:else|elif|except|finally)\b")
_ANS = re.compile(r"^ans\s*(?::[^=]*)?=(?!=)")
_ASSIGN = re.compile(r"^([A-Za-z]\w*)\s*(?::[^=]*)?=(?!=)")
_KEYWORDS = frozenset([*keyword.kwlist, "print"])
# Prose: "Here is the function:", "Example 1:", "1. Sort...", "- a bullet", "**Output**".
_PROSE = re.compile(
    r"^(?:[A-Za-z][\w'\u2019,-]*[ \t]+[A-Za-z0-9\"'`]|\d+[.)][ \t]|[-*>•][ \t]|\*\*"
    r"|[A-Z]\w*(?:[ \t]\w+)?:(?:\s|$))"
)
_SCAFFOLD = re.compile(r"^def\s+(?:main|test\w*|example\w*)\s*\(")


@dataclass(frozen=True)
class Reply:
    """What a maker's reply holds: the tool module (or None), the calls, in order, each
    setting ``ans``, the functions it defines, and ``ans =`` lines that call none of them."""

    source: str | None
    calls: list[str]
    names: tuple[str, ...] = ()
    stray: list[str] = field(default_factory=list)


def read_reply(text: str, known: Sequence[str] = ()) -> Reply:
    """Split ``text`` into the tool and its calls. ``known`` names functions already
    defined (a verification reply may hold calls only)."""
    blocks = [_statements(_code_lines(block)) for block in _blocks(text)]
    heads = [stmt for block in blocks for stmt in block]
    names = tuple(dict.fromkeys(m.group(1) for s in heads if (m := _DEF.match(s))))
    last_def = max((i for i, s in enumerate(heads) if _DEF.match(s)), default=-1)
    callable_names = names + tuple(n for n in known if n not in names)
    source: list[str] = []
    calls: list[str] = []
    stray: list[str] = []
    index = 0
    for block in blocks:
        after: list[str] = []
        for stmt in block:
            if index <= last_def or _SOURCE_HEAD.match(stmt):
                source.append(stmt)
            else:
                after.append(stmt)
            index += 1
        calls += _calls(after, callable_names, stray)
    return Reply(
        source="\n\n".join(source).strip("\n") + "\n" if names else None,
        calls=calls,
        names=callable_names,
        stray=stray,
    )


def pick_calls(calls: Sequence[str], questions: Sequence[str]) -> list[str] | None:
    """Exactly one call per question, in order: the calls as they are when their number is
    right; when there are more (tests, a shown example again), the first call, in order,
    whose literals all occur in each question; None when that does not give one each."""
    if len(calls) == len(questions):
        return list(calls)
    if len(calls) < len(questions):
        return None
    picked: list[str] = []
    start = 0
    for question in questions:
        text = " ".join(question.split())
        for at in range(start, len(calls)):
            found = [" ".join(value.split()) for value in literals(calls[at])]
            if found and all(value in text for value in found):
                picked.append(calls[at])
                start = at + 1
                break
        else:
            return None
    return picked


NO_FUNCTION = (
    "The reply defines no function. Start with a ```python block that holds `def "
    "<name>(<arguments>):` at the start of a line, with its body; then write the calls."
)


def reply_problems(reply: Reply, questions: int, label: str, tool: str | None) -> list[str]:
    """Why a reply gives no call per question, said as what to change in it."""
    name = tool or (reply.names[-1] if reply.names else "your_function")
    form = f"`ans = {name}(<arguments taken from that {label.lower()}>)`"
    got = len(reply.calls)
    if got == 0:
        problems = [
            f"The reply has no call of `{name}`. After the function, write {questions} lines, "
            f"one per {label.lower()} in order, each {form}."
        ]
    elif got < questions:
        problems = [
            f"The reply has {got} call(s) of `{name}` but there are {questions} "
            f"{label.lower()}s. Write exactly {questions} calls, one per {label.lower()} in "
            f"order ({label} 1 first), each {form}."
        ]
    else:
        problems = [
            f"The reply has {got} calls of `{name}` for {questions} {label.lower()}s, and they "
            f"do not match the {label.lower()}s one to one. Write exactly {questions} calls, "
            f"one per {label.lower()} in order, each {form}; no tests, no other examples."
        ]
    problems += [
        f"`{line.splitlines()[0][:60]}` does not call `{name}`: compute every answer by "
        "calling the function, never write an answer yourself."
        for line in reply.stray[:2]
    ]
    return problems


def _blocks(text: str) -> list[str]:
    """The code blocks (untagged or Python) of ``text``; the whole text if it has none."""
    fenced = _FENCE.findall(text)
    if not fenced:
        return [text]
    return [body for tag, body in fenced if tag.lower() in _CODE_TAGS]


def _code_lines(block: str) -> list[str]:
    """The block's lines without prose; ``if __name__ == "__main__":`` bodies dedented."""
    lines: list[str] = []
    main_indent: str | None = None
    for line in block.expandtabs(4).splitlines():
        if main_indent is not None:
            if not line.strip() or line.startswith(main_indent):
                lines.append(line[len(main_indent) :])
                continue
            main_indent = None
        if _MAIN.match(line):
            main_indent = " " * 4
            continue
        if line[:1].strip() and _is_prose(line):
            continue
        lines.append(line.rstrip())
    return lines


def _is_prose(line: str) -> bool:
    word = re.match(r"[A-Za-z_]\w*", line)
    if word and word.group(0) in _KEYWORDS:
        return False
    return bool(_PROSE.match(line))


def _statements(lines: list[str]) -> list[str]:
    """Logical statements starting at column 0, each with its continuation lines."""
    statements: list[list[str]] = []
    depth, open_quote, backslash = 0, False, False
    for line in lines:
        starts = bool(line[:1].strip()) and depth <= 0 and not open_quote and not backslash
        joined = statements and (_CONTINUES.match(line) or statements[-1][-1].startswith("@"))
        if starts and not joined:
            statements.append([line])
        elif statements:
            statements[-1].append(line)
        else:
            continue  # indented text before any statement: not code we can place
        depth, open_quote = _scan(line, depth, open_quote)
        backslash = line.endswith("\\")
    found = ["\n".join(s).rstrip() for s in statements if "".join(s).strip()]
    return [part for stmt in found for part in _unwrapped(stmt)]


def _unwrapped(stmt: str) -> list[str]:
    """A ``main()`` or ``test_...()`` scaffold is no tool: its body holds the calls."""
    if not _SCAFFOLD.match(stmt):
        return [stmt]
    body = [line[4:] if line.startswith("    ") else line for line in stmt.splitlines()[1:]]
    return _statements(body)


def _scan(line: str, depth: int, open_quote: bool) -> tuple[int, bool]:
    """Bracket depth and open triple quote after ``line`` (strings skipped, roughly)."""
    at = 0
    while at < len(line):
        if line.startswith(('"""', "'''"), at):
            open_quote = not open_quote
            at += 3
            continue
        char = line[at]
        if open_quote:
            at += 1
            continue
        if char == "#":
            break
        if char in "\"'":
            end = line.find(char, at + 1)
            while end > 0 and line[end - 1] == "\\":
                end = line.find(char, end + 1)
            at = len(line) if end < 0 else end + 1
            continue
        depth += (char in "([{") - (char in ")]}")
        at += 1
    return depth, open_quote


def _calls(statements: list[str], names: Sequence[str], stray: list[str]) -> list[str]:
    """Calls from the statements after the tool: one per statement that calls a function
    of ``names``, with the setting-up statements before it. A block with a single
    ``ans =`` statement is one call whole (its other lines are steps towards ``ans``)."""
    calls_fn = re.compile(rf"\b(?:{'|'.join(map(re.escape, names))})\s*\(") if names else None

    def calls_tool(stmt: str) -> bool:
        return bool(calls_fn and calls_fn.search(stmt))

    if _one_call(statements, calls_tool):
        return ["\n".join(_without_prints(statements))]
    found: list[str] = []
    setup: list[str] = []
    for stmt in statements:
        if calls_tool(stmt):
            call = _as_call(stmt, calls_fn)
            if call is not None:
                found.append("\n".join([*setup, call]))
            setup = []
        elif _ANS.match(stmt):
            stray.append(stmt)
        elif _ASSIGN.match(stmt):
            setup.append(stmt)
    return found


def _one_call(statements: list[str], calls_tool: Callable[[str], bool]) -> bool:
    """Whether the statements are the steps of one call: one ``ans =`` statement, and every
    other statement that calls the tool assigns a name that the ``ans`` statement uses."""
    answers = [s for s in statements if _ANS.match(s)]
    if len(answers) != 1 or not calls_tool("\n".join(statements)):
        return False
    for stmt in statements:
        if stmt is answers[0] or not calls_tool(stmt):
            continue
        assigned = _ASSIGN.match(stmt)
        if assigned is None or not re.search(rf"\b{assigned.group(1)}\b", answers[0]):
            return False
    return True


def _without_prints(statements: list[str]) -> list[str]:
    kept = [s for s in statements if not s.startswith("print(") or _ANS.match(s)]
    return kept or statements


def _as_call(stmt: str, calls_fn: re.Pattern[str] | None) -> str | None:
    """The statement as a call that sets ``ans``: as it is, the left side of an assert's
    ``==``, a name it assigns, or (a print, a bare call) the call of the tool in it."""
    if _ANS.match(stmt):
        return stmt
    if stmt.startswith("assert"):
        left = _before_equals(stmt[len("assert") :].strip())
        return f"ans = {left}" if left else None
    assigned = _ASSIGN.match(stmt)
    if assigned:
        return f"{stmt}\nans = {assigned.group(1)}"
    match = calls_fn.search(stmt) if calls_fn else None
    end = _closing(stmt, match.end() - 1) if match else -1
    return f"ans = {stmt[match.start() : end + 1]}" if match and end > 0 else None


def _before_equals(text: str) -> str | None:
    """The left side of ``left == right`` (outside brackets and strings), or None."""
    for at, char, depth in _outside_strings(text, 0):
        if depth == 0 and char == "=" and text.startswith("==", at):
            return text[:at].strip() or None
    return None


def _closing(text: str, opening: int) -> int:
    """The index of the bracket closing the one at ``opening`` (strings skipped), or -1."""
    for at, char, depth in _outside_strings(text, opening):
        if depth == 0 and char in ")]}":
            return at
    return -1


def _outside_strings(text: str, start: int) -> Iterator[tuple[int, str, int]]:
    """Each character of ``text`` from ``start`` outside string literals, with the bracket
    depth after it."""
    depth, quote = 0, ""
    for at in range(start, len(text)):
        char = text[at]
        if quote:
            quote = "" if char == quote and text[at - 1] != "\\" else quote
            continue
        if char in "\"'":
            quote = char
            continue
        depth += (char in "([{") - (char in ")]}")
        yield at, char, depth
