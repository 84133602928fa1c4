"""Fixtures that start real sandbox servers (child processes, under bubblewrap)."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from orchestrator.sandboxes.process import ProcessBackend, ProcessIsolation

pytestmark = pytest.mark.integration


def require_bwrap() -> None:
    if shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is not installed (apt-get install bubblewrap)")


# The contract suite runs against every namespaced flavour of the process backend;
# the Docker backend's flavours join this list when it lands.
BACKENDS = [ProcessIsolation.BWRAP, ProcessIsolation.UNSHARE]


@pytest_asyncio.fixture(loop_scope="module", scope="module", params=BACKENDS, ids=str)
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[ProcessBackend]:
    """One backend shared by a module's tests (one sandbox server per tenant)."""
    mode: ProcessIsolation = request.param
    if mode is ProcessIsolation.BWRAP:
        require_bwrap()
    shared = ProcessBackend(mode)
    try:
        yield shared
    finally:
        if request.session.testsfailed:
            for tenant, server in shared._servers.items():
                print(
                    f"sandbox server of tenant {tenant!r} ({mode}), log tail:\n{server.log_tail()}"
                )
        await shared.close()
