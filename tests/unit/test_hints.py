"""The import hint for a name a tool forgot to import: only where an allowed module
exports it, never a denied or private name."""

from __future__ import annotations

import pytest

from orchestrator.latm.hints import import_hint, import_lines


@pytest.mark.parametrize(
    ("name", "module"),
    [
        ("Optional", "typing"),
        ("Counter", "collections"),
        ("sqrt", "math"),
        ("permutations", "itertools"),
        ("Fraction", "fractions"),
    ],
)
def test_a_name_an_allowed_module_exports_gets_its_import(name: str, module: str) -> None:
    hint = import_hint(f"NameError: name '{name}' is not defined")
    assert f"from {module} import {name}" in hint


def test_an_allowed_module_used_without_import_gets_import() -> None:
    assert "`import math`" in import_hint("NameError: name 'math' is not defined")


@pytest.mark.parametrize(
    "error",
    [
        "NameError: name 'attrgetter' is not defined",  # denied in operator
        "NameError: name 'getpid' is not defined",  # os is not allowed
        "NameError: name 'total_so_far' is not defined",  # the tool's own mistake
        "ZeroDivisionError: division by zero",
    ],
)
def test_no_hint_where_no_allowed_import_would_help(error: str) -> None:
    assert import_hint(error) == ""


def test_the_import_lines_for_a_name_are_the_module_first_then_its_exporter() -> None:
    assert import_lines("NameError: name 'datetime' is not defined") == (
        "datetime",
        ["import datetime", "from datetime import datetime"],
    )
    assert import_lines("NameError: name 'Optional' is not defined") == (
        "Optional",
        ["from typing import Optional"],
    )
    assert import_lines("NameError: name 'getpid' is not defined") is None
    assert import_lines("ZeroDivisionError: division by zero") is None
