"""Reading model-written code as text: the memorisation guard and the tool user's checks."""

from __future__ import annotations

import pytest

from orchestrator.latm.code import call_problems, memorisation, ungrounded
from orchestrator.latm.tasks import Example

NONE = "No time slot works."


def examples(*targets: str) -> list[Example]:
    return [Example(n, f"question {n} about slots", t) for n, t in enumerate(targets)]


def test_an_answer_that_several_examples_share_is_a_category_not_a_memory() -> None:
    source = f"def slot(a, b):\n    return {NONE!r}\n"
    assert memorisation(source, examples("10:30 - 12:00", NONE, NONE)) is None
    found = memorisation(source, examples("10:30 - 12:00", NONE, "08:00 - 08:30"))
    assert found is not None
    assert "expected answer of an example" in found


@pytest.mark.parametrize(
    ("call", "problems"),
    [
        ('ans = f("pear fig")', []),
        ('f("pear fig")', []),  # one expression: its value is the answer
        ('x = f("pear fig")', ["Assign the final answer to `ans`"]),
        ('x = f("pear fig")\nprint(x)', ["Assign the final answer to `ans`"]),
        ('import math\nans = f("pear fig")', ["Do not import anything"]),
        ('def f(w):\n    return w\nans = f("pear fig")', ["Do not define `f` again"]),
        ('ans = f("pear  fig")', []),  # whitespace runs count as one space
        ('ans = f("Pear fig")', ["'Pear fig' is not in the question"]),
        ('ans = f("( [[", "pear")', []),  # symbols: compared without spaces
        ('ans = f("[ ( (", "pear")', ["'[ ( (' is not in the question"]),
        ("", ["Reply with one call of `f`"]),
    ],
)
def test_call_problems_are_read_from_the_text(call: str, problems: list[str]) -> None:
    found = call_problems(call, "f", "Sort: pear fig ( [ [", grounding=True)
    assert len(found) == len(problems)
    for said, expected in zip(found, problems, strict=True):
        assert expected in said


def test_grounding_skips_escapes_and_f_strings() -> None:
    assert ungrounded('ans = f("a\\tb", f"{x}y")', "nothing here") == []
    assert ungrounded("ans = f('zzz')", "nothing here") == [
        "'zzz' is not in the question; copy it exactly."
    ]


def test_arguments_copied_from_a_worked_example_are_sent_back() -> None:
    shown = 'ans = swap({"Al": "x", "Bo": "y"}, [("Al", "Bo"), ("Bo", "Al"), ("Al", "Bo")], "Al")'
    question = "Al has x, Bo has y. First Bo and Al swap, then Al and Bo swap. What has Al?"
    copied = 'ans = swap({"Al": "x", "Bo": "y"}, [("Al", "Bo"), ("Bo", "Al"), ("Al", "Bo")], "Al")'
    found = ungrounded(copied, question, [shown])
    assert len(found) == 1
    assert "copied from a worked example" in found[0]
    own = 'ans = swap({"Al": "x", "Bo": "y"}, [("Bo", "Al"), ("Al", "Bo")], "Al")'
    assert ungrounded(own, question, [shown]) == []
