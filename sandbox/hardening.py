"""Keep the processes that serve later calls out of a worker's reach.

The sandbox server, its template and the zygote run under the same uid as the
workers they start (in a container there is no other uid to give a worker, and
no capability to change it). The kernel lets a process of the same uid open
another's ``/proc/PID/mem``, ``fd/``, ``environ``, ``maps`` and the like, unless
the target is *not dumpable*: then only a holder of ``CAP_SYS_PTRACE`` may, and
no sandbox process holds any capability. So each of these processes marks itself
non-dumpable as its first act (``exec`` resets the mark; ``fork`` keeps it, so the
zygote and every worker inherit it), and a worker's seccomp filter refuses
``prctl`` (it cannot undo the mark) and every call that sends a signal.
"""

from __future__ import annotations

import ctypes
import os
import signal
from collections.abc import Callable
from functools import cache

PR_SET_PDEATHSIG = 1
PR_GET_DUMPABLE = 3
PR_SET_DUMPABLE = 4


@cache
def libc_prctl() -> Callable[..., int] | None:
    """libc's ``prctl``, resolved once (the template's copy is inherited by its forks);
    None where there is none. The seccomp installer uses it too."""
    try:
        function: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return function


def make_undumpable() -> bool:
    """Mark this process non-dumpable; False where the kernel refuses (not on Linux)."""
    prctl = libc_prctl()
    return prctl is not None and prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0


def is_dumpable() -> bool:
    prctl = libc_prctl()
    return prctl is None or prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 1


def die_with_parent(parent: int) -> None:
    """Be killed when ``parent`` (the process that forked this one) exits, even while
    stopped: a zygote dies with its template, a worker with its zygote. If the parent
    is already gone, exit now."""
    prctl = libc_prctl()
    if prctl is not None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(70)
