"""The process backend's sandbox servers die with their orchestrator, even one killed by
SIGKILL: none is left running, reparented to PID 1."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration


ORCHESTRATOR = """
import asyncio, sys, time
from orchestrator.sandboxes import ExecRequest
from orchestrator.sandboxes.process import ProcessBackend

async def main():
    backend = ProcessBackend(sys.argv[1])
    result = await backend.execute("t", ExecRequest(call="ans = 1 + 1"))
    assert result.value == 2, result
    print(backend.server_pid("t"), flush=True)
    time.sleep(600)

asyncio.run(main())
"""


@pytest.mark.parametrize("mode", ["unshare", "none"])
def test_servers_die_with_an_orchestrator_killed_by_sigkill(mode: str) -> None:
    """A sandbox server started without bwrap (which has --die-with-parent) is killed by
    the kernel when its orchestrator dies, SIGKILL included: none outlives it."""
    orchestrator = subprocess.Popen(
        [sys.executable, "-c", ORCHESTRATOR, mode],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert orchestrator.stdout is not None
        server = int(orchestrator.stdout.readline())
        assert Path(f"/proc/{server}").exists()
    finally:
        orchestrator.send_signal(signal.SIGKILL)
        orchestrator.wait(timeout=10)
    deadline = time.monotonic() + 10
    while _alive(server) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(server), f"sandbox server {server} outlived its orchestrator"


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its reaper does not count)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except OSError:
        return False
