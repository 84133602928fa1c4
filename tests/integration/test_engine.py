"""The LATM engine, deterministically: scripted models, a real sandbox, a real registry.

Each maker script is built from BIG-Bench Hard's word_sorting examples (read from
``../shared/bbh`` by path), so the sandbox really runs the tools and the orchestrator really
grades them with the task's scorer.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import InvalidRequest, ModelNotAvailable
from orchestrator.latm.cards import ToolCard
from orchestrator.latm.engine import Engine
from orchestrator.latm.experiment import run_task
from orchestrator.latm.progress import (
    AttemptFailed,
    CandidateScored,
    CaseGraded,
    MakeEvent,
    Stage,
    Verified,
)
from orchestrator.latm.tasks import Example, Task, load_task
from orchestrator.latm.user import UserConfig
from orchestrator.models import ModelAdapter, open_model
from orchestrator.models.deferred import DeferredModel
from orchestrator.models.scripted import ScriptedModel
from orchestrator.registry import ToolRegistry
from orchestrator.sandboxes import SandboxBackend, create_backend
from tests.support.cards import card_fields, tool_card
from tests.support.maker import BBH, SORT, calls, propose, scripted

pytestmark = pytest.mark.integration

TOOL = SORT  # the tool the scripted maker proposes
BROKEN = TOOL.replace('" ".join(sorted(words))', '" ".join(sorted(words)) + str(1 / 0)')


@pytest.fixture(scope="module")
def task() -> Task:
    return load_task(BBH / "word_sorting.json")


def demos(task: Task) -> list[Example]:
    return list(task.split().demos)


def validation(task: Task) -> list[Example]:
    return list(task.split().validation)


@pytest.fixture
async def backend() -> AsyncIterator[SandboxBackend]:
    backend = create_backend("process")
    try:
        yield backend
    finally:
        await backend.close()


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[ToolRegistry]:
    with ToolRegistry.open(f"sqlite:///{tmp_path / 'registry.db'}") as registry:
        yield registry


def engine(
    backend: SandboxBackend,
    registry: ToolRegistry,
    tmp_path: Path,
    *,
    maker: list[Any] | None = None,
    user: list[Any] | None = None,
    dispatcher: list[Any] | None = None,
    stronger: list[Any] | None = None,
    max_attempts: int = 3,
    candidates: int | None = None,
    user_config: UserConfig | None = None,
) -> Engine:
    def model(name: str, steps: list[Any] | None) -> Any:
        return open_model(scripted(tmp_path, name, steps)) if steps is not None else None

    return Engine(
        backend=backend,
        registry=registry,
        user=model("user", user or []),
        maker=model("maker", maker),
        dispatcher=model("dispatcher", dispatcher),
        stronger=model("stronger", stronger),
        max_attempts=max_attempts,
        maker_candidates=candidates,
        user_config=user_config,
    )


async def test_a_tool_made_on_the_first_attempt(
    task: Task, backend: SandboxBackend, registry: ToolRegistry, tmp_path: Path
) -> None:
    steps = [
        {"response": propose(task), "expect": [demos(task)[1].input]},
        {"response": calls(validation(task)), "expect": [validation(task)[0].input]},
    ]
    made = await engine(backend, registry, tmp_path, maker=steps).make("acme", task)
    assert made.reason is None
    card = made.card
    assert card is not None
    assert (card.name, card.version, card.scorer) == ("sort_words", 1, "exact")
    assert made.attempts == {"propose": 1, "verify": 1}
    assert card.verification.passed == card.verification.total == 3
    assert [demo.answer for demo in card.usage_demos] == [e.target for e in demos(task)]
    assert card.signature == "sort_words(question: str) -> str"
    assert card.description.startswith("Sort the words listed")
    assert card.provenance.maker.startswith("scripted:")
    assert card.provenance.tokens["prompt"] > 0
    assert registry.get("acme", "sort_words") == card


@pytest.mark.parametrize("right", [3, 2])
async def test_the_user_model_is_checked_on_held_out_cases_and_a_miss_hands_the_tool_on(
    task: Task, backend: SandboxBackend, registry: ToolRegistry, tmp_path: Path, right: int
) -> None:
    held_out, question = validation(task), task.split().test[0]
    answers = [f"ans = sort_words({e.input!r})" for e in held_out[:right]]
    answers += ['ans = sort_words("List: b a")'] * (len(held_out) - right)  # runs, wrong
    call = f"ans = sort_words({question.input!r})"
    maker = [propose(task), calls(held_out), call]
    made = engine(
        backend, registry, tmp_path, maker=maker, user=[*answers, call],
        user_config=UserConfig(check=True),
    )  # fmt: skip
    assert made.maker_model is not None
    made.maker_model.samples = True  # stands in for a real model: a replay is never checked
    result = await made.make("acme", task)
    assert result.card is not None
    check = result.card.verification.user
    assert check is not None
    assert (check.correct, check.questions, check.passed) == (right, 3, right == 3)
    assert check.model == made.user_model.spec
    assert registry.get("acme", "sort_words").verification.user == check  # stored with it
    solved = await made.solve("acme", question.input, tool="sort_words")
    assert solved.answer == question.target
    stronger = made.maker_model
    assert stronger is not None
    chosen = made.user_model if right == 3 else stronger
    assert solved.answered_by == chosen.spec
    assert solved.to_dict()["answered_by"] == chosen.spec


async def test_a_stronger_model_of_its_own_is_checked_against_and_answers_not_the_maker(
    task: Task, backend: SandboxBackend, registry: ToolRegistry, tmp_path: Path
) -> None:
    """LATM_USER_STRONGER_MODEL: the tool the user model misses goes to that model; the
    maker's script holds only the making, so a question asked of it would fail."""
    held_out, question = validation(task), task.split().test[0]
    call = f"ans = sort_words({question.input!r})"
    made = engine(
        backend, registry, tmp_path, maker=[propose(task), calls(held_out)],
        user=['ans = sort_words("List: b a")'] * 3, stronger=[call],
        user_config=UserConfig(check=True),
    )  # fmt: skip
    assert made.stronger_model is not None
    assert made.stronger_model is not made.maker_model
    made.stronger_model.samples = True  # stands in for a real model: a replay is never checked
    result = await made.make("acme", task)
    assert result.card is not None
    check = result.card.verification.user
    assert check is not None
    assert (check.correct, check.passed) == (0, False)
    solved = await made.solve("acme", question.input, tool="sort_words")
    assert solved.answer == question.target
    assert made.maker_model is not None
    assert solved.answered_by == made.stronger_model.spec != made.maker_model.spec


