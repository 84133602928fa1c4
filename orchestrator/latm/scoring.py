"""Scoring: does a tool's JSON value answer an example? Exact match after light normalisation.

A tool's value is untrusted data (str, int, float, bool, list, dict or None, as JSON gives
it). Scorers only read it: nothing is evaluated, work is capped (long strings and long lists
are refused, never scanned), and a value that cannot be read as an answer normalises to
``None`` and scores False instead of raising.

Each task family has a scorer; :func:`choose_scorer` picks one from the task's data (its
targets, and its inputs for multiple-choice options), not from its name, so a new file of a
known shape is scored right without configuration.
"""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from decimal import Decimal
from functools import lru_cache
from types import MappingProxyType
from typing import ClassVar

from orchestrator.errors import InvalidRequest
from orchestrator.latm.tasks import Example, Task

MAX_ANSWER_CHARS = 100_000
MAX_ANSWER_ITEMS = 10_000
MAX_NUMBER_CHARS = 1_000
MAX_INT_BITS = 3_000  # about 900 digits, well under Python's int-to-str digit limit

_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?")
_OPTION_LINE = re.compile(r"\(([A-Z])\)\s?(.*)")

Options = tuple[tuple[str, str], ...]
"""A question's lettered options: ``(("A", "text"), ...)``."""


class Scorer(ABC):
    """Maps values and targets to one canonical answer string and compares them."""

    name: ClassVar[str]

    @abstractmethod
    def normalise(self, value: object, example: Example) -> str | None:
        """The canonical answer string for ``value``, or None if it cannot be read as one."""

    @abstractmethod
    def fits(self, example: Example) -> bool:
        """Whether this example's target has the shape this family scores."""

    def fits_task(self, task: Task) -> bool:
        """Whether every target of ``task`` has this family's shape."""
        return all(self.fits(example) for example in task.examples)

    def canonical_target(self, example: Example) -> str:
        """The target in canonical form (its collapsed text if this family cannot read it)."""
        canonical = self.normalise(example.target, example)
        return canonical if canonical is not None else _collapse(example.target)

    def matches(self, value: object, example: Example) -> bool:
        """True when ``value`` normalises to the same answer as the example's target."""
        try:
            got = self.normalise(value, example)
        except (ValueError, TypeError, OverflowError, RecursionError):
            # Normalisers are written not to raise; this is defence for untrusted values.
            return False
        return got is not None and got == self.canonical_target(example)


class ExactScorer(Scorer):
    """Free-form answers (word sorting, yes/no, True/False, valid/invalid).

    Strings are stripped with inner whitespace collapsed; ints print in decimal, integral
    floats as ints, booleans as ``True``/``False``, and a flat list joins its items with single
    spaces (``["apple", "fig"]`` answers ``"apple fig"``). When the target is one of the
    two-word vocabularies ``True/False``, ``Yes/No`` or ``valid/invalid`` the comparison
    ignores case, and a bool value answers it (True is ``yes``/``valid``).
    """

    name = "exact"

    def fits(self, example: Example) -> bool:
        """Every target fits: this is the fallback family."""
        return True

    def normalise(self, value: object, example: Example) -> str | None:
        """Collapsed text of the value, casefolded for two-word vocabularies."""
        vocabulary = _BOOLEAN_VOCABULARIES.get(_collapse(example.target).casefold())
        if vocabulary is not None and isinstance(value, bool):
            return vocabulary[0] if value else vocabulary[1]
        text = _joined(value) if isinstance(value, list | tuple) else _scalar_text(value)
        if text is None:
            return None
        text = _collapse(text)
        return text.casefold() if vocabulary is not None else text


