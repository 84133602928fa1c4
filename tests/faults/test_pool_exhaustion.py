"""More concurrent calls than a tenant's docker pool holds, through the real API.

The pool has one container. While it is busy, a caller that waits out the pool's acquire
timeout gets ``PoolExhausted`` (RESOURCE_EXHAUSTED, naming the pool and its size), and a
caller whose own deadline is shorter gets ``DeadlineExceeded`` at that deadline: neither
waits longer, and no extra container is started. Once the busy call ends, the next call is
served; afterwards no container is left.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from orchestrator.config import Settings
from orchestrator.errors import DeadlineExceeded, LatmError, PoolExhausted
from orchestrator.sandboxes import create_backend
from orchestrator.sandboxes.docker import DockerBackend
from orchestrator.sandboxes.docker_options import DockerSettings
from orchestrator.sandboxes.pool import PoolConfig
from tests.support.api import ADD_CARD, FOREVER, SPIN_CARD, StartApi
from tests.support.backends import require_docker
from tests.support.processes import eventually

pytestmark = [pytest.mark.integration, pytest.mark.docker]

ACQUIRE_TIMEOUT_S = 1.0
BUSY_MS = 4000


async def test_pool_exhaustion_gives_a_clear_status_within_the_deadline(
    start_api: StartApi,
) -> None:
    require_docker("runc")
    settings = Settings(
        docker=DockerSettings(
            pool=PoolConfig(min_idle=0, max_size=1, acquire_timeout_s=ACQUIRE_TIMEOUT_S)
        )
    )
    backend = create_backend("docker", settings)
    assert isinstance(backend, DockerBackend)
    api = await start_api(backend=backend)
    async with api.client() as client:
        await client.import_tool(SPIN_CARD)
        await client.import_tool(ADD_CARD)
        busy = asyncio.ensure_future(
            client.execute_tool("spin", {"loops": FOREVER}, timeout_ms=BUSY_MS)
        )
        await eventually(lambda: backend.stats()["busy"] == 1, 30.0, "the pool's one is busy")

        async def timed(timeout_s: float) -> tuple[LatmError, float]:
            started = time.monotonic()
            with pytest.raises(LatmError) as caught:
                await client.execute_tool("add", {"a": 1, "b": 2}, timeout_s=timeout_s)
            return caught.value, time.monotonic() - started

        (waited, waited_s), (short, short_s) = await asyncio.gather(timed(30.0), timed(0.5))
        assert type(waited) is PoolExhausted
        assert "all 1 sandboxes of pool acme-runc stayed busy" in str(waited)
        assert ACQUIRE_TIMEOUT_S <= waited_s < ACQUIRE_TIMEOUT_S + 3.0
        assert type(short) is DeadlineExceeded
        assert short_s < 1.5
        assert len(backend.own_containers()) == 1  # the pool never grew past its size
        assert not busy.done()

        assert (await busy).status == "timeout"  # its limit, not the others' faults
        again = await client.execute_tool("add", {"a": 2, "b": 40})
        assert (again.status, again.value) == ("ok", 42)
        assert backend.stats() == {"idle": 1, "busy": 0}
        executions, _ = api.server.service.quotas.in_flight("acme")
        assert executions == 0
    await api.server.stop(grace_s=1.0)
    assert backend.own_containers() == []
