"""Benchmarks: each writes JSON under bench/results/ and is quoted in the README."""

import json
from pathlib import Path
from typing import Any


def write_report(report: dict[str, Any], out: Path) -> None:
    """Write a benchmark's JSON report, creating its folder."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")


def growth_pct(before: float, after: float) -> float:
    """How much ``after`` is above ``before``, in percent (2 decimals)."""
    return round(100 * (after - before) / before, 2)
