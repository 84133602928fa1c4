"""What a newcomer to ``latm`` trips on: a shared flag (``--tenant``, ``--json``, ``-v``) means
the same on either side of the command's name."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.cli import build_parser, tools_cmd


def parsed(*argv: str) -> dict[str, Any]:
    return vars(build_parser().parse_args(argv))


def refused(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(argv)
    assert exited.value.code == 2
    return capsys.readouterr().err


# --- shared flags ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("--tenant T tools import card.json", "tools import card.json --tenant T"),
        ("--tenant T tools import card.json", "tools --tenant T import card.json"),
        ("--tenant T --json tools list", "tools list --tenant T --json"),
        ("--tenant T tools rm sort_words", "tools rm sort_words --tenant T"),
        ("--json --tenant T solve 2+2?", "solve 2+2? --json --tenant T"),
        ("--json make task.json", "make task.json --json"),
        ("--tenant T bench task.jsonl", "bench task.jsonl --tenant T"),
        ("--tenant T exec --source t.py --call 1", "exec --source t.py --call 1 --tenant T"),
        ("--json models list", "models list --json"),
        ("--json image list", "image list --json"),
        ("--json tenants list", "tenants list --json"),
        ("-v tools show sort_words", "tools show sort_words -v"),
        ("-v demo --no-model", "demo --no-model --verbose"),
    ],
)
def test_a_shared_flag_means_the_same_on_either_side(before: str, after: str) -> None:
    parser = build_parser()
    assert vars(parser.parse_args(before.split())) == vars(parser.parse_args(after.split()))


def test_tools_import_takes_the_tenant_after_the_file() -> None:
    args = parsed("tools", "import", "card.json", "--tenant", "acme")
    assert (args["tools_command"], args["file"], args["tenant"]) == ("import", "card.json", "acme")
    assert args["run"] is tools_cmd.run_import


def test_each_command_keeps_its_defaults() -> None:
    assert parsed("tools", "list") | {"run": None} == {
        "verbose": False,
        "command": "tools",
        "tools_command": "list",
        "tenant": "default",
        "json": False,
        "run": None,
    }
    assert parsed("exec", "--source", "t.py", "--call", "1")["tenant"] == "cli"
    assert parsed("bench", "task.jsonl")["json"] is None
    assert parsed("solve", "2+2?")["json"] is False
    assert "tenant" not in parsed("tenants", "list")


def test_a_flag_after_the_command_wins_over_one_before() -> None:
    assert parsed("--tenant", "a", "tools", "list", "--tenant", "b")["tenant"] == "b"
    assert parsed("tools", "--tenant", "a", "list", "--tenant", "b")["tenant"] == "b"


@pytest.mark.parametrize(
    ("flag", "command"),
    [
        (["--tenant", "T"], ["demo"]),
        (["--tenant", "T"], ["tenants", "list"]),
        (["--json"], ["tools", "import", "card.json"]),
        (["--json"], ["demo"]),
    ],
)
def test_a_command_refuses_a_flag_it_does_not_take_on_either_side(
    capsys: pytest.CaptureFixture[str], flag: list[str], command: list[str]
) -> None:
    before = refused(capsys, *flag, *command)
    assert f"usage: latm {' '.join(command[:2])}" in before
    assert f"argument {flag[0]} (before the command's name): not an option" in before
    assert f"unrecognized arguments: {' '.join(flag)}" in refused(capsys, *command, *flag)


def test_bench_json_takes_a_file_and_the_switch_before_it_is_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert str(parsed("bench", "task.jsonl", "--json", "out.json")["json"]) == "out.json"
    error = refused(capsys, "--json", "bench", "task.jsonl")
    assert "usage: latm bench" in error
    assert "argument --json (before the command's name)" in error


def test_the_invocations_of_the_integration_tests_still_parse() -> None:
    assert parsed("tools", "--tenant", "demo", "list", "--json") | {"run": None} == {
        "verbose": False,
        "command": "tools",
        "tools_command": "list",
        "tenant": "demo",
        "json": True,
        "run": None,
    }
    made = parsed("make", "word_sorting.json", "--maker", "scripted:m.json", "--json")
    assert (made["maker"], made["json"], made["tenant"]) == ("scripted:m.json", True, "default")
    quota = parsed("tenants", "quota", "acme", "--requests-per-minute", "0")
    assert quota["requests_per_minute"] == 0
    assert parsed("image", "list", "--json")["json"] is True
