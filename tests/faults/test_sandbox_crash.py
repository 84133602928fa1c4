"""A sandbox killed in the middle of a call, through the real API.

Process backend: the sandbox server process (inside bubblewrap) gets SIGKILL by pid. Docker
backend: the container is killed through the Docker SDK, under runc and under gVisor (whose
transport is the reverse tunnel). The caller gets the contract's ``crashed`` status with
``SandboxUnavailable`` (not a hang, not an INTERNAL error), nothing of the dead sandbox is
left running, and the next call of the same tenant is served by a new sandbox.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest

from orchestrator.config import Settings
from orchestrator.sandboxes import create_backend
from orchestrator.sandboxes.docker import DockerBackend
from orchestrator.sandboxes.docker_options import DockerSettings
from orchestrator.sandboxes.pool import PoolConfig
from orchestrator.sandboxes.process import ProcessBackend
from tests.support.api import ADD_CARD, FOREVER, SPIN_CARD, StartApi
from tests.support.backends import require_docker
from tests.support.processes import alive, descendants, eventually

pytestmark = pytest.mark.integration

CALL_MS = 20_000  # the spinning call's own limit: far beyond the kill


def sandbox_server(backend: ProcessBackend, tenant: str) -> int:
    """The pid of the tenant's sandbox server: the python below bubblewrap that listens."""
    wrapper = backend.server_pid(tenant)
    assert wrapper is not None
    for pid in descendants(wrapper):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"sandbox" in command and b"--listen" in command:
            return pid
    pytest.fail(f"no sandbox server below pid {wrapper}")


async def test_process_sandbox_killed_mid_call(start_api: StartApi) -> None:
    api = await start_api()
    backend = api.server.backend
    assert isinstance(backend, ProcessBackend)
    async with api.client() as client:
        await client.import_tool(SPIN_CARD)
        await client.import_tool(ADD_CARD)
        assert (await client.execute_tool("add", {"a": 1, "b": 1})).value == 2
        wrapper = backend.server_pid("acme")
        assert wrapper is not None
        server = sandbox_server(backend, "acme")
        call = asyncio.ensure_future(
            client.execute_tool("spin", {"loops": FOREVER}, timeout_ms=CALL_MS)
        )
        await asyncio.sleep(0.5)
        assert not call.done()
        family = descendants(wrapper) | {wrapper}
        os.kill(server, signal.SIGKILL)
        killed = time.monotonic()

        result = await asyncio.wait_for(call, 10)
        assert time.monotonic() - killed < 5.0  # at once, not at the call's 20 s limit
        assert result.status == "crashed"
        assert result.error is not None
        assert result.error["type"] == "SandboxUnavailable"
        # Nothing of that sandbox survives it: no template, no worker still spinning.
        await eventually(
            lambda: not any(alive(pid) for pid in family), 5.0, "the sandbox's processes exit"
        )

        again = await client.execute_tool("add", {"a": 2, "b": 40})
        assert (again.status, again.value) == ("ok", 42)
        assert backend.server_pid("acme") not in (None, wrapper)


@pytest.mark.docker
@pytest.mark.parametrize("runtime", ["runc", "runsc"])
async def test_docker_sandbox_killed_mid_call(start_api: StartApi, runtime: str) -> None:
    require_docker(runtime)
    one = PoolConfig(min_idle=0, max_size=1)  # one container: the busy one
    settings = Settings(docker=DockerSettings(pool=one))
    backend = create_backend("docker", settings, runtime)
    assert isinstance(backend, DockerBackend)
    api = await start_api(backend=backend)
    async with api.client() as client:
        await client.import_tool(SPIN_CARD)
        await client.import_tool(ADD_CARD)
        call = asyncio.ensure_future(
            client.execute_tool("spin", {"loops": FOREVER}, timeout_ms=CALL_MS)
        )
        await eventually(lambda: backend.stats()["busy"] == 1, 30.0, "the call takes a sandbox")
        await asyncio.sleep(0.5)
        assert not call.done()
        [container] = backend.own_containers()
        await asyncio.to_thread(container.kill)
        killed = time.monotonic()

        result = await asyncio.wait_for(call, 10)
        assert time.monotonic() - killed < 5.0  # at once, not at the call's 20 s limit
        assert result.status == "crashed"
        assert result.isolation == f"docker+{runtime}"
        assert result.error is not None
        assert result.error["type"] == "SandboxUnavailable"

        again = await client.execute_tool("add", {"a": 2, "b": 40})
        assert (again.status, again.value) == ("ok", 42)
        # The dead container was removed and replaced, never handed out again.
        ids = {c.id for c in backend.own_containers()}
        assert container.id not in ids
        assert len(ids) == 1