class MultipleChoiceScorer(Scorer):
    """Questions with lettered options ("Options:\\n(A) ...\\n(B) ..."), targets like ``(A)``.

    Every answer normalises to ``"(A)"``. A value may be:

    - a letter: ``"A"``, ``"a"``, ``"(A)"``, ``"A)"``, ``"A."`` (one of the question's);
    - an option's text, case and whitespace ignored, or ``"(A) text"`` with option A's text;
      a text shared by several options is ambiguous and scores False;
    - an int: when every option is a number (digits, or a word from zero to twenty, as in
      penguins_in_a_table and reasoning_about_colored_objects) it names the option with that
      number, because a counting tool returns the count; otherwise it is a **0-based** index,
      as Python tools return list indices (0 is ``(A)``). Floats are neither;
    - a bool, for options "yes"/"no": True names "yes".

    A free-text target that is no option (three BBH items, see :meth:`fits_task`) is
    compared as casefolded text.
    """

    name = "multiple_choice"
    _LETTER = re.compile(r"\(?([A-Za-z])\)?[.:]?")
    _LABELLED = re.compile(r"\(([A-Za-z])\)\s*(.+)")
    MAX_FREE_TEXT_SHARE = 0.05

    def fits(self, example: Example) -> bool:
        """The target is ``(X)`` for an option X of the input."""
        options = parse_options(example.input)
        return any(f"({letter})" == example.target.strip() for letter, _ in options)

    def fits_task(self, task: Task) -> bool:
        """Every input has lettered options and nearly every target is one of them.

        Up to 5% of targets may be free text: in BBH's movie_recommendation and ruin_names a
        title with a comma was split into two options and the target kept the whole title
        ("Monsters, Inc"). Requiring every target to be a letter would send those tasks to
        ``exact``, where a letter answer would never match.
        """
        if not all(parse_options(example.input) for example in task.examples):
            return False
        misfits = sum(not self.fits(example) for example in task.examples)
        return misfits <= self.MAX_FREE_TEXT_SHARE * len(task.examples)

    def normalise(self, value: object, example: Example) -> str | None:
        """``"(X)"`` for a value naming option X; casefolded text for other text."""
        options = parse_options(example.input)
        if isinstance(value, list | tuple) and len(value) == 1:
            value = value[0]  # one level only: ["B"] reads as "B", deeper nesting does not
        if isinstance(value, bool):
            return _only_letter(options, "yes" if value else "no")
        if isinstance(value, int):
            return self._from_int(value, options)
        text = _capped_str(value)
        return None if text is None else self._from_text(_collapse(text), options)

    def _from_int(self, value: int, options: Options) -> str | None:
        if value.bit_length() > 64:  # no index or option number is this large
            return None
        numbers = [_option_number(text) for _, text in options]
        if options and None not in numbers:
            return _only_letter(
                tuple(zip(dict(options), map(str, numbers), strict=True)), str(value)
            )
        return f"({options[value][0]})" if 0 <= value < len(options) else None

    def _from_text(self, text: str, options: Options) -> str | None:
        match = self._LETTER.fullmatch(text)
        if match and (not options or match.group(1).upper() in dict(options)):
            return f"({match.group(1).upper()})"
        if match := self._LABELLED.fullmatch(text):
            letter, rest = match.group(1).upper(), match.group(2).casefold()
            return f"({letter})" if (letter, rest) in _folded(options) else None
        if any(option == text.casefold() for _, option in _folded(options)):
            return _only_letter(options, text.casefold())  # None when several options share it
        return text.casefold()


class DyckScorer(Scorer):
    """Bracket sequences (dyck_languages): compared with all whitespace removed.

    A string or a list of strings (joined) is read; anything but brackets is not an answer.
    """

    name = "dyck"
    BRACKETS = frozenset("()[]{}<>")

    def fits(self, example: Example) -> bool:
        """The target is brackets and spaces only, with at least one bracket."""
        target = "".join(example.target.split())
        return bool(target) and set(target) <= self.BRACKETS

    def normalise(self, value: object, example: Example) -> str | None:
        """The brackets with whitespace removed, or None for other characters."""
        text = _joined(value) if isinstance(value, list | tuple) else _capped_str(value)
        if text is None:
            return None
        text = "".join(text.split())
        return text if set(text) <= self.BRACKETS else None


class NumericScorer(Scorer):
    """Number answers (chinese_remainder_theorem, multistep_arithmetic_two, object_counting).

    Ints, finite floats and decimal strings compare as numbers: ``"14687"``, ``14687``,
    ``14687.0`` and ``"+14687.00"`` are the same answer. No exponents, commas or words.
    """

    name = "numeric"

    def fits(self, example: Example) -> bool:
        """The target is a decimal number."""
        return _NUMBER.fullmatch(example.target.strip()) is not None

    def normalise(self, value: object, example: Example) -> str | None:
        """The number in shortest decimal form, integral values without a point."""
        number = _as_decimal(value)
        if number is None:
            return None
        if number == number.to_integral_value():
            return str(int(number))
        # Trailing zeros are trimmed by hand: Decimal.normalize would round to 28 digits.
        return format(number, "f").rstrip("0")


