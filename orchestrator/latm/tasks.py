"""Tasks: solved examples of one kind of question, loaded from BBH JSON or JSONL, and split.

The paper's split (Cai et al., 2023) takes examples 0-2 as the maker's demos, 5-7 as its
validation cases and 10 onward as the test set; :class:`Split` holds that default and parses
other splits written as ``"0-2/5-7/10"``. Task files are data, not code: they are parsed as
JSON only, with a size cap, and every malformed case is an :class:`InvalidRequest` that names
the file and the line or item.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from orchestrator.errors import InvalidRequest

MAX_TASK_FILE_BYTES = 50 * 1024 * 1024
JSONL_SUFFIXES = frozenset({".jsonl", ".ndjson"})


@dataclass(frozen=True)
class Example:
    """One solved question: its position in the task, the question and the expected answer."""

    index: int
    input: str
    target: str


@dataclass(frozen=True)
class SuiteExample(Example):
    """A case of a tool's regression suite. An open case has no known answer: it must run
    and not give ``wrong``. A case with ``call`` is run with that call (entrypoint
    arguments, as reported), not with one the model writes."""

    open: bool = False
    wrong: str | None = None
    call: str | None = None


@dataclass(frozen=True)
class Split:
    """Which examples serve as demos, which as validation cases, where the test set starts.

    The test set is every example from ``test_start`` on. Parts never overlap and the test
    set starts after every demo and validation index, so no test item was seen by the maker.
    """

    demos: tuple[int, ...] = (0, 1, 2)
    validation: tuple[int, ...] = (5, 6, 7)
    test_start: int = 10

    def __post_init__(self) -> None:
        _check_indices("demos", self.demos, allow_empty=False)
        _check_indices("validation", self.validation, allow_empty=True)
        overlap = sorted(set(self.demos) & set(self.validation))
        if overlap:
            raise InvalidRequest(f"split {self}: demos and validation share indices {overlap}")
        last = max(self.demos + self.validation)
        if self.test_start <= last:
            raise InvalidRequest(
                f"split {self}: the test part must start after index {last}, "
                f"not at {self.test_start}"
            )

    @classmethod
    def parse(cls, text: str) -> Split:
        """Parse ``"DEMOS/VALIDATION/TEST_START"``, e.g. ``"0-2/5-7/10"`` or ``"0,1,2/5-7/10"``.

        Demos and validation are comma lists of indices or inclusive ranges ``a-b``; the
        test part is one index (``"10"`` or ``"10-"``): the test set runs from it to the end.

        Raises:
            InvalidRequest: the text is malformed or the parts overlap.
        """
        parts = text.strip().split("/")
        if len(parts) != 3:
            raise InvalidRequest(
                f"split {text!r}: expected DEMOS/VALIDATION/TEST_START, e.g. '0-2/5-7/10'"
            )
        demos = _parse_indices(parts[0], text)
        validation = _parse_indices(parts[1], text) if parts[1].strip() else ()
        start = parts[2].strip().removesuffix("-")
        if not start.isdigit():
            raise InvalidRequest(f"split {text!r}: test start {parts[2]!r} is not an index")
        return cls(demos=demos, validation=validation, test_start=int(start))

    def __str__(self) -> str:
        return f"{_format_indices(self.demos)}/{_format_indices(self.validation)}/{self.test_start}"


@dataclass(frozen=True)
class TaskSplit:
    """A task's examples divided by a :class:`Split`."""

    demos: tuple[Example, ...]
    validation: tuple[Example, ...]
    test: tuple[Example, ...]


@dataclass(frozen=True)
class Task:
    """A named task: its solved examples in file order, and where they came from."""

    name: str
    examples: tuple[Example, ...]
    source: str

    def split(self, split: Split | None = None) -> TaskSplit:
        """Divide the examples into demos, validation cases and the test set.

        Raises:
            InvalidRequest: the task has too few examples for the split (at least one test
                item is needed).
        """
        split = split or Split()
        needed = split.test_start + 1
        if len(self.examples) < needed:
            raise InvalidRequest(
                f"task {self.name} has {len(self.examples)} examples; split {split} "
                f"needs at least {needed}"
            )
        return TaskSplit(
            demos=tuple(self.examples[i] for i in split.demos),
            validation=tuple(self.examples[i] for i in split.validation),
            test=self.examples[split.test_start :],
        )

    def varied(self, split: Split | None = None) -> Split:
        """``split`` with demos whose answers differ where the examples allow.

        Demos that share one answer let a constant function solve them (three 'No' demos:
        ``return "No"``). In demo order, a demo whose answer an earlier demo has is swapped
        for the first spare example with an answer no demo has; a spare is an example
        before the test set that is neither a demo nor a validation case, so the
        validation cases stay unseen and the test set unchanged. Demos stay in file order.
        """
        split = split or Split()
        demos = list(split.demos)
        taken = set(demos) | set(split.validation)
        end = min(split.test_start, len(self.examples))
        spares = [i for i in range(end) if i not in taken]
        for position in range(len(demos)):
            answers = [_answer(self.examples[i]) for i in demos]
            if answers.index(answers[position]) == position:
                continue  # the first demo with this answer
            new = next((i for i in spares if _answer(self.examples[i]) not in answers), None)
            if new is None:
                break  # every spare's answer is a demo's already
            spares.remove(new)
            demos[position] = new
        return replace(split, demos=tuple(sorted(demos)))


