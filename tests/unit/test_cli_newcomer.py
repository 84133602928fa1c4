"""What a newcomer to ``latm`` trips on: a shared flag (``--tenant``, ``--json``, ``-v``) means
the same on either side of the command's name, and tables stay readable at 80 columns."""

from __future__ import annotations

import datetime as dt
import io
import re
from typing import Any

import pytest
from rich.console import Console
from rich.table import Table

from orchestrator.cli import bench_cmd, build_parser, tools_cmd
from orchestrator.cli._tables import fitted
from orchestrator.latm.experiment import Arm, TaskReport
from orchestrator.models import TokenUsage
from orchestrator.registry import ToolSummary


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
        **dict.fromkeys(("server", "credentials", "tls_ca", "tls_cert", "tls_key")),
        "given": frozenset(),
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
        **dict.fromkeys(("server", "credentials", "tls_ca", "tls_cert", "tls_key")),
        "given": frozenset({"tenant", "json"}),
    }
    made = parsed("make", "word_sorting.json", "--maker", "scripted:m.json", "--json")
    assert (made["maker"], made["json"], made["tenant"]) == ("scripted:m.json", True, "default")
    quota = parsed("tenants", "quota", "acme", "--requests-per-minute", "0")
    assert quota["requests_per_minute"] == 0
    assert parsed("image", "list", "--json")["json"] is True


# --- tables at 80 columns -------------------------------------------------------------------


def rendered(table: Table, width: int) -> list[str]:
    out = io.StringIO()
    console = Console(width=width, file=out, color_system=None)
    console.print(fitted(table, console))
    return out.getvalue().splitlines()


def tools() -> list[ToolSummary]:
    def tool(name: str, version: int, signature: str, description: str) -> ToolSummary:
        return ToolSummary(
            name=name,
            version=version,
            description=description,
            signature=signature,
            entrypoint=name,
            sha256="0" * 64,
            created_at=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
            uses=1234,
            cost_usd=0.000123,
        )

    return [
        tool("sort_words_alphabetically", 12, "sort_words_alphabetically(text: str) -> str",
             "Sort the words of a 'Sort the following words alphabetically' question."),
        tool("count_days", 3, "count_days(start: str, end: str) -> int",
             "Count the days between two ISO dates, both included."),
        tool("dyck_languages_close", 1, "dyck_languages_close(sequence: str) -> str",
             "Close the open brackets of a Dyck sequence in the right order."),
    ]  # fmt: skip


def assert_readable(lines: list[str], width: int, keys: list[str], words: list[str]) -> None:
    assert lines
    assert max(len(line) for line in lines) <= width
    for key in keys:  # each on one line, whole
        assert any(re.search(rf"(?<![\w.]){re.escape(key)}(?![\w.])", line) for line in lines), key
    for word in words:
        assert any(word in line for line in lines), word


def shown_words(listed: list[ToolSummary]) -> list[str]:
    return [word for t in listed for word in f"{t.signature} {t.description[:60]}".split()]


@pytest.mark.parametrize("width", [80, 100, 60, 40])
def test_tools_list_keeps_names_and_versions_whole(width: int) -> None:
    listed = tools()
    lines = rendered(tools_cmd.table("default", listed), width)
    keys = [key for t in listed for key in (t.name, str(t.version))]
    # At 40 columns a 31-character signature word cannot stay whole beside its header.
    assert_readable(lines, width, keys, shown_words(listed) if width >= 60 else [])


def test_a_table_that_fits_is_left_as_it_is() -> None:
    table = tools_cmd.table("default", tools())
    wide = Console(width=240, file=io.StringIO())
    assert fitted(table, wide) is table
    assert all(column.width is None for column in table.columns)
    lines = rendered(tools_cmd.table("default", tools()), 240)
    assert any("sort_words_alphabetically(text: str) -> str" in line for line in lines)


def test_a_table_between_is_given_widths_that_break_no_word() -> None:
    lines = rendered(tools_cmd.table("default", tools()), 140)
    assert lines[1].startswith("┏")  # still a table
    assert_readable(lines, 140, [t.name for t in tools()], shown_words(tools()))


def test_bench_at_80_columns_is_one_block_per_task() -> None:
    usage = TokenUsage(prompt_tokens=120_000, completion_tokens=30_000, cost_usd=1.2345)
    reports = [
        TaskReport(
            task=name,
            scorer="exact",
            test_size=50,
            tool=f"{name}_tool",
            tool_made=True,
            make_attempts={"propose": 1, "verify": 2},
            maker_usage=usage,
            make_wall_s=42.0,
            latm=Arm(correct=48, answered=50, usage=usage, wall_s=100.0),
            cot=Arm(correct=40, answered=50, usage=usage, wall_s=200.0),
        )
        for name in ("word_sorting", "logical_deduction_five_objects")
    ]
    lines = rendered(bench_cmd.table(reports), 80)
    assert_readable(
        lines, 80, ["word_sorting", "logical_deduction_five_objects", "96.0", "80.0"], []
    )
    assert any(re.fullmatch(r"task\s+logical_deduction_five_objects\s*", line) for line in lines)


def test_a_making_step_prints_model_text_as_text_never_as_markup() -> None:
    import io

    from rich.console import Console

    from orchestrator.cli.make_cmd import show_event
    from orchestrator.latm.progress import AttemptFailed, Stage

    out = io.StringIO()
    console = Console(file=out, width=200, color_system=None)
    problem = "Example 1: expected '[/]', got '[bold]x[/bold] [link=http://x]y'"
    show_event(console, AttemptFailed(Stage.PROPOSE, 1, problem))
    assert out.getvalue().split(maxsplit=1)[1].strip() == f"attempt 1 failed: {problem}"
