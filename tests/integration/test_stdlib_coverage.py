"""What model-written tools really call runs in every sandbox as in CPython.

``tests/corpus/stdlib_coverage.py`` makes the calls tools typically make of every allowed
module (dates parsed and formatted, regexes with groups, decimal rounding, fractions,
statistics, heapq and bisect, json round trips, dataclasses, typing, textwrap, calendar,
unicodedata, codecs, ``str.format``); the sandbox's answers must equal what the same
functions give when this test imports them natively. ``tests/corpus/tools/`` holds tools
written the way a maker model writes them, each with cases (``cases.json``): every case
must run and answer right, on every backend. And a result far over its cap is
``output_limit``, however little memory the tool used to make it.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.sandboxes import ExecRequest, Status
from orchestrator.sandboxes.base import SandboxBackend

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
COVERAGE = CORPUS / "stdlib_coverage.py"
TOOLS = sorted((CORPUS / "tools").glob("*.py"))
CASES: dict[str, list[dict[str, Any]]] = json.loads((CORPUS / "cases.json").read_text())


def native_coverage() -> dict[str, Any]:
    """The coverage calls run by this interpreter, as JSON gives them back."""
    spec = importlib.util.spec_from_file_location("stdlib_coverage", COVERAGE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return json.loads(json.dumps(module.coverage()))


async def test_allowed_modules_answer_as_in_cpython(backend: SandboxBackend) -> None:
    request = ExecRequest(source=COVERAGE.read_text(), entrypoint="coverage", timeout_ms=20_000)
    result = await backend.execute("stdlib", request)
    assert result.status is Status.OK, result.error
    expected = native_coverage()
    assert len(expected) >= 100
    differ = {
        key: {"sandbox": result.value.get(key), "cpython": expected.get(key)}
        for key in sorted(set(expected) | set(result.value))
        if result.value.get(key) != expected.get(key)
    }
    assert differ == {}


@pytest.mark.parametrize("path", TOOLS, ids=[path.stem for path in TOOLS])
async def test_every_corpus_tool_runs_and_answers_right(
    backend: SandboxBackend, path: Path
) -> None:
    cases = CASES[path.stem]
    request = ExecRequest(
        source=path.read_text(),
        call=f"ans = [{path.stem}(**case['args']) for case in cases]",
        args={"cases": cases},
        timeout_ms=20_000,
    )
    result = await backend.execute("corpus", request)
    assert result.status is Status.OK, result.error
    assert result.value == [case["expected"] for case in cases]


@pytest.mark.parametrize(
    "call",
    [
        "ans = ['x' * 1000] * 200_000",  # 200 MB as JSON, from a few hundred KB
        "ans = {str(n): [None] * 1000 for n in range(5000)}",
    ],
)
async def test_a_result_far_over_its_cap_is_output_limit(
    backend: SandboxBackend, call: str
) -> None:
    result = await backend.execute("stdlib", ExecRequest(call=call, memory_mb=64))
    assert result.status is Status.OUTPUT_LIMIT, result.error
    assert result.error is not None
    assert result.error.type == "ResultTooLarge"
    assert "at least" in result.error.message
