"""A tool's input schema: read from the function in the sandbox (``sandbox.schema``),
checked as untrusted data in the orchestrator (``orchestrator.latm.schemas``), and an
optional part of the card format."""

from __future__ import annotations

import json
from typing import Any

import pytest

from orchestrator.errors import InvalidRequest
from orchestrator.latm.cards import ToolCard
from orchestrator.latm.schemas import checked_schema
from sandbox.schema import input_schema
from tests.support.api import ADD_CARD


def typed(a: int, b: float, c: str, d: bool, e: list[int], f: dict[str, float]) -> None:
    """Every annotation the mapping knows."""


def loose(  # type: ignore[no-untyped-def]
    x, y: tuple[int, ...], z: int | None = None, *rest: Any, w: str = "w", **more: Any
):
    """No annotation, variadics, defaults."""


def test_annotations_map_to_json_schema_types() -> None:
    schema = input_schema(typed)
    assert schema["required"] == ["a", "b", "c", "d", "e", "f"]
    assert schema["additionalProperties"] is False
    assert schema["properties"] == {
        "a": {"type": "integer"},
        "b": {"type": "number"},
        "c": {"type": "string"},
        "d": {"type": "boolean"},
        "e": {"type": "array", "items": {"type": "integer"}},
        "f": {"type": "object", "additionalProperties": {"type": "number"}},
    }


def test_defaults_variadics_and_missing_annotations() -> None:
    schema = input_schema(loose)
    assert schema["required"] == ["x", "y"]
    assert schema["additionalProperties"] is True  # **more
    assert schema["properties"]["x"] == {}
    assert schema["properties"]["y"] == {"type": "array", "items": {"type": "integer"}}
    assert schema["properties"]["z"] == {
        "anyOf": [{"type": "integer"}, {"type": "null"}],
        "default": None,
    }
    assert schema["properties"]["w"] == {"type": "string", "default": "w"}
    assert "rest" not in schema["properties"]


def test_string_annotations_are_read_by_name_not_evaluated() -> None:
    def later(a: "int", b: "list[str]", c: "__import__('os')") -> None:  # type: ignore[valid-type]  # noqa: UP037
        """Annotations as text."""

    properties = input_schema(later)["properties"]
    assert properties == {
        "a": {"type": "integer"},
        "b": {"type": "array", "items": {"type": "string"}},
        "c": {},
    }


def test_the_orchestrator_keeps_only_the_known_vocabulary() -> None:
    schema = input_schema(typed)
    assert checked_schema(json.loads(json.dumps(schema))) == schema
    for hostile in (
        {"type": "object", "properties": {"a": {"pattern": "(a+)+$"}}},
        {"type": "object", "$ref": "http://example.com/schema"},
        {"type": "string"},
        {"type": "object", "properties": {"not a name": {}}},
        {"type": "object", "required": ["x" * 100]},
        ["type", "object"],
    ):
        with pytest.raises(InvalidRequest):
            checked_schema(hostile)
    deep: dict[str, Any] = {"type": "array"}
    for _ in range(20):
        deep = {"type": "array", "items": deep}
    with pytest.raises(InvalidRequest, match="deep"):
        checked_schema({"type": "object", "properties": {"a": deep}})


def test_cards_without_a_schema_still_load_and_with_one_round_trip() -> None:
    card = ToolCard.from_json(ADD_CARD)
    assert card.input_schema is None
    schema = {"type": "object", "properties": {"a": {}, "b": {}}, "required": ["a", "b"]}
    again = ToolCard.from_json(card.model_copy(update={"input_schema": schema}).to_json())
    assert again.input_schema == schema
    bad = json.loads(ADD_CARD) | {"input_schema": {"type": "object", "$ref": "#"}}
    with pytest.raises(InvalidRequest, match="input_schema"):
        ToolCard.from_json(json.dumps(bad))