def _answer(example: Example) -> str:
    return example.target.strip().casefold()


def load_task(path: Path, name: str | None = None) -> Task:
    """Load a task from a BBH JSON file (``{"examples": [...]}`` or a bare list) or JSONL.

    JSONL (``.jsonl``/``.ndjson``) holds one ``{"input": ..., "target": ...}`` object per
    line; blank lines are skipped. A non-string target (a number) is kept as ``str(target)``.
    The name defaults to the file's stem.

    Raises:
        InvalidRequest: the file is missing, too large, not valid JSON, holds no examples, or
            an item lacks a string input or a scalar target (the message names the item).
    """
    text = _read_capped(path)
    if path.suffix.lower() in JSONL_SUFFIXES:
        examples = _parse_jsonl(text, path)
    else:
        examples = _parse_json(text, path)
    if not examples:
        raise InvalidRequest(f"{path}: holds no examples")
    return Task(name=name or path.stem, examples=tuple(examples), source=str(path))


def task_from_examples(name: str, pairs: list[tuple[str, str]]) -> Task:
    """Build a task from ``(input, target)`` pairs given in code.

    Raises:
        InvalidRequest: no pairs, or a pair that is not two strings.
    """
    if not pairs:
        raise InvalidRequest(f"task {name}: no examples given")
    examples = []
    for index, pair in enumerate(pairs):
        if len(pair) != 2 or not all(isinstance(part, str) for part in pair):
            raise InvalidRequest(f"task {name}: example {index} is not an (input, target) pair")
        examples.append(Example(index=index, input=pair[0], target=pair[1]))
    return Task(name=name, examples=tuple(examples), source="<examples given in code>")


def _check_indices(part: str, indices: tuple[int, ...], *, allow_empty: bool) -> None:
    if not indices and not allow_empty:
        raise InvalidRequest(f"split: {part} must name at least one example")
    if any(i < 0 for i in indices):
        raise InvalidRequest(f"split: {part} has a negative index: {indices}")
    if len(set(indices)) != len(indices):
        raise InvalidRequest(f"split: {part} repeats an index: {indices}")


def _parse_indices(text: str, whole: str) -> tuple[int, ...]:
    indices: list[int] = []
    for item in text.split(","):
        low, dash, high = item.strip().partition("-")
        if not low.isdigit() or (dash and not high.isdigit()):
            raise InvalidRequest(f"split {whole!r}: {item.strip()!r} is not an index or a-b range")
        first, last = int(low), int(high) if dash else int(low)
        if last < first:
            raise InvalidRequest(f"split {whole!r}: range {item.strip()!r} runs backwards")
        indices.extend(range(first, last + 1))
    return tuple(indices)


def _format_indices(indices: tuple[int, ...]) -> str:
    if indices and list(indices) == list(range(indices[0], indices[-1] + 1)) and len(indices) > 1:
        return f"{indices[0]}-{indices[-1]}"
    return ",".join(str(i) for i in indices)


def _read_capped(path: Path) -> str:
    try:
        size = path.stat().st_size
        if size > MAX_TASK_FILE_BYTES:
            raise InvalidRequest(
                f"{path}: {size} bytes is over the {MAX_TASK_FILE_BYTES} byte limit for a task"
            )
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidRequest(f"{path}: no such task file") from None
    except UnicodeDecodeError as error:
        raise InvalidRequest(f"{path}: not UTF-8 text ({error.reason})") from None
    except OSError as error:
        raise InvalidRequest(f"{path}: cannot read: {error.strerror or error}") from None


def _parse_json(text: str, path: Path) -> list[Example]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        hint = " (one object per line? name the file .jsonl)" if "Extra data" in error.msg else ""
        raise InvalidRequest(
            f"{path}: invalid JSON at line {error.lineno}: {error.msg}{hint}"
        ) from None
    items = document.get("examples") if isinstance(document, dict) else document
    if not isinstance(items, list):
        raise InvalidRequest(f'{path}: expected {{"examples": [...]}} or a list of examples')
    return [_example(item, index, f"{path}: item {index}") for index, item in enumerate(items)]


def _parse_jsonl(text: str, path: Path) -> list[Example]:
    examples: list[Example] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}: line {number}"
        try:
            item = json.loads(line)
        except json.JSONDecodeError as error:
            raise InvalidRequest(f"{where}: invalid JSON: {error.msg}") from None
        examples.append(_example(item, len(examples), where))
    return examples


def _example(item: Any, index: int, where: str) -> Example:
    if not isinstance(item, dict):
        raise InvalidRequest(f"{where}: expected an object with input and target")
    question, target = item.get("input"), item.get("target")
    if not isinstance(question, str):
        raise InvalidRequest(f"{where}: missing or non-string 'input'")
    # Some datasets give numeric targets; a list of answers or null is not a target.
    if not isinstance(target, str | int | float):
        raise InvalidRequest(f"{where}: missing or non-scalar 'target' ({type(target).__name__})")
    return Example(index=index, input=question, target=str(target))