async def test_the_bench_answers_as_a_served_request_is_answered_by_the_stronger_model(
    task: Task, backend: SandboxBackend, registry: ToolRegistry, tmp_path: Path
) -> None:
    """`latm bench`'s LATM arm takes the tool user a request would get: a tool the user
    model failed its check on is used by the stronger model (the user's script holds only
    the check's wrong calls, so a question asked of it would fail)."""
    held_out, question = validation(task), task.split().test[0]
    made = engine(
        backend, registry, tmp_path, maker=[propose(task), calls(held_out)],
        user=['ans = sort_words("List: b a")'] * 3,
        stronger=[f"ans = sort_words({question.input!r})"],
        user_config=UserConfig(check=True),
    )  # fmt: skip
    assert made.stronger_model is not None
    made.stronger_model.samples = True  # stands in for a real model: a replay is never checked
    report = await run_task(made, "acme", task, limit=1, baseline=False)
    assert report.tool_made
    assert report.latm is not None
    assert report.latm.model == made.stronger_model.spec != made.user_model.spec
    assert (report.latm.correct, report.latm.escalated) == (1, 0)
    assert report.to_dict()["latm"]["model"] == made.stronger_model.spec


async def test_a_user_check_that_cannot_run_still_publishes_the_verified_tool(
    task: Task, backend: SandboxBackend, registry: ToolRegistry, tmp_path: Path
) -> None:
    maker = [propose(task), calls(validation(task))]
    made = engine(
        backend, registry, tmp_path, maker=maker, user=[], user_config=UserConfig(check=True)
    )  # the user model has no reply to give: every call of it fails
    assert made.maker_model is not None
    made.maker_model.samples = True
    result = await made.make("acme", task)
    assert result.card is not None
    assert result.card.verification.user is None
    assert registry.get("acme", "sort_words").verification.passed == 3


