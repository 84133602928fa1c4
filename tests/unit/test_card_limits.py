"""Tool cards are bounded field by field and as a whole, and the engine's card cache by
bytes: one tenant's large cards cannot hold the server's memory for every tenant."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from prometheus_client import REGISTRY

from orchestrator.errors import InvalidRequest
from orchestrator.latm.card_cache import CardCache, card_bytes
from orchestrator.latm.cards import MAX_CARD_BYTES, MAX_DEMOS, MAX_TEXT, ToolCard
from tests.support.cards import card_fields

SOURCE = 'def add(a, b):\n    """Add two numbers."""\n    return a + b\n'


def card(**changes: Any) -> dict[str, Any]:
    """The ``add`` card's fields, with ``changes`` replacing top-level ones."""
    demo = ("2 + 3?", "ans = add(2, 3)", "5")
    fields = card_fields(
        SOURCE, "add", [demo], attempts=None, created_at="2026-12-02T00:00:00+00:00"
    )
    return {**fields, **changes}


def demos(count: int, size: int = 10) -> list[dict[str, str]]:
    return [{"question": "q" * size, "solution": "ans = add(2, 3)", "answer": "5"}] * count


def test_a_card_at_each_limit_is_accepted() -> None:
    parsed = ToolCard.from_json(json.dumps(card(usage_demos=demos(MAX_DEMOS, MAX_TEXT))))
    assert len(parsed.usage_demos) == MAX_DEMOS


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"usage_demos": demos(MAX_DEMOS + 1)}, "usage_demos"),
        ({"usage_demos": demos(1, MAX_TEXT + 1)}, "usage_demos.0.question"),
        ({"signature": "s" * (8 * 1024 + 1)}, "signature"),
        (
            {
                "verification": {
                    "passed": 0,
                    "total": 0,
                    "cases": [{"question": "q", "expected": "e", "passed": True}] * 257,
                }
            },
            "verification.cases",
        ),
        ({"provenance": {**card()["provenance"], "note": "x" * MAX_CARD_BYTES}}, "limited to"),
    ],
    ids=["demos", "demo-field", "signature", "cases", "whole-card"],
)
def test_one_over_a_limit_is_refused_clearly(changes: dict[str, Any], words: str) -> None:
    with pytest.raises(InvalidRequest, match=words):
        ToolCard.from_json(json.dumps(card(**changes)))


def parsed(name: str, padding: int = 0) -> ToolCard:
    text = card(name=name, entrypoint=name, description="d" * padding)
    text["source"] = SOURCE.replace("add", name)
    text["provenance"]["sha256"] = hashlib.sha256(text["source"].encode()).hexdigest()
    return ToolCard.from_json(json.dumps(text))


def test_the_card_cache_is_bounded_by_bytes_and_reports_them() -> None:
    size = card_bytes(parsed("tool_0", 3000))
    cache = CardCache(max_bytes=size * 3, max_entries=100)
    for number in range(5):
        cache.put(("acme", f"tool_{number}", None), 0.0, parsed(f"tool_{number}", 3000))
    assert len(cache) == 3
    assert cache.get(("acme", "tool_0", None)) is None  # the least recently used went first
    assert cache.get(("acme", "tool_4", None)) is not None
    assert cache.bytes <= size * 3
    assert REGISTRY.get_sample_value("latm_card_cache_bytes") == cache.bytes
    cache.forget("acme")
    assert (len(cache), cache.bytes) == (0, 0)


def test_a_card_larger_than_the_whole_cache_is_not_kept() -> None:
    cache = CardCache(max_bytes=100, max_entries=100)
    cache.put(("acme", "tool_0", 1), 0.0, parsed("tool_0"))
    assert len(cache) == 0
