"""The sandbox's ``eval``: literal expressions computed by walking their tree, as CPython's
``eval`` computes them; anything that would look a name up, reach an attribute or call
something is refused with what it does compute."""

from __future__ import annotations

import pytest

from sandbox.expressions import MAX_DEPTH, MAX_EXPRESSION_CHARS, evaluate

SAME_AS_PYTHON = [
    "((-1 + 2 + 9 * 5) - (-2 + -4 + -4 * -7))",
    "7 // 2 + 7 % 3 - 2 ** 10 / 4",
    "  3 * (4 - 1)",
    "not ( True ) and ( True )",
    "True and not not ( not False )",
    "False or 0 or [] or 'last'",
    "1 and 0 and 2",
    "1 < 2 <= 2 != 3",
    "3 > 2 > 5",
    "'a' in 'cat' and 4 not in (1, 2)",
    "None is None is not False",
    "~5 | 3 ^ 1 & 7 << 2 >> 1",
    "'ab' * 3 + 'c'",
    "[1, 2] + [3]",
    "{1: 'x', 'k': (2, 3)}",
    "{1, 2, 2}",
    "'yes' if 2 > 1 else 'no'",
    "-2.5e3 + 1j",
    "b'ab' + b'c'",
    "10 % 4 == 2",
]


@pytest.mark.parametrize("text", SAME_AS_PYTHON)
def test_literal_expressions_give_what_cpython_gives(text: str) -> None:
    assert evaluate(text) == eval(text)  # the reference, on trusted test literals


def test_bytes_are_read_as_utf8_text() -> None:
    assert evaluate(b"2 * 21") == 42


@pytest.mark.parametrize(
    ("text", "error", "message"),
    [
        ("x + 1", NameError, "name 'x' is not defined"),
        ("__import__('os')", ValueError, "call is not supported"),
        ("().__class__", ValueError, "attribute is not supported"),
        ("(1).real", ValueError, "attribute is not supported"),
        ("[1, 2][0]", ValueError, "subscript is not supported"),
        ("[c for c in 'ab']", ValueError, "listcomp is not supported"),
        ("lambda: 1", ValueError, "lambda is not supported"),
        ("(y := 2)", ValueError, "namedexpr is not supported"),
        ("f'{1}'", ValueError, "joinedstr is not supported"),
        ("{**{}}", ValueError, "dict is not supported"),
        ("x = 1", SyntaxError, "invalid syntax"),
        ("1 +", SyntaxError, "invalid syntax"),
    ],
)
def test_what_it_does_not_compute_is_refused_clearly(
    text: str, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        evaluate(text)


def test_a_namespace_argument_is_refused() -> None:
    with pytest.raises(TypeError, match="only the expression text"):
        evaluate("1", {"__builtins__": {}})
    with pytest.raises(TypeError, match="must be a string"):
        evaluate(42)


def test_deep_or_long_expressions_are_refused_without_crashing() -> None:
    with pytest.raises(ValueError, match=f"deeper than {MAX_DEPTH}"):
        evaluate("-" * 300 + "1")
    with pytest.raises(ValueError, match="longer than"):
        evaluate("1+" * MAX_EXPRESSION_CHARS + "1")
    with pytest.raises((ValueError, SyntaxError)):
        evaluate("(" * 1000 + "1" + ")" * 1000)


def test_operator_errors_are_python_s_own() -> None:
    with pytest.raises(ZeroDivisionError):
        evaluate("1 / 0")
    with pytest.raises(TypeError):
        evaluate("'a' + 1")
    with pytest.raises(TypeError):
        evaluate("{[1]: 2}")
