"""The tool user's techniques, each with a scripted model and a real sandbox: feedback on
the call's text (no ``ans``, the tool defined again, an import, a string not copied from
the question), a string that nearly copies the question snapped to it, an empty result
sent back, a sandbox error sent back, agreement among sampled calls with an early
stop, and a clear "no answer" with every reason once the retries are spent."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import ModelRejected
from orchestrator.latm.cards import ToolCard
from orchestrator.latm.runner import ToolRunner
from orchestrator.latm.user import ToolUser, UserConfig
from orchestrator.models import ChatParams, Completion, Message, open_model
from orchestrator.sandboxes import SandboxBackend, create_backend
from tests.support.backends import require_bwrap
from tests.support.cards import card_fields, make_card

pytestmark = pytest.mark.integration

SOURCE = '''\
def sort_words(words):
    """Sort the words given as text separated by spaces."""
    return " ".join(sorted(words.split()))
'''
QUESTION = "Sort the following words alphabetically: List: pear apple fig"
RIGHT = 'ans = sort_words("pear apple fig")'


@pytest.fixture
async def runner() -> AsyncIterator[ToolRunner]:
    require_bwrap()
    backend: SandboxBackend = create_backend("process")
    try:
        yield ToolRunner(backend, "user-tests")
    finally:
        await backend.close()


def card() -> ToolCard:
    return make_card("sort_words", SOURCE, signature="sort_words(words)")


def user(
    tmp_path: Path,
    runner: ToolRunner,
    replies: list[Any],
    config: UserConfig | None = None,
    **changes: Any,
) -> ToolUser:
    """A tool user over a scripted model; no sampling unless ``changes`` ask for it."""
    path = tmp_path / f"user{len(list(tmp_path.glob('user*.json')))}.json"
    path.write_text(json.dumps(replies))
    chosen = replace(config or UserConfig(samples=0, grounding=True), **changes)  # every check
    model = open_model(f"scripted:{path}")
    model.samples = True  # stands in for a model that samples: its replies are the samples
    return ToolUser(model, runner, config=chosen)


@pytest.mark.parametrize(
    ("wrong", "told"),
    [
        ('ans = sort_words("pear aple fig")', "'pear aple fig' is not in the question"),
        ('ans = sort_words("Pear apple fig")', "'Pear apple fig' is not in the question"),
        ('result = sort_words("pear apple fig")', "Assign the final answer to `ans`"),
        (f"def sort_words(words):\n    return words\n{RIGHT}", "Do not define `sort_words` again"),
        (f"from tool import sort_words\n{RIGHT}", "Do not import anything"),
        ('ans = sort_words(["pear", "apple"])', "Running that failed: AttributeError"),
    ],
)
async def test_a_bad_call_goes_back_with_the_exact_problem_and_the_retry_answers(
    tmp_path: Path, runner: ToolRunner, wrong: str, told: str
) -> None:
    replies = [wrong, {"response": RIGHT, "expect": [told]}]
    answer = await user(tmp_path, runner, replies, snap=False).answer(card(), QUESTION)
    assert answer.error is None
    assert (answer.answer, answer.attempts, answer.call) == ("apple fig pear", 2, RIGHT)


async def test_without_feedback_a_retry_is_a_fresh_sample_of_the_same_prompt(
    tmp_path: Path, runner: ToolRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``feedback=False`` (LATM_USER_FEEDBACK): the retry is asked with the first prompt,
    no problem in it, at the sampling temperature with a seed of its own."""
    never_told = r"^(?![\s\S]*Running that failed)"
    replies = ['ans = sort_words(["pear"])', {"response": RIGHT, "expect_regex": never_told}]
    tool_user = user(tmp_path, runner, replies, snap=False, feedback=False)
    asked: list[tuple[int, ChatParams]] = []
    complete = tool_user.model.complete

    async def recording(messages: list[Message], params: ChatParams) -> Completion:
        asked.append((len(messages), params))
        return await complete(messages, params)

    monkeypatch.setattr(tool_user.model, "complete", recording)
    answer = await tool_user.answer(card(), QUESTION)
    assert (answer.answer, answer.attempts) == ("apple fig pear", 2)
    assert asked[0][0] == asked[1][0]
    assert (asked[0][1].temperature, asked[1][1].temperature, asked[1][1].seed) == (0.0, 0.7, 1)
    told = user(tmp_path, runner, replies, snap=False)  # with feedback the problem is sent
    with pytest.raises(ModelRejected):
        await told.answer(card(), QUESTION)