async def test_a_tool_handed_to_a_maker_model_not_fetched_is_used_by_the_user_model(
    task: Task, backend: SandboxBackend, registry: ToolRegistry, tmp_path: Path
) -> None:
    question = task.split().test[0]
    call = f"ans = sort_words({question.input!r})"
    made = engine(backend, registry, tmp_path, user=[call])

    def not_fetched() -> ModelAdapter:
        raise ModelNotAvailable("local model x is not in the cache; run latm models fetch x")

    made.stronger_model = DeferredModel("local:x", not_fetched, ModelNotAvailable("not yet"))
    check = {"model": made.user_model.spec, "correct": 0, "questions": 3}
    verification = {"passed": 3, "total": 3, "cases": [], "user": check}
    registry.publish("acme", tool_card(TOOL, "sort_words", verification=verification))
    solved = await made.solve("acme", question.input, tool="sort_words")
    assert (solved.answer, solved.answered_by) == (question.target, made.user_model.spec)


async def test_the_validation_cases_are_never_shown_while_proposing(
    task: Task, backend: SandboxBackend, registry: ToolRegistry, tmp_path: Path
) -> None:
    hidden = validation(task)[0].input
    steps = [
        {"response": propose(task, BROKEN)},
        # The feedback to a failed proposal still must not reveal the held-out cases.
        {"response": propose(task), "expect_regex": f"(?s)^(?!.*{re.escape(hidden[-30:])})"},
        calls(validation(task)),
    ]
    made = await engine(backend, registry, tmp_path, maker=steps).make("acme", task)
    assert made.card is not None


async def test_a_tool_fixed_after_a_sandbox_error(
    task: Task, backend: SandboxBackend, registry: ToolRegistry, tmp_path: Path
) -> None:
    """The error goes back with the function's line that raised it, quoted."""
    number, line = next((n, s) for n, s in enumerate(BROKEN.splitlines(), 1) if "1 / 0" in s)
    where = f"(raised in the function at line {number}: `{line.strip()}`)"
    steps = [
        propose(task, BROKEN),
        {
            "response": propose(task),
            "expect": [f"Example 1: ZeroDivisionError: division by zero {where}"],
        },
        calls(validation(task)),
    ]
    made = await engine(backend, registry, tmp_path, maker=steps).make("acme", task)
    assert made.card is not None
    assert made.attempts == {"propose": 2, "verify": 1}
    assert "1 / 0" not in made.card.source


@pytest.mark.parametrize(
    ("uses", "added"),
    [
        ("sorted(Counter(words).elements())", "from collections import Counter"),
        # `import datetime` would end in an AttributeError: the import that gets further wins
        ("sorted(words[datetime.strptime('2020', '%Y').year - 2020 :])", "from datetime import "),
    ],
)
async def test_a_name_used_without_its_import_gets_the_import_added(
    task: Task,
    backend: SandboxBackend,
    registry: ToolRegistry,
    tmp_path: Path,
    uses: str,
    added: str,
) -> None:
    """A NameError of a name an allowed module provides costs no reply: the maker adds the
    import to the tool's text, the sandbox runs it again, and it is kept as the demos pass."""
    forgot = TOOL.replace("sorted(words)", uses)
    steps = [propose(task, forgot), calls(validation(task))]
    made = await engine(backend, registry, tmp_path, maker=steps).make("acme", task)
    assert made.card is not None
    assert made.attempts == {"propose": 1, "verify": 1}
    assert made.card.source.startswith(added)
    assert made.card.source.endswith(forgot)


