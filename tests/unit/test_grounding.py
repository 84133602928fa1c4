"""Grounding a call in its question, on text: what counts as copied, which near copies are
snapped to the question's stretch (and which are left for the model to fix), and the order
check that tells a run copied from a worked example from one taken from the question."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.latm.grounding import in_question, sentence_order, snap_literals

DYCK = "Complete the rest of the sequence. Input: [ < [ ] ( ) ( { { } } ) < { < > } > ] ( < > )"
FRUIT = "There are five fruits: kiwis, pears, peaches, loquats and apples. Peaches cost most."


@pytest.mark.parametrize(
    ("value", "held"),
    [
        ("peaches", True),
        ("peach", False),  # a word cut short is not the word
        ("kiwis,   pears", True),  # whitespace runs count as one space
        ("[ < [ ]", True),
        ("[<[]", True),  # symbols compare without spaces
        ("[ < < ]", False),
        ("", True),
    ],
)
def test_in_question_needs_whole_words_and_ignores_symbol_spacing(value: str, held: bool) -> None:
    question = FRUIT if any(c.isalnum() for c in value) else DYCK
    assert in_question(value, question) is held


def test_a_dropped_bracket_is_put_back_with_the_question_spacing() -> None:
    written = 'ans = close("[ < [ ] ( ) ( { { } } ) < { < > } > ] ( < )")'
    call, snaps = snap_literals(written, DYCK)
    assert call == 'ans = close("[ < [ ] ( ) ( { { } } ) < { < > } > ] ( < > )")'
    assert [(s.written, s.snapped) for s in snaps] == [
        (
            "[ < [ ] ( ) ( { { } } ) < { < > } > ] ( < )",
            "[ < [ ] ( ) ( { { } } ) < { < > } > ] ( < > )",
        )
    ]


def test_words_cut_short_or_misspelt_are_snapped_each_where_it_is() -> None:
    call, snaps = snap_literals('ans = f(["kiwis", "pear", "loqats"], "Peach")', FRUIT)
    assert call == 'ans = f(["kiwis", "pears", "loquats"], "Peaches")'
    assert len(snaps) == 3


@pytest.mark.parametrize(
    "written",
    [
        'ans = f("bananas")',  # like no word of the question
        'ans = f("pear\\n")',  # an escape: left as written
        "ans = f(r'pear')",  # a prefix: left as written
        'ans = f(f"{x}pear")',
        'ans = f("kiwis pears plums grapes")',  # two of four words changed: too far
        'ans = f("( ( ( (")',  # no stretch of the question is that near
    ],
)
def test_what_is_not_a_near_copy_is_left_for_the_grounding_check(written: str) -> None:
    assert snap_literals(written, FRUIT + " " + DYCK) == (written, [])


def test_a_word_cut_short_is_the_word_the_call_copied_elsewhere() -> None:
    question = "The paragraphs each describe five fruits: kiwis, peaches and apples."
    written = 'ans = f(["kiwis", "peaches"], lambda o: o.index("peach") < 2)'
    call, _ = snap_literals(written, question)
    assert call == written.replace('"peach"', '"peaches"')  # not "each", as near by letters
    # without the list, the word it begins wins over a nearer-looking one
    assert snap_literals('ans = f("peach")', question)[0] == 'ans = f("peaches")'


ARITHMETIC = "((1 - 0 + 1 - 4) - (-3 * 1 - -6 * -8)) ="


@pytest.mark.parametrize(
    ("written", "snapped"),
    [
        # the first bracket cut off, or the last
        ("(1 - 0 + 1 - 4) - (-3 * 1 - -6 * -8))", "((1 - 0 + 1 - 4) - (-3 * 1 - -6 * -8))"),
        ("((1 - 0 + 1 - 4) - (-3 * 1 - -6 * -8)", "((1 - 0 + 1 - 4) - (-3 * 1 - -6 * -8))"),
        # two of each cut off: the fewest put back that balance it
        ("1 - 0 + 1 - 4) - (-3 * 1 - -6 * -8", "(1 - 0 + 1 - 4) - (-3 * 1 - -6 * -8)"),
    ],
)
def test_a_copy_that_cut_a_bracket_run_short_gets_its_brackets_back(
    written: str, snapped: str
) -> None:
    call, snaps = snap_literals(f"ans = f({written!r})", ARITHMETIC)
    assert call == f"ans = f({json.dumps(snapped)})"
    assert [(s.written, s.snapped) for s in snaps] == [(written, snapped)]


@pytest.mark.parametrize(
    ("written", "question"),
    [
        ("[ < [ ] ( ) ( {", "Complete the rest of the sequence. Input: [ < [ ] ( ) ( {"),
        ("1 - 4)", ARITHMETIC),  # no bracket next to where it starts: nothing to put back
        ("(1 - 0 + 1 - 4)", ARITHMETIC),  # balanced already
    ],
)
def test_a_copy_left_open_by_the_question_itself_stays(written: str, question: str) -> None:
    assert snap_literals(f"ans = f({written!r})", question) == (f"ans = f({written!r})", [])


def test_a_word_as_near_to_two_words_is_not_guessed() -> None:
    assert snap_literals('ans = f("cat")', "a bat and a rat") == ('ans = f("cat")', [])


def test_a_call_that_is_not_python_is_left_alone() -> None:
    assert snap_literals('ans = f("pear', FRUIT) == ('ans = f("pear', [])


SWAPS = (
    "Alice has a red ball, Bob has a black ball. First, Claire and Eve swap balls. Then, "
    "Alice and Bob swap balls. Then, Eve and Dave swap balls. Finally, Claire and Alice swap."
)


@pytest.mark.parametrize(
    ("items", "ordered"),
    [
        (["Alice", "red ball", "Bob", "black ball"], True),
        (["Eve", "Claire", "Bob", "Alice", "Dave", "Eve"], True),  # any order within a clause
        (["Claire", "Eve", "Alice", "Bob", "Eve", "Dave", "Claire", "Alice"], True),
        (["Dave", "Alice", "Dave", "Claire"], False),  # a later clause, then an earlier one
        (["Claire", "Claire"], True),  # "Claire" twice: two places in the question
        (["Dave", "Dave"], False),  # "Dave" once: one place cannot stand for two items
    ],
)
def test_sentence_order_reads_clause_by_clause(items: list[str], ordered: bool) -> None:
    assert sentence_order(items, SWAPS) is ordered


def test_a_tie_that_no_stretch_breaks_is_left_alone() -> None:
    """Two stretches as near, neither ending as the literal ends: no guess (a run of the
    bench once crashed here)."""
    assert snap_literals('ans = f("ab zz")', "ab cd, ab ef") == ('ans = f("ab zz")', [])


WORDS = st.sampled_from(["(", ")", "[", "]", "<", ">", "a", "b", "ab", "cd", "x", " ", ","])


@settings(max_examples=300, deadline=None)
@given(
    st.lists(WORDS, max_size=12).map(" ".join),
    st.lists(WORDS, max_size=30).map(" ".join),
)
def test_snapping_never_fails_and_only_ever_copies_the_question(
    literal: str, question: str
) -> None:
    call = f"ans = f({literal!r})"
    snapped, snaps = snap_literals(call, question)
    for snap in snaps:
        assert in_question(snap.snapped, question)
    assert (snapped == call) == (not snaps)
