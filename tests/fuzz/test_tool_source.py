"""Fuzzing tool source and call code through the backends' public API, on every flavour.

Sources come from Python's grammar (valid syntax, mostly nonsense) and from realistic
tools broken on purpose: cut short, spliced with random bytes and odd characters,
nested past the parser's limits, swollen with huge literals. Whatever the text, the
platform answers with one of the contract's statuses (or refuses, as InvalidRequest,
exactly the requests it documents as malformed), and the tenant's next known-good
call works.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.sandboxes import ExecRequest
from orchestrator.sandboxes.base import SandboxBackend
from tests.fuzz.conftest import (
    TIMEOUT_S,
    assert_tenant_served,
    fuzz_settings,
    run_fuzzed,
    with_examples,
)
from tests.fuzz.strategies import (
    SEED_CALLS,
    SEED_SOURCES,
    grammar_python,
    grammar_statements,
    mutated_python,
)
from tests.support.backends import TOOL

pytestmark = [
    pytest.mark.integration,
    pytest.mark.asyncio(loop_scope="package"),
    pytest.mark.timeout(TIMEOUT_S),
    pytest.mark.filterwarnings("ignore::SyntaxWarning"),  # hypothesmith compiles what it makes
]

CALL_TIMEOUT_MS = 2000


def _call_code() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(["ans = 1", *SEED_CALLS]), grammar_statements())


@fuzz_settings(40)
@with_examples(
    [{"source": TOOL, "call": call} for call in SEED_CALLS]
    + [{"source": source, "call": "ans = 1"} for source in SEED_SOURCES]
)
@given(source=grammar_python(), call=_call_code())
async def test_grammar_made_tools(backend: SandboxBackend, source: str, call: str) -> None:
    await run_fuzzed(backend, ExecRequest(source=source, call=call, timeout_ms=CALL_TIMEOUT_MS))
    await assert_tenant_served(backend)


@fuzz_settings(50)
@given(source=mutated_python())
async def test_mutated_tools(backend: SandboxBackend, source: str) -> None:
    await run_fuzzed(
        backend, ExecRequest(source=source, call="ans = 1", timeout_ms=CALL_TIMEOUT_MS)
    )
    await assert_tenant_served(backend)


@fuzz_settings(40)
@given(call=st.one_of(mutated_python(), grammar_python()).filter(str.strip))
async def test_mutated_call_code(backend: SandboxBackend, call: str) -> None:
    await run_fuzzed(backend, ExecRequest(source=TOOL, call=call, timeout_ms=CALL_TIMEOUT_MS))
    await assert_tenant_served(backend)