@pytest.mark.parametrize(
    ("uses", "feedback"),
    [
        # with the import the tool runs, and the feedback is its real mistake
        ("sorted(Counter(words).elements(), reverse=True)", "Example 1: expected"),
        # the import gets it no further (another name is its own slip): the hint names it
        ("sorted(Counter(words).elements(), key=by_length)", "from collections import Counter"),
    ],
)
async def test_an_added_import_is_kept_only_when_the_demos_get_further(
    task: Task,
    backend: SandboxBackend,
    registry: ToolRegistry,
    tmp_path: Path,
    uses: str,
    feedback: str,
) -> None:
    forgot = TOOL.replace("sorted(words)", uses)
    steps = [
        propose(task, forgot),
        {"response": propose(task), "expect": [feedback]},
        calls(validation(task)),
    ]
    made = await engine(backend, registry, tmp_path, maker=steps).make("acme", task)
    assert made.card is not None
    assert made.attempts == {"propose": 2, "verify": 1}
    assert "Counter" not in made.card.source


def slipped_calls(examples: list[Example]) -> str:
    """A maker's calls that copy each question's list with its longest word cut short."""
    replies = []
    for example in examples:
        words = example.input[example.input.index("List:") :].split()
        longest = max(range(1, len(words)), key=lambda n: len(words[n]))
        words[longest] = words[longest][:-1]
        replies.append(f"```python\nans = sort_words({' '.join(words)!r})\n```")
    return "\n".join(replies)


@pytest.mark.parametrize("snap", [True, False])
async def test_a_maker_call_that_slips_in_copying_its_question_is_snapped(
    task: Task, backend: SandboxBackend, registry: ToolRegistry, tmp_path: Path, snap: bool
) -> None:
    """As in the tool user's calls, a string that nearly copies a stretch of the question
    is that stretch: the tool is proven on the questions, not on the maker's slips."""
    maker = [propose(task), slipped_calls(validation(task))]
    made = engine(
        backend, registry, tmp_path, maker=maker, max_attempts=1,
        user_config=UserConfig(snap=snap),
    )  # fmt: skip
    result = await made.make("acme", task)
    if snap:
        assert result.card is not None
        assert [case.passed for case in result.card.verification.cases] == [True] * 3
    else:
        assert result.card is None
        assert "Question 1: expected" in (result.reason or "")


async def test_each_proposing_attempt_shows_only_the_last_failed_reply(
    task: Task, backend: SandboxBackend, registry: ToolRegistry, tmp_path: Path
) -> None:
    """An earlier failed function adds only length: the third attempt's prompt holds the
    second reply and its problem, not the first (nor its quoted line)."""
    index_error = TOOL.replace('" ".join(sorted(words))', '" ".join(sorted(words)) + str([][1])')
    steps = [
        propose(task, BROKEN),
        {"response": propose(task, index_error), "expect": ["ZeroDivisionError"]},
        {
            "response": propose(task),
            "expect": ["IndexError", "str([][1])"],
            "expect_regex": r"(?s)^(?!.*(ZeroDivisionError|1 / 0))",
        },
        calls(validation(task)),
    ]
    made = await engine(backend, registry, tmp_path, maker=steps).make("acme", task)
    assert made.card is not None
    assert made.attempts == {"propose": 3, "verify": 1}


async def test_making_reports_typed_events_in_order(
    task: Task, backend: SandboxBackend, registry: ToolRegistry, tmp_path: Path
) -> None:
    """Consumers act on the events' types and fields, never on their wording."""
    steps = [propose(task, BROKEN), propose(task), calls(validation(task))]
    events: list[MakeEvent] = []
    made = await engine(backend, registry, tmp_path, maker=steps).make(
        "acme", task, progress=events.append
    )
    assert made.card is not None
    kinds = [type(event).__name__ for event in events]
    cases = len(validation(task))
    assert kinds == [
        "AttemptStarted", "AttemptFailed", "AttemptStarted", "DemosSolved",
        "AttemptStarted", *["CaseGraded"] * cases, "CandidateScored", "Verified",
    ]  # fmt: skip
    failed = events[1]
    assert isinstance(failed, AttemptFailed)
    assert (failed.stage, failed.number) == (Stage.PROPOSE, 1)
    assert failed.problem.startswith("Example 1: ZeroDivisionError")
    graded = [event for event in events if isinstance(event, CaseGraded)]
    assert all(event.case.passed and event.stage is Stage.VERIFY for event in graded)
    done = events[-1]
    assert isinstance(done, Verified)
    assert (done.name, done.passed, done.total) == (made.card.name, cases, cases)
    assert all(event.message for event in events)  # each also put in words for people