class ScheduleScorer(Scorer):
    """Meeting slots (schedule_meeting): ``"HH:MM - HH:MM"`` or ``"No time slot works."``.

    Times are zero-padded and the dash spaced, so ``"9:00-10:30"``, ``"09:00 to 10:30"`` and
    ``["09:00", "10:30"]`` are one answer. None, ``""``, ``[]`` and phrasings such as
    ``"no time slot works"`` or ``"None"`` (any case, trailing dot ignored) mean no slot.
    """

    name = "schedule"
    NO_SLOT = "No time slot works."
    _NO_SLOT_PHRASES = frozenset(
        {"", "none", "no", "n/a", "no slot", "no slot works", "no time slot",
         "no time slot works", "no time slot available", "no available time slot"}
    )  # fmt: skip
    _TIME = re.compile(r"(\d{1,2}):(\d{2})")
    _RANGE = re.compile(r"(\d{1,2}:\d{2})\s*(?:-|\u2013|\u2014|to)\s*(\d{1,2}:\d{2})")

    def fits(self, example: Example) -> bool:
        """The target is a time range or the no-slot sentence, as BBH writes them."""
        target = example.target.strip()
        return target == self.NO_SLOT or self._RANGE.fullmatch(target) is not None

    def normalise(self, value: object, example: Example) -> str | None:
        """``"HH:MM - HH:MM"``, the no-slot sentence, or None."""
        if value is None:
            return self.NO_SLOT
        if isinstance(value, list | tuple):
            return self._from_items(value)
        return self._from_text(value)

    def _from_text(self, value: object) -> str | None:
        text = _capped_str(value)
        if text is None:
            return None
        text = _collapse(text)
        if text.casefold().rstrip(".!") in self._NO_SLOT_PHRASES:
            return self.NO_SLOT
        match = self._RANGE.fullmatch(text)
        return self._slot(match.group(1), match.group(2)) if match else None

    def _from_items(self, items: list[object] | tuple[object, ...]) -> str | None:
        if not items:
            return self.NO_SLOT
        if len(items) == 1:
            return self._from_text(items[0])  # one level only: [["09:00", "10:00"]] is refused
        if len(items) == 2 and isinstance(items[0], str) and isinstance(items[1], str):
            return self._slot(items[0], items[1])
        return None

    def _slot(self, start: str, end: str) -> str | None:
        times = [self._clock(start.strip()), self._clock(end.strip())]
        return None if None in times else f"{times[0]} - {times[1]}"

    def _clock(self, text: str) -> str | None:
        match = self._TIME.fullmatch(text)
        if match is None or int(match.group(1)) > 24 or int(match.group(2)) > 59:
            return None
        return f"{int(match.group(1)):02d}:{match.group(2)}"


class ShapeScorer(Scorer):
    """Array shapes (matrixshapes): targets like ``(2,3,4)``.

    A list or tuple of ints, or the text ``"(2, 3, 4)"``/``"[2, 3, 4]"`` (spaces and a
    trailing comma ignored) are one answer: tools return shapes as tuples, which JSON turns
    into lists, so comparing as text would never match.
    """

    name = "shape"
    _SHAPE = re.compile(r"[(\[](\d{1,12}(?:,\d{1,12}){0,63}),?[)\]]")

    def fits(self, example: Example) -> bool:
        """The target is a parenthesised, comma-separated list of dimensions."""
        return re.fullmatch(r"\(\d+(?:,\d+)*\)", example.target.strip()) is not None

    def normalise(self, value: object, example: Example) -> str | None:
        """``"(a,b,c)"``, or None."""
        if isinstance(value, list | tuple):
            if not 0 < len(value) <= 64:
                return None
            dims = [d for d in value if isinstance(d, int) and not isinstance(d, bool)]
            ok = len(dims) == len(value) and all(0 <= d < 10**12 for d in dims)
            return "(" + ",".join(str(d) for d in dims) + ")" if ok else None
        text = _capped_str(value)
        if text is None:
            return None
        match = self._SHAPE.fullmatch("".join(text.split()))
        if match is None:
            return None
        return "(" + ",".join(str(int(d)) for d in match.group(1).split(",")) + ")"


