"""The Docker engine restarted under load, without restarting the orchestrator.

A private ``dockerd`` (:mod:`tests.faults.dockerd`; the machine's own engine serves other
runs) backs a docker backend behind the real API. With calls in flight, the engine is
killed (SIGKILL) or stopped (SIGTERM), then started again:

* SIGKILL: the containers outlive the engine until the new engine starts and, without live
  restore, kills them: the calls in flight end ``crashed``; a call that needs a new
  container while no engine answers gets ``SandboxUnavailable`` at once.
* SIGTERM: the engine stops its containers gracefully, the sandbox servers drain, and the
  calls in flight run to their own end.

Either way the calls after the restart are served by new containers, the dead ones are
removed, and the orchestrator was never restarted.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from orchestrator.client import AsyncClient, ToolResult
from orchestrator.errors import SandboxUnavailable
from orchestrator.images import sandbox_image_tag
from orchestrator.sandboxes.docker import DockerBackend, DockerOptions
from orchestrator.sandboxes.pool import PoolConfig
from tests.faults.dockerd import PrivateEngine
from tests.support.api import ADD_CARD, Api, StartApi
from tests.support.backends import require_docker
from tests.support.cards import card_json
from tests.support.processes import eventually

pytestmark = [pytest.mark.integration, pytest.mark.docker]

IN_FLIGHT = 3
NAP = '''\
def nap(seconds):
    """Sleep for `seconds` and return them."""
    import time
    time.sleep(seconds)
    return seconds
'''
NAP_CARD = card_json(NAP, "nap", "Sleep for 0 s", "ans = nap(seconds=0)", "0")
FOREVER_S = 3600
DRAINED_MS = 2000  # calls in flight at a graceful stop: well within the servers' 5 s grace


@pytest.fixture(scope="module")
def engine() -> Iterator[PrivateEngine]:
    """A private engine holding the sandbox image; destroyed after the module."""
    require_docker("runc")
    if os.geteuid() != 0 or shutil.which("dockerd") is None:
        pytest.skip("a private Docker engine needs root and dockerd")
    private = PrivateEngine()
    try:
        private.start()
        private.load_image(sandbox_image_tag())
        yield private
    finally:
        private.destroy()


@pytest_asyncio.fixture
async def api(engine: PrivateEngine, start_api: StartApi) -> AsyncIterator[Api]:
    """The API over a docker backend on the private engine (pool of up to 4, none idle);
    its sandboxes may import ``time``, so a call can wait without using CPU."""
    sockets = Path(tempfile.mkdtemp(prefix="latm-faults-"))
    options = DockerOptions(
        pool=PoolConfig(min_idle=0, max_size=IN_FLIGHT + 1, acquire_timeout_s=10.0),
        socket_dir=sockets,
        allow_modules=["time"],
    )
    try:
        backend = DockerBackend(options, client=engine.client())
        try:
            # Calls may last longer than the default quota allows (see LONG_MS).
            yield await start_api(backend=backend, quota_max_timeout_ms=60_000)
        finally:
            await backend.close()
    finally:
        shutil.rmtree(sockets, ignore_errors=True)


# Long enough that no call ends on its own while a slow machine restarts the engine
# (within the client's 60 s deadline).
LONG_MS = 50_000


async def calls_in_flight(
    client: AsyncClient, backend: DockerBackend, timeout_ms: int
) -> list[asyncio.Task[ToolResult]]:
    """``IN_FLIGHT`` calls, each holding a container, that sleep until the sandbox stops
    them at ``timeout_ms``. They use no CPU, so however long a slow machine takes they
    never meet the CPU limit (5 s by default): spinning calls did, and ended ``timeout``
    instead of being cut off by the engine."""
    await client.import_tool(NAP_CARD)
    await client.import_tool(ADD_CARD)
    calls = [
        asyncio.ensure_future(
            client.execute_tool("nap", {"seconds": FOREVER_S}, timeout_ms=timeout_ms)
        )
        for _ in range(IN_FLIGHT)
    ]
    await eventually(lambda: backend.stats()["busy"] == IN_FLIGHT, 60.0, "calls in flight")
    await asyncio.sleep(0.3)
    return calls


async def served_after_restart(api: Api, engine: PrivateEngine) -> None:
    """Calls are served again, by new containers; every dead container is removed."""
    backend = api.server.backend
    assert isinstance(backend, DockerBackend)
    async with api.client() as client:
        results = await asyncio.gather(
            *(client.execute_tool("add", {"a": n, "b": 1}) for n in range(IN_FLIGHT))
        )
    outcomes = [(r.status, r.value) for r in results]
    assert outcomes == [("ok", n + 1) for n in range(IN_FLIGHT)], [r.error for r in results]
    private = engine.client()

    def only_live_containers() -> bool:
        containers = private.containers.list(all=True)
        return all(c.status == "running" for c in containers) and len(containers) <= IN_FLIGHT

    await eventually(only_live_containers, 15.0, "the dead containers are removed")


async def test_engine_killed_and_restarted_under_load(api: Api, engine: PrivateEngine) -> None:
    backend = api.server.backend
    assert isinstance(backend, DockerBackend)
    async with api.client() as client:
        calls = await calls_in_flight(client, backend, LONG_MS)

        await asyncio.to_thread(engine.signal, signal.SIGKILL)
        assert not any(call.done() for call in calls)  # the containers outlive the engine
        started = time.monotonic()
        with pytest.raises(SandboxUnavailable, match="could not start a sandbox container"):
            await client.execute_tool("add", {"a": 1, "b": 2})  # needs a new container
        assert time.monotonic() - started < 3.0

        # Without live restore, the new engine kills the containers it finds running.
        await asyncio.to_thread(engine.start)
        restarted = time.monotonic()
        results = await asyncio.wait_for(asyncio.gather(*calls), 20)
        assert time.monotonic() - restarted < 10.0
        for result in results:  # the template or the server went first: either is said
            assert result.status == "crashed"
            assert result.error is not None
            assert result.error["type"] in ("SandboxCrashed", "SandboxUnavailable")
    await served_after_restart(api, engine)


async def test_engine_stopped_and_restarted_under_load(api: Api, engine: PrivateEngine) -> None:
    backend = api.server.backend
    assert isinstance(backend, DockerBackend)
    async with api.client() as client:
        calls = await calls_in_flight(client, backend, DRAINED_MS)

        # The engine stops every container: their sandbox servers drain first.
        await asyncio.to_thread(engine.signal, signal.SIGTERM)
        results = await asyncio.wait_for(asyncio.gather(*calls), 20)
        # Each call ran to its own end (its time limit), none was cut off by the stop.
        assert [r.status for r in results] == ["timeout"] * IN_FLIGHT, [r.error for r in results]

        await asyncio.to_thread(engine.start)
    await served_after_restart(api, engine)