async def test_a_tool_fixed_after_a_wrong_answer_in_verification(
    task: Task, backend: SandboxBackend, registry: ToolRegistry, tmp_path: Path
) -> None:
    wrong = validation(task)
    dropped = wrong[1].input.rsplit(" ", 1)[0]  # the call leaves out the last word
    bad_calls = calls(wrong).replace(repr(wrong[1].input), repr(dropped))
    steps = [
        propose(task),
        bad_calls,
        {"response": calls(wrong), "expect": [f"Question 2: expected {wrong[1].target!r}, got"]},
    ]
    made = await engine(backend, registry, tmp_path, maker=steps).make("acme", task)
    assert made.card is not None
    assert made.attempts == {"propose": 1, "verify": 2}


async def test_a_memorising_tool_is_rejected(
    task: Task, backend: SandboxBackend, registry: ToolRegistry, tmp_path: Path
) -> None:
    answers = {e.input: e.target for e in demos(task)}
    memorised = f"def sort_words(question):\n    return {answers!r}.get(question, '')\n"
    steps = [propose(task, memorised)] * 3
    made = await engine(backend, registry, tmp_path, maker=steps).make("acme", task)
    assert made.card is None
    assert made.reason is not None
    assert "not recall the examples" in made.reason
    assert "expected answer of an example" in made.reason
    assert registry.list("acme") == []


async def test_a_tool_that_branches_on_demo_inputs_is_rejected(
    task: Task, backend: SandboxBackend, registry: ToolRegistry, tmp_path: Path
) -> None:
    sneaky = TOOL.replace(
        "    words =",
        "    if 'syndrome' in question and 'therefrom' in question:\n"
        "        return 'syndrome therefrom'\n    words =",
    )
    steps = [propose(task, sneaky), propose(task), calls(validation(task))]
    made = await engine(backend, registry, tmp_path, maker=steps).make("acme", task)
    assert made.card is not None  # the second, honest tool
    assert made.attempts["propose"] == 2


async def test_verification_failing_on_every_attempt_publishes_nothing(
    task: Task, backend: SandboxBackend, registry: ToolRegistry, tmp_path: Path
) -> None:
    reversed_tool = TOOL.replace("sorted(words)", "sorted(words, reverse='citrus' in words)")
    steps = [propose(task, reversed_tool)] + [calls(validation(task))] * 3
    made = await engine(backend, registry, tmp_path, maker=steps).make("acme", task)
    assert made.card is None
    assert made.reason is not None
    assert "verification failed on all 3 attempts; not published" in made.reason
    assert made.attempts == {"propose": 1, "verify": 3}
    assert registry.list("acme") == []


def parity() -> Task:
    """'Is N even?': the first three examples (the paper's demos) are all 'No'."""
    numbers = [1, 3, 5, 7, 8, 10, 9, 12, 11, 13, 14, 15]
    examples = [
        Example(i, f"Is {n} even?", "No" if n % 2 else "Yes") for i, n in enumerate(numbers)
    ]
    return Task(name="parity", examples=tuple(examples), source="test")


CONSTANT = (
    'def is_even(question: str) -> str:\n    """Whether the number is even."""\n    return "No"\n'
)
PARITY = CONSTANT.replace('"No"\n', '"Yes" if int(question.split()[1]) % 2 == 0 else "No"\n')


def parity_reply(source: str | None, examples: list[Example]) -> str:
    asked = "\n".join(f"```python\nans = is_even({e.input!r})\n```" for e in examples)
    return f"```python\n{source}```\n{asked}" if source else asked


