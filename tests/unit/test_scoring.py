"""Scoring: each family's normalisation on real BBH examples, the family each file gets, and
untrusted values (None, nesting, huge strings) that must score False without raising."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pytest

from orchestrator.errors import InvalidRequest
from orchestrator.latm.scoring import (
    SCORERS,
    Scorer,
    choose_scorer,
    get_scorer,
    parse_options,
)
from orchestrator.latm.tasks import Example, Task, load_task, task_from_examples

BBH = Path(__file__).resolve().parents[2].parent / "shared" / "bbh"

pytestmark = pytest.mark.skipif(not BBH.is_dir(), reason=f"BBH task files not found at {BBH}")

EXPECTED_FAMILY = {
    "boolean_expressions": "exact",
    "causal_judgement": "exact",
    "chinese_remainder_theorem": "numeric",
    "date_understanding": "multiple_choice",
    "disambiguation_qa": "multiple_choice",
    "dyck_languages": "dyck",
    "formal_fallacies": "exact",
    "geometric_shapes": "multiple_choice",
    "hyperbaton": "multiple_choice",
    "logical_deduction_five_objects": "multiple_choice",
    "logical_deduction_seven_objects": "multiple_choice",
    "logical_deduction_three_objects": "multiple_choice",
    "matrixshapes": "shape",
    "movie_recommendation": "multiple_choice",
    "multistep_arithmetic_two": "numeric",
    "navigate": "exact",
    "object_counting": "numeric",
    "penguins_in_a_table": "multiple_choice",
    "reasoning_about_colored_objects": "multiple_choice",
    "ruin_names": "multiple_choice",
    "salient_translation_error_detection": "multiple_choice",
    "schedule_meeting": "schedule",
    "snarks": "multiple_choice",
    "sports_understanding": "exact",
    "temporal_sequences": "multiple_choice",
    "tracking_shuffled_objects_five_objects": "multiple_choice",
    "tracking_shuffled_objects_seven_objects": "multiple_choice",
    "tracking_shuffled_objects_three_objects": "multiple_choice",
    "web_of_lies": "exact",
    "word_sorting": "exact",
}


@cache
def bbh(name: str) -> Task:
    return load_task(BBH / f"{name}.json")


def example(name: str, index: int) -> Example:
    return bbh(name).examples[index]


def scores(family: str, value: object, ex: Example) -> bool:
    return SCORERS[family].matches(value, ex)


# --- the family of every BBH file, and every target against itself -------------------------


def test_every_bbh_file_has_an_expected_family() -> None:
    assert sorted(p.stem for p in BBH.glob("*.json")) == sorted(EXPECTED_FAMILY)


@pytest.mark.parametrize(("name", "family"), sorted(EXPECTED_FAMILY.items()))
def test_choose_scorer_picks_the_family_from_the_data(name: str, family: str) -> None:
    assert choose_scorer(bbh(name)).name == family


@pytest.mark.parametrize("name", sorted(EXPECTED_FAMILY))
def test_every_target_matches_itself_and_not_a_different_answer(name: str) -> None:
    task = bbh(name)
    scorer = choose_scorer(task)
    assert all(scorer.matches(e.target, e) for e in task.examples)
    # Another example's target scores False wherever it is a different answer.
    wrong = 0
    for ex, other in zip(task.examples, task.examples[1:] + task.examples[:1], strict=True):
        if scorer.canonical_target(other) != scorer.canonical_target(ex):
            assert not scorer.matches(other.target, ex), (ex.index, other.target)
            wrong += 1
    assert wrong > 0


def test_the_family_is_chosen_from_data_not_from_the_name() -> None:
    renamed = Task(name="word_sorting", examples=bbh("dyck_languages").examples, source="x")
    assert choose_scorer(renamed).name == "dyck"
    free = task_from_examples("dyck_languages", [("q", "hello world")])
    assert choose_scorer(free).name == "exact"


# --- multiple choice --------------------------------------------------------------------


def test_options_are_parsed_from_a_real_input() -> None:
    assert parse_options(example("date_understanding", 0).input) == (
        ("A", "12/11/1937"),
        ("B", "12/25/1937"),
        ("C", "01/04/1938"),
        ("D", "12/04/1937"),
        ("E", "12/25/2006"),
        ("F", "07/25/1937"),
    )
    assert parse_options(example("navigate", 0).input) == ()  # "- Yes / - No" is not lettered


@pytest.mark.parametrize(
    "value",
    ["(B)", "B", "b", "B)", "B.", " (b) ", "(B", "12/25/1937", " 12/25/1937\n", "(B) 12/25/1937",
     1, ["B"], (1,)],
)  # fmt: skip
def test_multiple_choice_reads_letters_texts_and_0_based_indices(value: object) -> None:
    ex = example("date_understanding", 0)
    assert ex.target == "(B)"
    assert scores("multiple_choice", value, ex)


@pytest.mark.parametrize(
    "value",
    ["(A)", "A", "12/11/1937", "(B) 12/11/1937", 0, 2, -1, 6, 1.0, 2.0, True, "Z",
     "B C", ["B", "C"], [["B"]], {"answer": "B"}, None, ""],
)  # fmt: skip
def test_multiple_choice_refuses_wrong_or_unreadable_values(value: object) -> None:
    assert not scores("multiple_choice", value, example("date_understanding", 0))


def test_an_int_names_the_option_with_that_number_when_options_are_numbers() -> None:
    ex = example("penguins_in_a_table", 2)  # "How many penguins are more than 5 years old?"
    assert [text for _, text in parse_options(ex.input)] == ["1", "2", "3", "4", "5"]
    assert ex.target == "(C)"
    assert scores("multiple_choice", 3, ex)
    assert scores("multiple_choice", "3", ex)
    assert not scores("multiple_choice", 2, ex)  # 2 is the option "2", not index 2


def test_number_word_options_read_an_int_as_the_count() -> None:
    ex = example("reasoning_about_colored_objects", 0)
    assert parse_options(ex.input)[:4] == (
        ("A", "zero"),
        ("B", "one"),
        ("C", "two"),
        ("D", "three"),
    )
    assert ex.target == "(D)"
    assert scores("multiple_choice", 3, ex)
    assert scores("multiple_choice", "Three", ex)
    assert not scores("multiple_choice", 4, ex)


def test_a_bool_answers_yes_no_options() -> None:
    ex = example("reasoning_about_colored_objects", 8)
    assert parse_options(ex.input) == (("A", "yes"), ("B", "no"))
    assert ex.target == "(B)"
    assert scores("multiple_choice", False, ex)
    assert not scores("multiple_choice", True, ex)


def test_free_text_targets_and_ambiguous_option_texts() -> None:
    ex = example("ruin_names", 99)  # options split on commas; the target is the whole name
    assert ex.target == "dearth, wind, & fire"
    scorer = SCORERS["multiple_choice"]
    assert scorer.canonical_target(ex) == "dearth, wind, & fire"
    assert scorer.matches("Dearth,  wind, & fire", ex)
    assert not scorer.matches("(I)", ex)
    assert scorer.normalise("& fire", ex) is None  # options C, F, H and K all read "& fire"
    assert scorer.normalise("dearth", ex) == "(I)"


def test_an_option_text_that_looks_like_a_foreign_letter_is_read_as_text() -> None:
    ex = example("movie_recommendation", 144)
    assert parse_options(ex.input)[0] == ("A", "I")
    assert SCORERS["multiple_choice"].normalise("I", ex) == "(A)"


# --- dyck, numeric, schedule, shape, exact ----------------------------------------------


@pytest.mark.parametrize("value", ["] ]", "]]", " ] ] ", "]\n]", ["]", "]"], ("] ", "]")])
def test_dyck_compares_without_spaces(value: object) -> None:
    ex = example("dyck_languages", 0)
    assert ex.target == "] ]"
    assert scores("dyck", value, ex)


@pytest.mark.parametrize("value", ["]", "]]]", "] )", "]] done", ["]", ["]"]], 0, None, ""])
def test_dyck_refuses_other_sequences(value: object) -> None:
    assert not scores("dyck", value, example("dyck_languages", 0))


@pytest.mark.parametrize("value", ["14687", 14687, 14687.0, "+14687", " 14687 ", "14687.00"])
def test_numeric_compares_as_numbers(value: object) -> None:
    ex = example("chinese_remainder_theorem", 0)
    assert ex.target == "14687"
    assert scores("numeric", value, ex)


@pytest.mark.parametrize(
    "value",
    [14687.5, 14686, "14,687", "1.4687e4", "14687 apricots", True, None, "", [14687],
     pytest.param(10**5000, id="huge"), float("nan"), float("inf"), "9" * 2000],
)  # fmt: skip
def test_numeric_refuses_other_numbers_and_non_numbers(value: object) -> None:
    assert not scores("numeric", value, example("chinese_remainder_theorem", 0))


def test_numeric_handles_negatives_and_fractions() -> None:
    ex = example("multistep_arithmetic_two", 2)
    assert ex.target == "-50"
    assert scores("numeric", -50, ex)
    assert scores("numeric", "-50.0", ex)
    assert not scores("numeric", 50, ex)
    half = task_from_examples("t", [("q", "2.50")]).examples[0]
    assert SCORERS["numeric"].canonical_target(half) == "2.5"
    assert scores("numeric", 2.5, half)


@pytest.mark.parametrize(
    "value",
    ["10:30 - 12:00", "10:30-12:00", "10:30 to 12:00", " 10:30  -  12:00 ", "10:30 \u2013 12:00",
     ("10:30", "12:00"), ["10:30", "12:00"], ["10:30 - 12:00"]],
)  # fmt: skip
def test_schedule_reads_slot_forms(value: object) -> None:
    ex = example("schedule_meeting", 0)
    assert ex.target == "10:30 - 12:00"
    assert scores("schedule", value, ex)


def test_schedule_pads_hours() -> None:
    ex = example("schedule_meeting", 1)
    assert ex.target == "08:30 - 09:00"
    assert scores("schedule", "8:30-9:00", ex)
    assert scores("schedule", ["8:30", "9:00"], ex)


@pytest.mark.parametrize(
    "value",
    ["12:00 - 10:30", "10:30", "10:30 - 12:01", "25:00 - 26:00", "10:60 - 12:00", None, "",
     [], ["10:30", "12:00", "13:00"], [["10:30", "12:00"]], [10.5, 12], "No time slot works."],
)  # fmt: skip
def test_schedule_refuses_other_slots(value: object) -> None:
    assert not scores("schedule", value, example("schedule_meeting", 0))


@pytest.mark.parametrize(
    "value", [None, "", [], "No time slot works.", "no time slot works", "NONE", "No slot.", "n/a"]
)
def test_schedule_reads_no_slot_phrasings(value: object) -> None:
    ex = example("schedule_meeting", 2)
    assert ex.target == "No time slot works."
    assert scores("schedule", value, ex)
    assert not scores("schedule", "10:30 - 12:00", ex)


@pytest.mark.parametrize("value", [[2, 2], (2, 2), "(2,2)", "(2, 2)", "[2, 2]", "(2,2,)"])
def test_shape_reads_tuples_lists_and_text(value: object) -> None:
    ex = example("matrixshapes", 0)
    assert ex.target == "(2,2)"
    assert scores("shape", value, ex)


@pytest.mark.parametrize("value", [[2, 2, 1], [2], [True, 2], ["2", "2"], "2x2", [2.0, 2], None])
def test_shape_refuses_other_shapes(value: object) -> None:
    assert not scores("shape", value, example("matrixshapes", 0))


def test_word_sorting_accepts_a_list_of_words() -> None:
    ex = example("word_sorting", 1)
    words = ex.target.split()
    assert len(words) == 20
    assert scores("exact", words, ex)
    assert scores("exact", tuple(words), ex)
    assert scores("exact", "  " + "\n".join(words) + " ", ex)
    assert not scores("exact", list(reversed(words)), ex)
    assert not scores("exact", [words], ex)
    assert not scores("exact", ",".join(words), ex)


@pytest.mark.parametrize(
    ("name", "index", "right", "wrong"),
    [
        ("boolean_expressions", 1, [True, "True", "true", " TRUE "], [False, "False", 1, "yes"]),
        ("navigate", 3, [True, "Yes", "yes"], [False, "No", "True", 1]),
        ("navigate", 0, [False, "No", "NO"], [True, "Yes", None]),
        ("formal_fallacies", 3, [True, "valid", "Valid"], [False, "invalid"]),
        ("formal_fallacies", 0, [False, "invalid"], [True, "valid"]),
        ("sports_understanding", 1, [True, "yes", "Yes"], [False, "no"]),
    ],
)
def test_boolean_words_ignore_case_and_read_bools(
    name: str, index: int, right: list[object], wrong: list[object]
) -> None:
    ex = example(name, index)
    assert all(scores("exact", value, ex) for value in right)
    assert not any(scores("exact", value, ex) for value in wrong)


def test_exact_prints_numbers_sensibly_and_keeps_case_for_other_words() -> None:
    number, word = task_from_examples("t", [("q", "42"), ("q", "Paris")]).examples
    assert scores("exact", 42, number)
    assert scores("exact", 42.0, number)
    assert not scores("exact", 42.5, number)
    assert scores("exact", " Paris ", word)
    assert not scores("exact", "paris", word)


# --- untrusted values -------------------------------------------------------------------


def deep_list(depth: int) -> list[object]:
    value: list[object] = ["x"]
    for _ in range(depth):
        value = [value]
    return value


ODD_VALUES: list[object] = [
    {},
    {"a": [1, 2]},
    deep_list(100_000),
    [[[["x"]]]],
    "x" * 10_000_000,
    ["x"] * 1_000_000,
    10**10_000,
    -(10**10_000),
    float("nan"),
    float("-inf"),
    object(),
    b"bytes",
]
ONE_OF_EACH = {
    "dyck": ("dyck_languages", 0),
    "multiple_choice": ("date_understanding", 0),
    "numeric": ("chinese_remainder_theorem", 0),
    "schedule": ("schedule_meeting", 0),
    "shape": ("matrixshapes", 0),
    "exact": ("word_sorting", 1),
}


@pytest.mark.parametrize("family", sorted(ONE_OF_EACH))
def test_odd_values_score_false_without_raising(family: str) -> None:
    ex = example(*ONE_OF_EACH[family])
    scorer = SCORERS[family]
    # normalise itself reads none of them, so matches never relies on its own guard.
    assert [scorer.normalise(value, ex) for value in ODD_VALUES] == [None] * len(ODD_VALUES)
    assert [scorer.matches(value, ex) for value in ODD_VALUES] == [False] * len(ODD_VALUES)
    if family != "schedule":  # None means "no slot" there; elsewhere it is no answer
        assert scorer.normalise(None, ex) is None


def test_a_normaliser_that_raises_scores_false() -> None:
    class Fragile(Scorer):
        name = "fragile"

        def fits(self, example: Example) -> bool:
            return True

        def normalise(self, value: object, example: Example) -> str | None:
            if value == "boom":
                raise ValueError("unreadable")
            return value if isinstance(value, str) else None

    ex = task_from_examples("t", [("q", "ok")]).examples[0]
    assert Fragile().matches("ok", ex)
    assert not Fragile().matches("boom", ex)


# --- registry ---------------------------------------------------------------------------


def test_get_scorer_returns_registered_scorers_by_name() -> None:
    assert set(SCORERS) == {"dyck", "multiple_choice", "numeric", "schedule", "shape", "exact"}
    for name, scorer in SCORERS.items():
        assert get_scorer(name) is scorer
        assert scorer.name == name


def test_get_scorer_refuses_an_unknown_name_and_lists_the_known_ones() -> None:
    with pytest.raises(InvalidRequest, match="unknown scorer 'fuzzy'; known scorers: dyck, "):
        get_scorer("fuzzy")


def test_canonical_targets() -> None:
    assert SCORERS["dyck"].canonical_target(example("dyck_languages", 0)) == "]]"
    assert SCORERS["multiple_choice"].canonical_target(example("date_understanding", 0)) == "(B)"
    assert SCORERS["exact"].canonical_target(example("navigate", 0)) == "no"
    assert SCORERS["schedule"].canonical_target(example("schedule_meeting", 2)) == (
        "No time slot works."
    )
