"""Attack classes 1-10: escapes from the restricted language, on every backend.

Each payload returns the marker only if its escape worked (most would also call
``getpid`` or read ``os.environ`` on the way). The layers that stop them are the
innermost ones, identical in every backend: the AST policy (``policy_violation``
before anything runs), RestrictedPython's compile-time checks, and the run-time
guards (``policy_violation`` from a GuardError, or a plain ``error`` where the
thing reached for does not exist in the sandbox). The backend matters only for the
health checks after each class: the same server or container keeps serving, and
the other tenant's sandbox is untouched.
"""

from __future__ import annotations

import pytest

from orchestrator.sandboxes import Status
from orchestrator.sandboxes.base import SandboxBackend
from tests.security.conftest import assert_contained, assert_healthy, attack, payload_params
from tests.support.attacks import (
    CLASSES,
    GLOBALS_THIEF,
    LYING_STR,
    REFUSED,
    WRAP_CLOSE,
    Payload,
)

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


async def _all_contained(backend: SandboxBackend, payloads: list[Payload]) -> None:
    """Every payload of one class fails; then the backend is healthy."""
    for name, tool, call in payloads:
        result = await attack(backend, call, tool)
        try:
            assert_contained(result, REFUSED)
        except AssertionError as exc:
            raise AssertionError(f"payload {name!r} was not contained: {exc}") from None
    await assert_healthy(backend)


@pytest.mark.parametrize("attack_class", list(CLASSES))
async def test_language_escape_class_is_contained(
    backend: SandboxBackend, attack_class: str
) -> None:
    """Classes 1-10, one class per test: each payload is refused by the AST policy,
    RestrictedPython or a run-time guard (or finds nothing to reach), never returns
    the marker; the tenant's next call and the other tenant's are normal."""
    await _all_contained(backend, CLASSES[attack_class])


@pytest.mark.parametrize(
    ("tool", "call"),
    payload_params(
        [
            ("lying-str", LYING_STR, WRAP_CLOSE),
            (
                "update-wrapper",
                GLOBALS_THIEF,
                "functools.update_wrapper(thief, typing.cast, assigned=[], updated=['__globals__'])"
                "\nans = 'ESCAPED' + str(thief().modules['os'].getpid())",
            ),
            (
                "userstring",
                "import collections\n",
                "u = collections.UserString\n"
                "ans = 'ESCAPED' + u('{0.__init__.__globals__[_sys].modules[os].environ}')"
                ".format(u('')).data",
            ),
        ]
    ),
)
async def test_escapes_found_by_this_suite_stay_closed(
    backend: SandboxBackend, tool: str, call: str
) -> None:
    """The three escapes this suite found (see SECURITY.md) are refused by a run-time
    guard specifically: a GuardError, reported as ``policy_violation``."""
    result = await attack(backend, call, tool)
    assert_contained(result, {Status.POLICY_VIOLATION})
    assert result.error is not None
    assert result.error.type == "GuardError"


async def test_ordinary_uses_of_the_guarded_features_still_work(backend: SandboxBackend) -> None:
    """The fixes refuse the attacks, not the features: decorators with functools.wraps,
    a tool class's own ``format`` method, str subclasses, ``type()`` of values."""
    tool = (
        "import functools\n"
        "def plus_one(f):\n"
        "    @functools.wraps(f)\n"
        "    def inner(*args):\n"
        "        return f(*args) + 1\n"
        "    return inner\n"
        "@plus_one\n"
        "def base(x):\n"
        "    return x\n"
        "class Report:\n"
        "    def format(self, x):\n"
        "        return f'<{x}>'\n"
        "class Name(str):\n"
        "    def shout(self):\n"
        "        return self.upper()\n"
    )
    call = "ans = [base(1), Report().format(2), Name('ab').shout(), getattr(Name('x'), 'upper')()]"
    result = await attack(backend, call, tool)
    assert (result.status, result.value) == (Status.OK, [2, "<2>", "AB", "X"]), result
