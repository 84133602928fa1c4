"""The restricted language in this process, for the unit tests of its layers: the
shipped allow-list, its guarded environment, and running a tool and a call through
them."""

from __future__ import annotations

from typing import Any

from sandbox.guards import Environment
from sandbox.policy import default_allowlist
from sandbox.restricted import compile_call, compile_tool

ALLOWLIST = default_allowlist()
ENV = Environment(ALLOWLIST)


def run_tool(source: str, call: str) -> Any:
    """Compile and run in this process: test payloads only, written in the tests."""
    namespace = ENV.new_globals()
    exec(compile_tool(source, ALLOWLIST), namespace)
    compiled = compile_call(call, ALLOWLIST)
    if compiled.is_expression:
        return eval(compiled.code, namespace)
    exec(compiled.code, namespace)
    return namespace["ans"]