async def test_every_retry_spent_gives_no_answer_with_the_reasons(
    tmp_path: Path, runner: ToolRunner
) -> None:
    replies = ['ans = sort_words("pear aple fig")', "result = 1", 'ans = sort_words(["pear"])']
    answer = await user(tmp_path, runner, replies, retries=2, snap=False).answer(card(), QUESTION)
    assert answer.answer is None
    assert answer.attempts == 3
    assert answer.error is not None
    assert answer.error.startswith("no answer after 3 replies: ")
    for reason in ("'pear aple fig' is not in the question", "`ans`", "AttributeError"):
        assert reason in answer.error


async def test_a_string_that_nearly_copies_the_question_is_snapped_without_a_retry(
    tmp_path: Path, runner: ToolRunner
) -> None:
    replies = ['ans = sort_words("pear aple fig")', "never asked for"]
    answer = await user(tmp_path, runner, replies).answer(card(), QUESTION)
    assert (answer.answer, answer.attempts, answer.snapped) == ("apple fig pear", 1, 1)
    assert answer.call == 'ans = sort_words("pear apple fig")'


async def test_a_string_far_from_the_question_is_not_snapped_but_sent_back(
    tmp_path: Path, runner: ToolRunner
) -> None:
    told = "'plum kiwi fig' is not in the question"
    replies = ['ans = sort_words("plum kiwi fig")', {"response": RIGHT, "expect": [told]}]
    answer = await user(tmp_path, runner, replies).answer(card(), QUESTION)
    assert (answer.answer, answer.attempts, answer.snapped) == ("apple fig pear", 2, 0)


async def test_an_empty_result_goes_back_as_arguments_that_miss_the_question(
    tmp_path: Path, runner: ToolRunner
) -> None:
    told = "The tool returned '': the arguments do not describe this question"
    replies = ['ans = sort_words("")', {"response": RIGHT, "expect": [told]}]
    answer = await user(tmp_path, runner, replies).answer(card(), QUESTION)
    assert (answer.answer, answer.attempts) == ("apple fig pear", 2)
    plain = await user(tmp_path, runner, ['ans = sort_words("")'], UserConfig.plain()).answer(
        card(), QUESTION
    )
    assert (plain.attempts, plain.value) == (1, "")


async def test_sampled_calls_vote_and_sampling_stops_once_enough_agree(
    tmp_path: Path, runner: ToolRunner
) -> None:
    two_words = 'ans = sort_words("pear apple")'  # in the question, so it runs: a wrong value
    replies = [two_words, RIGHT, RIGHT, "never asked for"]
    answer = await user(tmp_path, runner, replies, samples=3, agree=2).answer(card(), QUESTION)
    assert (answer.answer, answer.call) == ("apple fig pear", RIGHT)
    assert (answer.candidates, answer.attempts, answer.confidence) == (3, 3, 0.667)


async def test_agreeing_first_calls_stop_at_once_and_a_tie_keeps_the_greedy_call(
    tmp_path: Path, runner: ToolRunner
) -> None:
    agreeing = await user(tmp_path, runner, [RIGHT, RIGHT, "unused"], samples=4).answer(
        card(), QUESTION
    )
    assert (agreeing.attempts, agreeing.confidence) == (2, 1.0)
    tie = await user(
        tmp_path, runner, [RIGHT, 'ans = sort_words("apple fig")', "ans = 1 +"], samples=2
    ).answer(card(), QUESTION)
    assert (tie.answer, tie.candidates, tie.confidence) == ("apple fig pear", 2, 0.5)


async def test_the_plain_config_checks_nothing_but_the_sandbox(
    tmp_path: Path, runner: ToolRunner
) -> None:
    replies = ['ans = sort_words("pear aple fig")']
    answer = await user(tmp_path, runner, replies, UserConfig.plain()).answer(card(), QUESTION)
    assert (answer.answer, answer.attempts, answer.confidence) == ("aple fig pear", 1, 1.0)


