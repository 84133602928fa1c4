"""``latm make``, ``latm solve``, ``latm tools`` and ``latm bench`` as separate processes
sharing one registry file: the registry survives restarts, cards round-trip as JSON."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from orchestrator.latm.tasks import load_task
from tests.support.cli import latm
from tests.support.maker import BBH, calls, propose, scripted

pytestmark = pytest.mark.integration


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "LATM_DATABASE_URL": f"sqlite:///{tmp_path / 'registry.db'}",
        "LATM_BACKEND": "process",
    }


def test_make_then_solve_in_new_processes_then_export_and_import(
    env: dict[str, str], tmp_path: Path
) -> None:
    task = load_task(BBH / "word_sorting.json")
    maker = scripted(tmp_path, "maker", [propose(task), calls(list(task.split().validation))])
    made = latm(env, "make", str(BBH / "word_sorting.json"), "--maker", maker, "--json")
    assert made.returncode == 0, made.stderr
    report = json.loads(made.stdout)
    assert (report["published"], report["tool"], report["version"]) == (True, "sort_words", 1)
    # A scripted replay makes one candidate, kept, which passed every held-out case.
    [candidate] = report["candidates"]
    assert candidate["kept"] is True
    assert candidate["passed"] == candidate["total"] > 0
    assert "propose" in made.stderr
    assert "verify" in made.stderr

    question = task.split().test[3]
    user = scripted(tmp_path, "user", [f"ans = sort_words({question.input!r})"])
    solved = latm(env, "solve", question.input, "--tool", "sort_words", "--user", user, "--json")
    assert solved.returncode == 0, solved.stderr
    answer = json.loads(solved.stdout)
    assert answer["answer"] == question.target
    assert answer["tool"] == "sort_words"
    assert answer["usage"]["user"]["prompt_tokens"] > 0

    listed = json.loads(latm(env, "tools", "list", "--json").stdout)
    assert [(t["name"], t["version"], t["uses"]) for t in listed] == [("sort_words", 1, 2)]

    exported = latm(env, "tools", "export", "sort_words")
    card = json.loads(exported.stdout)
    assert card["format"] == "latm.tool/v1"
    imported = latm(env, "tools", "--tenant", "globex", "import", "-", stdin=exported.stdout)
    # Proven again in globex's sandbox: its verification is the platform's own record of
    # the demos, its provenance the exporter's claim.
    assert imported.stdout.strip() == "sort_words v1 (usage demos proven 3/3 in the sandbox)"
    again = json.loads(latm(env, "tools", "--tenant", "globex", "export", "sort_words").stdout)
    own = ("version", "verification", "provenance")
    assert {k: v for k, v in again.items() if k not in own} == {
        k: v for k, v in card.items() if k not in own
    }
    assert again["verification"]["passed"] == again["verification"]["total"] == 3
    assert again["provenance"] == {**card["provenance"], "claimed": True}

    tampered = dict(card, source=card["source"].replace("sorted(words)", "words"))
    refused = latm(env, "tools", "import", "-", stdin=json.dumps(tampered))
    assert refused.returncode == 1
    assert "does not match provenance.sha256" in refused.stderr

    assert latm(env, "tools", "rm", "sort_words").returncode == 0
    gone = latm(env, "tools", "show", "sort_words")
    assert gone.returncode == 1
    assert "sort_words" in gone.stderr


def test_solve_without_tools_answers_directly_with_json(
    env: dict[str, str], tmp_path: Path
) -> None:
    user = scripted(tmp_path, "user", ["Six sevens... So the answer is 42."])
    solved = latm(env, "solve", "What is six times seven?", "--user", user, "--json")
    assert solved.returncode == 0, solved.stderr
    answer = json.loads(solved.stdout)
    assert (answer["answer"], answer["tool"], answer["route"]) == ("42", None, "direct")


def test_bench_reports_latm_and_the_baseline(env: dict[str, str], tmp_path: Path) -> None:
    task = load_task(BBH / "word_sorting.json")
    test = list(task.split().test)[:2]
    maker = scripted(tmp_path, "maker", [propose(task), calls(list(task.split().validation))])
    user = scripted(
        tmp_path,
        "user",
        [f"ans = sort_words({e.input!r})" for e in test]
        + [f"So the answer is {test[0].target}.", "So the answer is nothing."],
    )
    out = tmp_path / "bench.json"
    done = latm(
        env, "bench", str(BBH / "word_sorting.json"), "--maker", maker, "--user", user,
        "--limit", "2", "--json", str(out),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (report,) = json.loads(out.read_text())["tasks"]
    assert report["tool_made"] is True
    assert report["latm"]["accuracy"] == 100.0
    assert report["cot"]["accuracy"] == 50.0
    assert report["cot"]["misses"][0]["got"] == "nothing"
    assert "LATM vs chain of thought" in done.stdout
    assert report["latm"]["model"] == user  # no user check for a replay: the user answered
    assert report["latm"]["escalated"] == 0


def test_a_model_failing_in_one_task_ends_that_task_only(
    env: dict[str, str], tmp_path: Path
) -> None:
    """The maker's script runs out in the second task: the first task's results stay, the
    second says why it stopped, and the exit code says a task did not finish."""
    task = load_task(BBH / "word_sorting.json")
    test = list(task.split().test)[:2]
    maker = scripted(tmp_path, "maker", [propose(task), calls(list(task.split().validation))])
    user = scripted(tmp_path, "user", [f"ans = sort_words({e.input!r})" for e in test])
    out = tmp_path / "bench.json"
    done = latm(
        env, "bench", str(BBH / "word_sorting.json"), str(BBH / "dyck_languages.json"),
        "--maker", maker, "--user", user, "--limit", "2", "--baseline", "none",
        "--json", str(out),
    )  # fmt: skip
    assert done.returncode == 1
    first, second = json.loads(out.read_text())["tasks"]
    assert (first["tool_made"], first["latm"]["accuracy"], first["error"]) == (True, 100.0, None)
    assert (second["task"], second["tool_made"]) == ("dyck_languages", False)
    assert second["error"].startswith("ScriptExhausted")
    assert "dyck_languages: ScriptExhausted" in " ".join(done.stderr.split())
