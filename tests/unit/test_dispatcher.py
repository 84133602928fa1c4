"""The dispatcher: the usage demos' evidence and the model's choice, combined."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from orchestrator.latm.dispatcher import (
    ROUTE_MAYBE,
    ROUTE_SURE,
    Dispatcher,
    ToolEntry,
    demo_similarity,
    frame_recall,
    pick,
)
from orchestrator.models import open_model


@dataclass(frozen=True)
class Tool:
    name: str
    description: str
    signature: str | None = None


TOOLS = [
    Tool("sort_words", "Sort a list of words alphabetically."),
    Tool("close_brackets", "Complete a sequence of brackets so every one is closed."),
    Tool("track_swaps", "Follow swaps of items between people."),
]
DEMOS: dict[str, list[str]] = {
    "sort_words": [
        "Sort the following words alphabetically: List: oven costume counterpart",
        "Sort the following words alphabetically: List: hat cat butter zebra",
    ],
    "close_brackets": [
        "Complete the rest of the sequence, making sure that the parentheses are closed "
        "properly. Input: [ { < > }",
        "Complete the rest of the sequence, making sure that the parentheses are closed "
        "properly. Input: ( ( [ ]",
    ],
    "track_swaps": [
        "Alice, Bob and Claire are holding a ball each. Alice and Bob swap balls. "
        "Then Claire and Alice swap balls. At the end, Alice has the",
    ],
}


def lookup(demos: Mapping[str, Sequence[str]]) -> Any:
    async def found(tools: Sequence[ToolEntry]) -> dict[str, list[str]]:
        return {tool.name: list(demos.get(tool.name, [])) for tool in tools}

    return found


def dispatcher(tmp_path: Path, replies: list[Any]) -> Dispatcher:
    path = tmp_path / "dispatcher.json"
    path.write_text(json.dumps(replies))
    return Dispatcher(open_model(f"scripted:{path}"))


def test_a_question_is_closest_to_its_own_tools_demos() -> None:
    question = "Sort the following words alphabetically: List: pear apple mango kiwi"
    similarity = demo_similarity(question, DEMOS)
    assert max(similarity, key=similarity.__getitem__) == "sort_words"
    assert similarity["sort_words"] > 2 * max(similarity["close_brackets"], 0.01)
    # Numbers count as one token: another CRT-like question matches whatever its numbers.
    numbers = {"crt": ["There are 13 items, 3 left over when divided by 4."]}
    assert demo_similarity("There are 77 items, 1 left over when divided by 9.", numbers)[
        "crt"
    ] == pytest.approx(1.0)
    assert demo_similarity("anything", {"bare": []}) == {"bare": 0.0}


async def test_clear_evidence_routes_without_asking_the_model(tmp_path: Path) -> None:
    chosen = await dispatcher(tmp_path, []).choose(
        "Sort the following words alphabetically: List: pear apple mango kiwi",
        TOOLS,
        lookup(DEMOS),
    )
    assert (chosen.tool, chosen.by) == ("sort_words", "evidence")
    assert chosen.usage.total_tokens == 0  # the script is empty: the model was not asked
    assert chosen.confidence is not None
    assert 0.3 < chosen.confidence <= 1.0
    assert chosen.candidates[0] == "sort_words"


async def test_a_question_close_to_no_tool_is_answered_directly(tmp_path: Path) -> None:
    chosen = await dispatcher(tmp_path, []).choose(
        "Is the following sentence plausible? The goalkeeper scored a touchdown.",
        TOOLS,
        lookup(DEMOS),
    )
    assert (chosen.tool, chosen.by) == (None, "evidence")
    assert max(chosen.similarity.values()) < ROUTE_MAYBE
    assert chosen.confidence is not None
    assert chosen.confidence > 0.8


async def test_between_the_model_decides_but_only_for_the_tool_the_demos_point_to(
    tmp_path: Path,
) -> None:
    # A few of the sorting demos' words, not their frame: evidence between the bounds.
    question = "Sort the words: pear apple hat"
    similarity = demo_similarity(question, DEMOS)
    assert ROUTE_MAYBE <= similarity["sort_words"] < ROUTE_SURE
    agreeing = await dispatcher(tmp_path, [{"response": "sort_words", "expect": [
        "sort_words"]}]).choose(question, TOOLS, lookup(DEMOS))  # fmt: skip
    assert (agreeing.tool, agreeing.by) == ("sort_words", "model")
    assert agreeing.usage.prompt_tokens > 0
    (tmp_path / "other").mkdir()
    disagreeing = await dispatcher(tmp_path / "other", ["track_swaps"]).choose(
        question, TOOLS, lookup(DEMOS)
    )
    assert (disagreeing.tool, disagreeing.by) == (None, "model")


async def test_without_demos_the_model_alone_decides(tmp_path: Path) -> None:
    chosen = await dispatcher(tmp_path, ["close_brackets"]).choose(
        "Finish: [ ( <", TOOLS, lookup({})
    )
    assert (chosen.tool, chosen.by, chosen.confidence) == ("close_brackets", "model", None)
    (tmp_path / "plain").mkdir()
    plain = await dispatcher(tmp_path / "plain", ["none"]).choose("Finish: [ ( <", TOOLS)
    assert (plain.tool, plain.confidence) == (None, None)


def test_pick_reads_the_first_name_or_none() -> None:
    names = ["sort_words", "track_swaps"]
    assert pick("`track_swaps`", names) == "track_swaps"
    assert pick("none of them; sort_words maybe", names) is None
    assert pick("the tool is sort_words.", names) == "sort_words"
    assert pick("unknown_tool", names) is None


async def test_tools_with_the_same_demos_are_told_apart_by_the_model(tmp_path: Path) -> None:
    twins = [*TOOLS, Tool("sort_words_v2", "Sort words, a second take.")]
    demos = {**DEMOS, "sort_words_v2": DEMOS["sort_words"]}
    question = "Sort the following words alphabetically: List: pear apple mango kiwi"
    chosen = await dispatcher(tmp_path, ["sort_words_v2"]).choose(question, twins, lookup(demos))
    assert (chosen.tool, chosen.by) == ("sort_words_v2", "model")
    assert chosen.candidates[:2] == ["sort_words", "sort_words_v2"]


def test_the_frame_is_what_a_tools_demos_share_and_a_questions_data_does_not_dilute_it() -> None:
    words = " ".join(f"word{n}" for n in range(60))  # a long list no demo holds
    question = f"Sort the following words alphabetically: List: {words}"
    assert frame_recall(question, {"sort_words": DEMOS["sort_words"]}) == {"sort_words": 1.0}
    assert demo_similarity(question, {"sort_words": DEMOS["sort_words"]})["sort_words"] < 0.25
    recall = frame_recall(question, DEMOS)
    assert recall["sort_words"] == 1.0
    assert recall["close_brackets"] < 0.3
    assert frame_recall("Anything at all?", {"sort_words": DEMOS["sort_words"]})["sort_words"] < 0.2


async def test_one_tool_takes_its_own_questions_and_no_others(tmp_path: Path) -> None:
    """With a single tool the cosine has little to weigh by; the frame still decides."""
    words = " ".join(f"word{n}" for n in range(60))
    only = lookup({"sort_words": DEMOS["sort_words"]})
    router = dispatcher(tmp_path, [])  # the model is never asked
    own = await router.choose(f"Sort the following words alphabetically: List: {words}",
                              TOOLS[:1], only)  # fmt: skip
    assert (own.tool, own.by) == ("sort_words", "evidence")
    other = await router.choose("How many legs do three spiders have?", TOOLS[:1], only)
    assert (other.tool, other.by) == (None, "evidence")


async def test_a_question_of_few_words_is_weighed_against_every_tool(tmp_path: Path) -> None:
    """BM25 finds no word of an arithmetic expression; the demos still match it."""
    many = [Tool(f"tool_{n}", f"Does thing number {n}.") for n in range(12)]
    sums = ["((1 + 2) * 3) =", "((-4 - 5) * 6) =", "((7 * -8) + 9) ="]
    demos = {tool.name: [f"Please do thing {n} with care."] for n, tool in enumerate(many)}
    demos["tool_11"] = sums
    router = Dispatcher(dispatcher(tmp_path, []).model, shortlist=4)
    chosen = await router.choose("((2 * 5) - -3) =", many, lookup(demos))
    assert (chosen.tool, chosen.by) == ("tool_11", "evidence")
    assert router.candidates("((2 * 5) - -3) =", many) == []  # what BM25 alone would give
