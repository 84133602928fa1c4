"""The sandbox server's handle on its template: a template that dies is said as such."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from sandbox.supervisor import TemplateDied, TemplateSupervisor


def dead(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"


async def test_a_request_written_to_a_template_that_just_died_fails_as_template_died() -> None:
    supervisor = TemplateSupervisor(prefork=0)
    await supervisor.start()
    try:
        pid = supervisor.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        # Block the loop until it is gone: its reader has not seen the end of the stream,
        # so the request is written to a socket whose other end is closed.
        deadline = time.monotonic() + 10
        while not dead(pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        with pytest.raises(TemplateDied):
            await supervisor.request({"op": "ping"})
    finally:
        await supervisor.close()
