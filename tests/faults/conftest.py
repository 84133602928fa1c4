"""Fixtures of the fault-injection suite.

The servers, backends and model endpoint double are the integration suite's own
(``start_api``, ``make_backend``, ``ModelServer``); this folder adds the faults: a process
or container killed mid-call, a Docker engine restarted under load, an orchestrator killed
mid-``MakeTool``, a misbehaving model endpoint, an exhausted pool and a full disk.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from orchestrator.latm.tasks import load_task
from orchestrator.models import MeteredModel, ModelAdapter
from tests.faults.endpoint import FaultyEndpoint
from tests.integration.conftest import (
    no_container_left_behind,  # noqa: F401 - the session check applies here too
)
from tests.integration.test_api import (
    BBH,
    Api,
    start_api,  # noqa: F401 - registers the start_api fixture
)


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


def use_maker(api: Api, model: ModelAdapter) -> None:
    """Give a running server's engine ``model`` as its maker (metered like its own)."""
    engine = api.server.engine
    engine.maker_model = MeteredModel(model, engine.ledger)


async def eventually(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Wait until ``check()`` holds; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"after {timeout_s:g} s: {what}")
        await asyncio.sleep(0.05)


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (by walking ``/proc``)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier}
        found |= frontier
    return found


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@pytest.fixture
def endpoint() -> Iterator[FaultyEndpoint]:
    """A started :class:`FaultyEndpoint` on loopback, stopped after the test."""
    with FaultyEndpoint() as server:
        yield server
