"""Tool cards for the tests and the benchmarks: one builder of the ``latm.tool/v1`` form,
as fields, as JSON text (what ``ImportTool`` takes) or as a :class:`ToolCard`.

No pytest here: ``bench/`` imports this module.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from orchestrator.latm.cards import ToolCard

CREATED_AT = "2026-11-23T00:00:00+00:00"
Demo = tuple[str, str, str]  # (question, solution, answer)

SORT_SOURCE = "def sort_words(text):\n    return ' '.join(sorted(text.split()))\n"


def card_fields(
    source: str,
    name: str,
    demos: Iterable[Demo] = (),
    *,
    description: str | None = None,
    maker: str = "import",
    attempts: int | None = 1,
    created_at: str = CREATED_AT,
    provenance: Mapping[str, Any] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """The fields of a card whose entrypoint ``name`` is defined in ``source``, verified
    1/1. ``description`` defaults to the source's docstring; ``attempts=None`` leaves
    that provenance field out; ``provenance`` adds provenance fields and ``fields``
    replace top-level ones."""
    made: dict[str, Any] = {"maker": maker}
    if attempts is not None:
        made["attempts"] = attempts
    made |= {"created_at": created_at, "sha256": hashlib.sha256(source.encode()).hexdigest()}
    card = {
        "format": "latm.tool/v1",
        "name": name,
        "description": source.split('"""')[1] if description is None else description,
        "source": source,
        "entrypoint": name,
        "usage_demos": [
            {"question": question, "solution": solution, "answer": answer}
            for question, solution, answer in demos
        ],
        "verification": {"passed": 1, "total": 1, "cases": []},
        "provenance": made | dict(provenance or {}),
    }
    return card | fields


def card_json(
    source: str, name: str, question: str, solution: str, answer: str, **options: Any
) -> str:
    """A card with one usage demo, as the JSON text ``ImportTool`` takes; ``options`` go
    to :func:`card_fields`."""
    return json.dumps(card_fields(source, name, [(question, solution, answer)], **options))


def tool_card(source: str, name: str, demos: Iterable[Demo] = (), **options: Any) -> ToolCard:
    """A validated card (see :func:`card_fields` for ``options``)."""
    return ToolCard.model_validate(card_fields(source, name, demos, **options))


def make_card(name: str = "sort_words", source: str = SORT_SOURCE, **changes: Any) -> ToolCard:
    """A small, valid ``sort_words`` card named ``name``, as the registry stores it;
    ``changes`` override its fields."""
    fields = card_fields(
        source,
        "sort_words",
        [("sort b a", "ans = sort_words('b a')", "a b")],
        description=f"{name}: sorts the words of a text",
        maker="scripted:x",
        created_at="2025-01-01T00:00:00Z",
    )
    fields |= {"name": name, "signature": "sort_words(text: str) -> str", "task": "word_sorting"}
    return ToolCard.model_validate(fields | changes)