async def test_demos_of_one_answer_let_a_constant_tool_through_proposing(
    backend: SandboxBackend, registry: ToolRegistry, tmp_path: Path
) -> None:
    task = parity()
    held_out = list(task.split().validation)
    steps = [parity_reply(CONSTANT, list(task.split().demos))] + [parity_reply(None, held_out)] * 3
    made = await engine(backend, registry, tmp_path, maker=steps).make("acme", task)
    assert made.card is None
    assert made.attempts == {"propose": 1, "verify": 3}  # 'No' solved every demo


async def test_varied_demos_show_the_maker_another_answer_and_a_constant_fails_on_it(
    backend: SandboxBackend,
    registry: ToolRegistry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LATM_MAKER_VARIED_DEMOS", "true")
    task = parity()
    shown = [task.examples[i] for i in (0, 2, 4)]  # example 4 ('Is 8 even?') for demo 1
    held_out = list(task.split().validation)
    steps = [
        {"response": parity_reply(CONSTANT, shown), "expect": ["Is 8 even?"]},
        {"response": parity_reply(PARITY, shown), "expect": ["expected 'Yes'"]},
        parity_reply(None, held_out),
    ]
    made = await engine(backend, registry, tmp_path, maker=steps).make("acme", task)
    assert made.card is not None, made.reason
    assert made.attempts == {"propose": 2, "verify": 1}
    assert [demo.answer for demo in made.card.usage_demos] == ["No", "No", "Yes"]
    assert made.card.verification.passed == made.card.verification.total == 3


async def test_best_of_n_keeps_the_candidate_that_passes_the_held_out_cases(
    task: Task, backend: SandboxBackend, registry: ToolRegistry, tmp_path: Path
) -> None:
    """Candidate 1 solves the demos but not the held-out cases; candidate 2, sampled from
    the same prompt (never shown them), passes every case and is kept; a third candidate is
    never asked for (the script has no reply for it)."""
    reversed_tool = TOOL.replace("sorted(words)", "sorted(words, reverse='citrus' in words)")
    hidden = validation(task)[0].input
    steps = [
        propose(task, reversed_tool),
        calls(validation(task)),
        {"response": propose(task), "expect_regex": f"(?s)^(?!.*{re.escape(hidden[-30:])})"},
        calls(validation(task)),
    ]
    events: list[MakeEvent] = []
    made = await engine(
        backend, registry, tmp_path, maker=steps, max_attempts=1, candidates=3
    ).make("acme", task, progress=events.append)
    assert made.card is not None
    assert "reverse" not in made.card.source
    assert made.card.verification.passed == made.card.verification.total == 3
    scored = [event for event in events if isinstance(event, CandidateScored)]
    assert [(e.candidate, e.solved_demos, e.passed, e.total) for e in scored] == [
        (1, True, 2, 3),
        (2, True, 3, 3),
    ]
    assert scored[0].problem is not None
    assert "Question" in scored[0].problem
    assert [(c.number, c.passed, c.kept) for c in made.candidates] == [(1, 2, False), (2, 3, True)]
    recorded = made.card.provenance.model_dump()["candidates"]
    assert [(c["candidate"], c["passed"], c["kept"]) for c in recorded] == [
        (1, 2, False),
        (2, 3, True),
    ]
    assert made.attempts == {"propose": 2, "verify": 2}


@pytest.mark.parametrize("repairs", [0, 1])
async def test_a_sampling_maker_spends_its_proposals_on_fresh_candidates(
    repairs: int,
    task: Task,
    backend: SandboxBackend,
    registry: ToolRegistry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A sampled candidate that fails on the demos gets LATM_MAKER_REPAIRS replies with the
    feedback (0 by default), then the next candidate is asked for with the proposing prompt
    alone; verifying keeps its --attempts."""
    monkeypatch.setattr(ScriptedModel, "samples", True)  # stands in for a model that samples
    monkeypatch.setenv("LATM_MAKER_REPAIRS", str(repairs))
    fresh = {"response": propose(task), "expect_regex": "(?s)^(?!.*That did not work)"}
    repaired = {"response": propose(task, BROKEN), "expect": ["That did not work"]}
    steps = [
        propose(task, BROKEN),
        *[repaired] * repairs,
        fresh,
        "no calls",  # the first verifying reply fails; the second is asked for
        calls(validation(task)),
    ]
    made = await engine(
        backend, registry, tmp_path, maker=steps, max_attempts=3, candidates=2
    ).make("acme", task)
    assert made.card is not None, made.reason
    assert made.attempts == {"propose": 2 + repairs, "verify": 2}
    assert [(c.number, c.kept) for c in made.candidates] == [(1, False), (2, True)]
    assert made.candidates[0].problem is not None
    assert "ZeroDivisionError" in made.candidates[0].problem


async def test_no_candidate_verified_publishes_nothing_and_ranks_them(
    task: Task, backend: SandboxBackend, registry: ToolRegistry, tmp_path: Path
) -> None:
    reversed_tool = TOOL.replace("sorted(words)", "sorted(words, reverse='citrus' in words)")
    steps = ["no code here", propose(task, reversed_tool), calls(validation(task))]
    made = await engine(
        backend, registry, tmp_path, maker=steps, max_attempts=1, candidates=2
    ).make("acme", task)
    assert made.card is None
    assert made.reason is not None
    assert "none of the 2 candidate tools passed every held-out case; not published" in (
        made.reason
    )
    # the best first: candidate 2 passed 2 of 3; candidate 1 wrote no function
    assert made.reason.index("candidate 2 (sort_words") < made.reason.index("candidate 1 (no tool")
    assert registry.list("acme") == []


async def publish(registry: ToolRegistry, tenant: str, task: Task, tmp_path: Path) -> ToolCard:
    backend = create_backend("process")
    try:
        steps = [propose(task), calls(validation(task))]
        made = await engine(backend, registry, tmp_path, maker=steps).make(tenant, task)
    finally:
        await backend.close()
    assert made.card is not None
    return made.card


async def test_the_user_retries_once_with_the_error_shown(
    task: Task, backend: SandboxBackend, registry: ToolRegistry, tmp_path: Path
) -> None:
    await publish(registry, "acme", task, tmp_path)
    question = task.split().test[0]
    user = [
        f"ans = sort_word({question.input!r})",
        {
            "response": f"ans = sort_words({question.input!r})",
            "expect": ["Running that failed: NameError"],
        },
    ]
    the_engine = engine(backend, registry, tmp_path, user=user)
    solved = await the_engine.solve("acme", question.input, tool="sort_words")
    assert solved.answer == question.target
    assert (solved.route, solved.tool, solved.version) == ("tool", "sort_words", 1)
    assert solved.usage["user"].completion_tokens > 0
    await the_engine.flush()
    use = registry.usage("acme", "sort_words")
    assert use["by_role"]["user"]["calls"] == 1


async def test_the_dispatcher_picks_a_tool_or_none(
    task: Task, backend: SandboxBackend, registry: ToolRegistry, tmp_path: Path
) -> None:
    card = await publish(registry, "acme", task, tmp_path)
    for name, description in (
        ("count_vowels", "Count the vowels in a word."),
        ("add_numbers", "Add up the numbers in a question."),
    ):
        source = f'def {name}(question):\n    """{description}"""\n    return 0\n'
        other = card.model_copy(
            update={
                "name": name,
                "entrypoint": name,
                "description": description,
                "source": source,
                "provenance": card.provenance.model_copy(update={"sha256": _sha(source)}),
            }
        )
        registry.publish("acme", other)
    question = task.split().test[1]
    # The three cards share their demos: the evidence says "one of these", the model which.
    dispatcher = [
        {"response": "sort_words", "expect": ["count_vowels", "add_numbers", "sort_words"]},
    ]
    user = [f"ans = sort_words({question.input!r})", "Step by step... So the answer is 42."]
    the_engine = engine(backend, registry, tmp_path, user=user, dispatcher=dispatcher)
    solved = await the_engine.solve("acme", question.input)
    assert (solved.route, solved.tool, solved.answer) == ("tool", "sort_words", question.target)
    assert solved.usage["dispatcher"].prompt_tokens > 0
    assert solved.routed_by == "model"
    assert solved.route_confidence is not None
    assert solved.route_confidence > 0.25
    # Nothing like any demo: answered directly, without asking the dispatcher's model.
    direct = await the_engine.solve("acme", "What is six times seven?")
    assert (direct.route, direct.tool, direct.answer) == ("direct", None, "42")
    assert (direct.routed_by, direct.usage["dispatcher"].total_tokens) == ("evidence", 0)
    assert direct.to_dict()["route_confidence"] > 0.9
    assert registry.candidates("acme") == ["What is six times seven?"]
    # The ledger billed every completion to the tenant, and the tool's to the tool.
    assert the_engine.ledger.for_tenant("acme").calls == 3
    assert the_engine.ledger.for_tool("acme", "sort_words").calls == 1


async def test_a_tenant_without_tools_is_answered_directly(
    backend: SandboxBackend, registry: ToolRegistry, tmp_path: Path
) -> None:
    the_engine = engine(backend, registry, tmp_path, user=["So the answer is (B)."])
    solved = await the_engine.solve("nobody", "Which option? (A) x (B) y")
    assert (solved.route, solved.answer) == ("direct", "(B)")
    assert "dispatcher" not in solved.usage  # no tools: no dispatching call


def _sha(source: str) -> str:
    from orchestrator.latm.cards import source_sha256

    return source_sha256(source)


# --- importing a card: proven again, never believed ------------------------------------

IMPORTED_SOURCE = 'def add(a, b):\n    """Add two numbers."""\n    return a + b\n'


def imported_card(**changes: Any) -> str:
    """An ``add`` card claiming 99/99 and a cost, with a second demo whose answer is wrong."""
    demos = [("2 plus 3?", "ans = add(2, 3)", "5"), ("2 plus 2?", "ans = add(2, 2)", "5")]
    card = card_fields(
        IMPORTED_SOURCE,
        "add",
        demos,
        maker="openai:gpt-4o",
        provenance={"cost_usd": 123.0},
        verification={
            "passed": 99,
            "total": 99,
            "cases": [],
            "user": {"model": "local:qwen2.5-coder-0.5b", "correct": 0, "questions": 99},
        },
    )
    card.update(changes)
    return json.dumps(card)


async def test_an_imported_card_is_proven_again_and_its_claims_are_marked(
    backend: SandboxBackend, registry: ToolRegistry, tmp_path: Path
) -> None:
    card = await engine(backend, registry, tmp_path).import_card("acme", imported_card())
    # The platform's own record replaces "verified 99/99"; the demo whose answer is wrong
    # is dropped, so it never reaches the user model's prompt as a worked example.
    assert (card.verification.passed, card.verification.total) == (1, 2)
    assert [case.passed for case in card.verification.cases] == [True, False]
    assert [demo.answer for demo in card.usage_demos] == ["5"]
    assert card.verification.user is None  # the exporter's user check is its word, unchecked
    claims = card.provenance.model_dump()
    assert claims["claimed"] is True  # who made it, at what cost: kept, marked as claimed
    assert claims["cost_usd"] == 123.0
    assert registry.get("acme", "add").verification == card.verification


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"entrypoint": "plus"}, "defines no function 'plus'"),
        (
            {"usage_demos": [{"question": "q", "solution": "ans = add(1, 1)", "answer": "3"}]},
            "none of its 1 usage demos gives its answer",
        ),
        ({"usage_demos": []}, "none of its 0 usage demos"),
    ],
)
async def test_an_import_that_cannot_be_proven_is_refused(
    backend: SandboxBackend,
    registry: ToolRegistry,
    tmp_path: Path,
    changes: dict[str, Any],
    words: str,
) -> None:
    with pytest.raises(InvalidRequest, match=words):
        await engine(backend, registry, tmp_path).import_card("acme", imported_card(**changes))
    assert registry.list("acme") == []