@lru_cache(maxsize=4096)
def parse_options(question: str) -> Options:
    """The lettered options after the last ``Options:`` line: ``(("A", "text"), ...)``.

    Dash-listed options ("- Yes") are not lettered and give ``()``.
    """
    _, marker, block = question.rpartition("Options:")
    if not marker:
        return ()
    found = (_OPTION_LINE.fullmatch(line.strip()) for line in block.splitlines())
    return tuple((m.group(1), _collapse(m.group(2))) for m in found if m)


ORDER: tuple[Scorer, ...] = (
    DyckScorer(),
    MultipleChoiceScorer(),
    NumericScorer(),
    ScheduleScorer(),
    ShapeScorer(),
    ExactScorer(),
)
SCORERS: Mapping[str, Scorer] = MappingProxyType({scorer.name: scorer for scorer in ORDER})


def choose_scorer(task: Task) -> Scorer:
    """The first family, in the order dyck, multiple_choice, numeric, schedule, shape, exact,
    whose shape all the task's targets fit.

    The order runs from the narrowest shape to the widest: bracket-only targets could be
    nothing else; ``(A)`` targets need options in the input; numbers and time slots are
    narrower than free text; ``exact`` takes every target and so comes last.
    """
    return next(scorer for scorer in ORDER if scorer.fits_task(task))


def get_scorer(name: str) -> Scorer:
    """The scorer registered as ``name``.

    Raises:
        InvalidRequest: no scorer has that name (the message lists the known ones).
    """
    try:
        return SCORERS[name]
    except KeyError:
        known = ", ".join(SCORERS)
        raise InvalidRequest(f"unknown scorer {name!r}; known scorers: {known}") from None


_BOOLEAN_VOCABULARIES: dict[str, tuple[str, str]] = {
    word: pair for pair in (("true", "false"), ("yes", "no"), ("valid", "invalid")) for word in pair
}


def _collapse(text: str) -> str:
    return " ".join(text.split())


@lru_cache(maxsize=4096)
def _folded(options: Options) -> Options:
    return tuple((letter, text.casefold()) for letter, text in options)


def _only_letter(options: Options, text: str) -> str | None:
    named = [letter for letter, option in _folded(options) if option == text]
    return f"({named[0]})" if len(named) == 1 else None


_NUMBER_WORDS = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen", "twenty",
)  # fmt: skip


def _option_number(text: str) -> int | None:
    folded = text.casefold()
    if folded.isascii() and folded.isdigit() and len(folded) <= 12:
        return int(folded)
    return _NUMBER_WORDS.index(folded) if folded in _NUMBER_WORDS else None


def _capped_str(value: object) -> str | None:
    return value if isinstance(value, str) and len(value) <= MAX_ANSWER_CHARS else None


def _scalar_text(value: object) -> str | None:
    """Text of a str, bool, int or finite float; None for anything else or oversize."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value) if value.bit_length() <= MAX_INT_BITS else None
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return str(int(value)) if value.is_integer() else repr(value)
    return _capped_str(value)


def _joined(value: list[object] | tuple[object, ...]) -> str | None:
    """A flat list's items as text joined by single spaces; None if any item is not a scalar."""
    if len(value) > MAX_ANSWER_ITEMS:
        return None
    parts, size = [], 0
    for item in value:
        text = _scalar_text(item)
        size += len(text or "") + 1
        if text is None or size > MAX_ANSWER_CHARS + 1:
            return None
        parts.append(text)
    return " ".join(parts)


def _as_decimal(value: object) -> Decimal | None:
    if isinstance(value, float | int) and not isinstance(value, bool):
        text = _scalar_text(value)  # finite and of bounded size, or None
        return Decimal(text) if text is not None else None
    if isinstance(value, str) and len(value) <= MAX_NUMBER_CHARS:
        text = value.strip()
        return Decimal(text) if _NUMBER.fullmatch(text) else None
    return None
