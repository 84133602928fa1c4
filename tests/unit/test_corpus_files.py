"""The model-style tool corpus that ``tests/integration/test_stdlib_coverage.py`` runs in
every sandbox: large enough to mean something, and every tool has cases to answer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CORPUS = Path(__file__).resolve().parents[1] / "corpus"


def test_the_corpus_is_large_and_every_tool_has_cases() -> None:
    tools = sorted((CORPUS / "tools").glob("*.py"))
    cases: dict[str, list[dict[str, Any]]] = json.loads((CORPUS / "cases.json").read_text())
    assert len(tools) >= 60
    assert {path.stem for path in tools} == set(cases)
    assert all(len(examples) >= 2 for examples in cases.values())