async def test_a_model_that_replays_a_script_is_never_sampled(
    tmp_path: Path, runner: ToolRunner
) -> None:
    path = tmp_path / "replay.json"
    path.write_text(json.dumps([RIGHT, "the next question's reply"]))
    model = open_model(f"scripted:{path}")
    answer = await ToolUser(model, runner, config=UserConfig(samples=3)).answer(card(), QUESTION)
    assert (answer.attempts, answer.candidates) == (1, 1)
    assert model.remaining == 1  # type: ignore[attr-defined]


def scripted(tmp_path: Path, name: str, replies: list[Any]) -> Any:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(replies))
    model = open_model(f"scripted:{path}")
    model.samples = True
    return model


@pytest.mark.parametrize(
    ("light", "why"),
    [
        (['ans = sort_words("pear apple")', RIGHT], "its two calls disagree"),
        (["result = 1", 'ans = sort_words("pear apple")'], "its reply needed correcting"),
        (["ans = 1 +", "ans = 1 +", "ans = 1 +"], "it has no answer"),
    ],
)
async def test_a_doubtful_answer_is_asked_again_of_the_stronger_model(
    tmp_path: Path, runner: ToolRunner, light: list[str], why: str
) -> None:
    strong = scripted(tmp_path, "strong", [RIGHT, "never asked for"])
    config = UserConfig(samples=1, escalate=True)
    weak = scripted(tmp_path, "weak", light)
    answer = await ToolUser(weak, runner, config=config, stronger=strong).answer(card(), QUESTION)
    assert answer.escalated, why
    assert (answer.answer, answer.call, answer.error) == ("apple fig pear", RIGHT, None)
    assert strong.remaining == 1  # one greedy call, no samples of the stronger model


async def test_a_call_copying_a_worked_example_is_doubted_though_it_runs(
    tmp_path: Path, runner: ToolRunner
) -> None:
    shown = 'ans = (sort_words("kiwi"), sort_words("plum"), sort_words("date"))'
    demos = card_fields(SOURCE, "sort_words", [("Sort: kiwi plum date", shown, "date kiwi plum")])
    with_demo = ToolCard.model_validate(card().model_dump() | {"usage_demos": demos["usage_demos"]})
    copied = shown  # runs, but its arguments are the worked example's
    strong = scripted(tmp_path, "strong", [RIGHT])
    config = UserConfig(escalate=True)
    weak = scripted(tmp_path, "weak", [copied])
    answer = await ToolUser(weak, runner, config=config, stronger=strong).answer(
        with_demo, QUESTION
    )
    assert answer.escalated
    assert answer.answer == "apple fig pear"


async def test_an_answer_without_doubt_never_reaches_the_stronger_model(
    tmp_path: Path, runner: ToolRunner
) -> None:
    strong = scripted(tmp_path, "strong", ["never asked for"])
    agreed = await ToolUser(
        scripted(tmp_path, "agreeing", [RIGHT, RIGHT]),
        runner,
        config=UserConfig(samples=1, escalate=True),
        stronger=strong,
    ).answer(card(), QUESTION)
    switched_off = await ToolUser(
        scripted(tmp_path, "off", ["ans = 1 +", "ans = 1 +", "ans = 1 +"]),
        runner,
        config=UserConfig(escalate=False),
        stronger=strong,
    ).answer(card(), QUESTION)
    assert (agreed.answer, agreed.escalated, agreed.confidence) == ("apple fig pear", False, 1.0)
    assert (switched_off.answer, switched_off.escalated) == (None, False)
    assert strong.remaining == 1


async def test_a_stronger_model_that_fails_leaves_the_light_answer_and_says_why(
    tmp_path: Path, runner: ToolRunner
) -> None:
    gone = scripted(tmp_path, "gone", [])  # any call raises: the model is not there
    disagreeing = [RIGHT, 'ans = sort_words("pear apple")']
    answer = await ToolUser(
        scripted(tmp_path, "weak", disagreeing),
        runner,
        config=UserConfig(samples=1, escalate=True),
        stronger=gone,
    ).answer(card(), QUESTION)
    assert (answer.answer, answer.escalated, answer.confidence) == ("apple fig pear", True, 0.5)
    nothing = await ToolUser(
        scripted(tmp_path, "weak2", ["ans = 1 +"] * 3),
        runner,
        config=UserConfig(escalate=True),
        stronger=gone,
    ).answer(card(), QUESTION)
    assert nothing.answer is None
    assert nothing.error is not None
    assert "the stronger model failed" in nothing.error
