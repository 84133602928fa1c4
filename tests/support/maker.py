"""Scripted models and BIG-Bench Hard's ``word_sorting``: what a scripted maker replies
to make the ``sort_words`` tool."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from orchestrator.latm.tasks import Example, Task, load_task

# The paper's tasks, in the checkout next to this one.
BBH = Path(__file__).resolve().parents[3] / "shared" / "bbh"
SORT = '''\
def sort_words(question: str) -> str:
    """Sort the words listed after 'List:' alphabetically; returns them space-separated."""
    words = question.split("List:", 1)[-1].split()
    return " ".join(sorted(words))
'''


def scripted(folder: Path, name: str, steps: list[Any]) -> str:
    """The spec of a scripted model replying ``steps`` in turn (kept in ``folder``)."""
    path = folder / f"{name}.json"
    path.write_text(json.dumps(steps))
    return f"scripted:{path}"


def calls(examples: list[Example]) -> str:
    """A maker's reply calling ``sort_words`` once per example."""
    return "\n".join(f"```python\nans = sort_words({e.input!r})\n```" for e in examples)


def propose(task: Task, source: str = SORT) -> str:
    """A maker's proposal: ``source``, then a call per demo of ``task``."""
    return f"```python\n{source}```\n{calls(list(task.split().demos))}"


def word_sorting(count: int = 12) -> list[tuple[str, str]]:
    """The first ``count`` word_sorting examples of BIG-Bench Hard, as (question, answer)."""
    task = load_task(BBH / "word_sorting.json")
    return [(e.input, e.target) for e in task.examples[:count]]


def maker_script(source: str) -> list[str]:
    """A maker's two replies for word_sorting: ``source`` with a call per demo, then a call
    per validation question (the paper's split: demos 0-2, validation 5-7)."""
    examples = word_sorting()

    def calls(questions: list[tuple[str, str]]) -> str:
        return "\n".join(f"```python\nans = sort_words({q!r})\n```" for q, _ in questions)

    return [f"```python\n{source}```\n{calls(examples[0:3])}", calls(examples[5:8])]
