"""Values cross as JSON only: documented conversions, clear errors, caps."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest

from sandbox import jsonio
from sandbox.errors import ValueConversionError


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ((1, 2), "[1,2]"),
        ({"a": (1, (2, 3))}, '{"a":[1,[2,3]]}'),
        ({3, 1, 2}, "[1,2,3]"),
        (frozenset({"b", "a"}), '["a","b"]'),
        ({1: "x", None: "y", 2.5: "z"}, '{"1":"x","null":"y","2.5":"z"}'),
        ("héllo", '"héllo"'),
        (None, "null"),
    ],
)
def test_documented_conversions(value: Any, expected: str) -> None:
    assert jsonio.encode_result(value, 1000) == expected


def test_mixed_type_set_keeps_its_items() -> None:
    assert sorted(map(str, jsonio.to_jsonable({1, "a"}))) == ["1", "a"]


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (math.nan, "nan, which JSON cannot represent"),
        ({"x": [math.inf]}, "value['x'][0] is inf"),
        (b"bytes", "type bytes, which is not JSON"),
        (Decimal("1.5"), "type Decimal"),
        ([Fraction(1, 3)], "value[0] has type Fraction"),
        (object(), "type object"),
        ({(1, 2): "tuple key"}, "key of type tuple"),
    ],
)
def test_non_json_values_give_clear_errors(value: Any, fragment: str) -> None:
    with pytest.raises(ValueConversionError, match=None) as info:
        jsonio.encode_result(value, 1000)
    assert fragment in str(info.value)


def test_result_cap_names_both_sizes() -> None:
    with pytest.raises(jsonio.ResultTooLarge) as info:
        jsonio.encode_result("x" * 100, 50)
    assert info.value.size == 102
    assert "cap is 50 bytes" in str(info.value)


@pytest.mark.parametrize(
    "value",
    [
        ["x" * 1000] * 200_000,  # 200 MB as JSON, from one string and a list of pointers
        [[None] * 1000] * 10_000,
        {str(n): "y" * 100 for n in range(20_000)},
    ],
)
def test_a_result_far_over_the_cap_stops_at_the_cap(value: Any) -> None:
    with pytest.raises(jsonio.ResultTooLarge, match=r"at least \d+ bytes as JSON; the cap is 6"):
        jsonio.encode_result(value, 65536)


@pytest.mark.parametrize("value", ["x" * 10, [1, 22, None, True, False], {"k": [1.5, "é"]}])
def test_a_result_exactly_at_the_cap_passes(value: Any) -> None:
    size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())
    assert json.loads(jsonio.encode_result(value, size)) == value
    with pytest.raises(jsonio.ResultTooLarge):
        jsonio.encode_result(value, size - 1)


def test_deeply_nested_results_are_refused() -> None:
    value: Any = []
    for _ in range(200):
        value = [value]
    with pytest.raises(ValueConversionError, match="nested deeper"):
        jsonio.encode_result(value, 10_000)


def test_self_referencing_result_is_refused_not_looped() -> None:
    value: list[Any] = []
    value.append(value)
    with pytest.raises(ValueConversionError, match="nested deeper"):
        jsonio.encode_result(value, 10_000)


def test_args_must_be_an_object_of_identifiers() -> None:
    assert jsonio.decode_args('{"x": 1, "words": ["a"]}', 100) == {"x": 1, "words": ["a"]}
    assert jsonio.decode_args("", 100) == {}
    for bad, fragment in [
        ("[1, 2]", "must be a JSON object"),
        ("{not json", "not valid JSON"),
        ('{"_x": 1}', "not a usable variable name"),
        ('{"class": 1}', "not a usable variable name"),
        ('{"a b": 1}', "not a usable variable name"),
        ('{"x": NaN}', None),
    ]:
        if fragment is None:
            assert jsonio.decode_args(bad, 100)  # Python's json accepts NaN on input
            continue
        with pytest.raises(ValueConversionError, match=fragment):
            jsonio.decode_args(bad, 100)


def test_args_size_and_depth_caps() -> None:
    with pytest.raises(ValueConversionError, match="larger than 10 bytes"):
        jsonio.decode_args('{"x": "0123456789"}', 10)
    deep = '{"x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    with pytest.raises(ValueConversionError):
        jsonio.decode_args(deep, 10_000_000)


def test_lone_surrogates_are_refused_with_a_clear_error() -> None:
    """Found by fuzzing: ``chr(0xD800)`` is a str but not Unicode text; sent on, it made
    the server's reply fail to serialize (UNKNOWN) instead of a contract status."""
    with pytest.raises(ValueConversionError, match=r"lone surrogate \('\\ud800'\)"):
        jsonio.encode_result(["fine", "a\ud800b"], 1000)
