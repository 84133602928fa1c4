"""The caller's deadline, carried down to the sandbox and model calls of its request.

The API layer opens a :func:`deadline_scope` from the client's gRPC deadline; the sandbox
backend clamps every call's wall-clock limit to what is left, so a tool that would spin past
the deadline is killed by the sandbox itself, and the caller is never kept waiting.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Iterator

from orchestrator.errors import DeadlineExceeded

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "latm_deadline", default=None
)


@contextlib.contextmanager
def deadline_scope(timeout_s: float | None) -> Iterator[None]:
    """Work in this block must end within ``timeout_s`` (None: no deadline). A nested
    scope can only shorten the deadline of its enclosing one."""
    if timeout_s is None:
        yield
        return
    deadline = time.monotonic() + timeout_s
    outer = _deadline.get()
    token = _deadline.set(deadline if outer is None else min(outer, deadline))
    try:
        yield
    finally:
        _deadline.reset(token)


def remaining_s() -> float | None:
    """Seconds left before the current deadline, or None without one."""
    deadline = _deadline.get()
    return None if deadline is None else deadline - time.monotonic()


def clamp_timeout_ms(timeout_ms: int) -> int:
    """``timeout_ms`` (0: the sandbox's default) cut to the time left before the deadline.

    Raises:
        DeadlineExceeded: the deadline has passed already.
    """
    left = remaining_s()
    if left is None:
        return timeout_ms
    left_ms = int(left * 1000)
    if left_ms <= 0:
        raise DeadlineExceeded("the caller's deadline passed before the sandbox call started")
    return left_ms if timeout_ms == 0 else min(timeout_ms, left_ms)
