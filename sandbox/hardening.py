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

PR_SET_DUMPABLE = 4
PR_GET_DUMPABLE = 3


def make_undumpable() -> bool:
    """Mark this process non-dumpable; False where the kernel refuses (not on Linux)."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return False
    return int(prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)) == 0


def is_dumpable() -> bool:
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    return int(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0)) == 1
