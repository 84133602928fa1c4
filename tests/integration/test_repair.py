"""Regression suites and repairs, deterministically: scripted models, a real sandbox, a
real registry. The tool made first sorts case-sensitively; a reported case says that
"Banana" sorts after "apple"."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import PreconditionFailed, RequestNotFound
from orchestrator.latm.engine import Engine
from orchestrator.latm.outcomes import Report
from orchestrator.latm.tasks import Example, Task
from orchestrator.models import open_model
from orchestrator.registry import ToolRegistry
from orchestrator.sandboxes import SandboxBackend
from tests.integration.test_engine import backend, registry, task
from tests.support.maker import SORT, calls, propose, scripted

pytestmark = pytest.mark.integration
__all__ = ["backend", "registry", "task"]  # the fixtures test_engine defines

QUESTION = "Sort the following words alphabetically: List: Banana apple cherry"
RIGHT = "apple Banana cherry"
FIXED = SORT.replace("sorted(words)", "sorted(words, key=str.lower)")
# Fixes the reported case, and breaks the held-out lists of 11 to 19 words.
BREAKS = FIXED.replace(
    '    return " ".join(sorted(words, key=str.lower))\n',
    "    words = sorted(words, key=str.lower)\n"
    "    if 10 < len(words) < 20:\n"
    "        words.reverse()\n"
    '    return " ".join(words)\n',
)


def engine(
    backend: SandboxBackend,
    registry: ToolRegistry,
    tmp_path: Path,
    maker: list[Any],
    user: list[Any] | None = None,
) -> Engine:
    return Engine(
        backend=backend,
        registry=registry,
        user=open_model(scripted(tmp_path, "user", user or [])),
        maker=open_model(scripted(tmp_path, "maker", maker)),
        max_attempts=1,
        maker_candidates=1,
    )


def repair_script(task: Task, source: str) -> list[Any]:
    """The maker's proposal (the tool, a call per usage demo and per failing case) and its
    calls for the held-out cases, which the proposing prompt must not show."""
    held = list(task.split().validation)
    shown = [*task.split().demos, Example(0, QUESTION, RIGHT)]
    return [
        {
            "response": propose_all(source, shown),
            "expect": [QUESTION, RIGHT, "sorted(words)"],
            "expect_regex": f"(?s)^(?!.*{re.escape(held[0].input[-30:])})",
        },
        calls(held),
    ]


def propose_all(source: str, examples: list[Example]) -> str:
    return f"```python\n{source}```\n{calls(examples)}"


async def reported(
    task: Task, backend: SandboxBackend, registry: ToolRegistry, tmp_path: Path, fix: str
) -> Engine:
    """An engine whose maker made sort_words, with QUESTION reported, and ``fix`` next."""
    steps = [propose(task), calls(list(task.split().validation)), *repair_script(task, fix)]
    the_engine = engine(backend, registry, tmp_path, steps)
    assert (await the_engine.make("acme", task)).card is not None
    report = Report(tool="sort_words", question=QUESTION, answer=RIGHT)
    kept = await the_engine.report("acme", report)
    assert (kept.case.source, kept.case.version, kept.suite) == ("reported", 1, 4)
    return the_engine


async def test_a_repair_fixes_a_reported_case_and_keeps_the_old_ones(
    task: Task, backend: SandboxBackend, registry: ToolRegistry, tmp_path: Path
) -> None:
    the_engine = await reported(task, backend, registry, tmp_path, FIXED)
    result = await the_engine.repair("acme", "sort_words")
    assert result.reason is None
    card = result.card
    assert card is not None
    assert (card.name, card.version, card.source) == ("sort_words", 2, FIXED)
    assert (card.verification.passed, card.verification.total) == (4, 4)
    assert card.provenance.model_extra is not None
    assert card.provenance.model_extra["repaired_from"] == 1
    assert registry.get("acme", "sort_words").version == 2
    assert registry.usage("acme", "sort_words")["by_role"]["maker"]["calls"] == 2  # make, repair
    with pytest.raises(PreconditionFailed, match="nothing to repair"):
        await the_engine.repair("acme", "sort_words")


async def test_a_repair_that_breaks_an_old_case_is_refused_and_nothing_changes(
    task: Task, backend: SandboxBackend, registry: ToolRegistry, tmp_path: Path
) -> None:
    the_engine = await reported(task, backend, registry, tmp_path, BREAKS)
    result = await the_engine.repair("acme", "sort_words")
    assert result.card is None
    assert result.reason is not None
    assert "version 1 stays" in result.reason
    assert "Question 1: expected" in result.reason
    assert registry.get("acme", "sort_words").source == SORT
    assert len(registry.list("acme")) == 1
    assert registry.list("acme")[0].version == 1
    assert len(the_engine.cases.suite("acme", "sort_words")) == 4


async def test_a_solved_request_is_reported_wrong_by_its_id(
    task: Task, backend: SandboxBackend, registry: ToolRegistry, tmp_path: Path
) -> None:
    held = list(task.split().validation)
    shown = [*task.split().demos, Example(0, QUESTION, "")]
    fix = {"response": propose_all(FIXED, shown), "expect": ["'Banana apple cherry' is wrong"]}
    steps = [propose(task), calls(held), fix, calls(held)]
    user = [f"ans = sort_words({QUESTION!r})"]
    the_engine = engine(backend, registry, tmp_path, steps, user)
    assert (await the_engine.make("acme", task)).card is not None
    solved = await the_engine.solve("acme", QUESTION, tool="sort_words")
    assert solved.answer == "Banana apple cherry"
    report = Report(request_id=solved.request_id, wrong=True)
    case = (await the_engine.report("acme", report)).case
    assert (case.input, case.wrong, case.expected) == (QUESTION, "Banana apple cherry", None)
    assert case.request_id == solved.request_id
    with pytest.raises(RequestNotFound):
        await the_engine.report("acme", Report(request_id="nope", answer=RIGHT))
    with pytest.raises(RequestNotFound):
        await the_engine.report("other", Report(request_id=solved.request_id, answer=RIGHT))
    # Only a wrong answer is known: the repair must run and give another one.
    result = await the_engine.repair("acme", "sort_words")
    assert result.card is not None
    assert (result.failing, result.card.version, result.card.verification.total) == (1, 2, 3)


async def test_an_automatic_repair_starts_when_open_cases_reach_the_setting(
    task: Task, backend: SandboxBackend, registry: ToolRegistry, tmp_path: Path
) -> None:
    steps = [propose(task), calls(list(task.split().validation)), *repair_script(task, FIXED)]
    the_engine = engine(backend, registry, tmp_path, steps)
    the_engine.repair_after = 1
    assert (await the_engine.make("acme", task)).card is not None
    report = Report(tool="sort_words", question=QUESTION, answer=RIGHT)
    assert (await the_engine.report("acme", report)).repairing is True
    running = the_engine.running_repair("acme", "sort_words")
    assert running is not None
    result = await running
    assert result.card is not None
    assert registry.get("acme", "sort_words").source == FIXED
