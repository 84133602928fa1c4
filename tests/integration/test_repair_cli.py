"""``latm report`` and ``latm repair`` as separate processes sharing one registry file: a
solved request reported wrong by its id, a right answer reported by tool and question, a
repair refused (nothing changes) and one published."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from orchestrator.latm.tasks import Example, load_task
from tests.support.cli import latm
from tests.support.maker import BBH, SORT, calls, propose, scripted

pytestmark = pytest.mark.integration

QUESTION = "Sort the following words alphabetically: List: Banana apple cherry"
RIGHT = "apple Banana cherry"
FIXED = SORT.replace("sorted(words)", "sorted(words, key=str.lower)")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "LATM_DATABASE_URL": f"sqlite:///{tmp_path / 'registry.db'}",
        "LATM_BACKEND": "process",
    }


def test_report_then_repair_in_new_processes(env: dict[str, str], tmp_path: Path) -> None:
    task = load_task(BBH / "word_sorting.json")
    held = list(task.split().validation)
    maker = scripted(tmp_path, "maker", [propose(task), calls(held)])
    assert latm(env, "make", str(BBH / "word_sorting.json"), "--maker", maker).returncode == 0

    user = scripted(tmp_path, "user", [f"ans = sort_words({QUESTION!r})"])
    solved = json.loads(
        latm(env, "solve", QUESTION, "--tool", "sort_words", "--user", user, "--json").stdout
    )
    assert solved["answer"] == "Banana apple cherry"

    wrong = latm(env, "report", "--request", solved["request_id"], "--wrong", "--json")
    assert wrong.returncode == 0, wrong.stderr
    kept = json.loads(wrong.stdout)
    assert (kept["tool"], kept["wrong"], kept["suite"]) == ("sort_words", "Banana apple cherry", 4)
    missing = latm(env, "report", "--request", "nope", "--answer", RIGHT)
    assert missing.returncode == 1
    assert "no request 'nope'" in missing.stderr
    named = latm(env, "report", "--tool", "sort_words", "--question", QUESTION, "--answer", RIGHT)
    assert named.returncode == 0, named.stderr
    assert "5 cases" in named.stdout

    shown = [*task.split().demos, Example(0, QUESTION, RIGHT)]
    # First a tool that still gives the wrong answer: refused, version 1 stays.
    same = scripted(tmp_path, "same", [propose_with(SORT, shown)])
    refused = latm(env, "repair", "sort_words", "--maker", same, "--attempts", "1")
    assert refused.returncode == 1
    assert "version 1 stays" in refused.stderr
    fixer = scripted(tmp_path, "fixer", [propose_with(FIXED, shown), calls(held)])
    repaired = latm(env, "repair", "sort_words", "--maker", fixer, "--json")
    assert repaired.returncode == 0, repaired.stderr
    result = json.loads(repaired.stdout)
    assert (result["published"], result["version"], result["failing"], result["suite"]) == (
        True,
        2,
        1,
        4,
    )
    assert "propose" in repaired.stderr


def propose_with(source: str, examples: list[Example]) -> str:
    return f"```python\n{source}```\n{calls(examples)}"
