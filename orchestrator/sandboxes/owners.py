"""Which orchestrator process started a sandbox, and whether that process is gone.

Backends label what they start with :func:`owner_id`; a later start removes what
belongs to owners that :func:`owner_is_gone` says have died (their orphans).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

__all__ = ["owner_id", "owner_is_gone", "start_time"]


def owner_id(pid: int | None = None) -> str:
    """This process, as ``HOST/PID/START`` (the start time tells a reused pid apart)."""
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}/{pid}/{start_time(pid)}"


def start_time(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return "?"


def owner_is_gone(owner: str) -> bool:
    """True when ``owner`` was a process of this host that no longer runs."""
    try:
        host, pid, start = owner.split("/")
    except ValueError:
        return False  # not ours to judge
    if host != socket.gethostname():
        return False  # another host sharing this engine: it cleans its own
    return not pid.isdigit() or start_time(int(pid)) != start
