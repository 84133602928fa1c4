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


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def backend() -> AsyncIterator[ProcessBackend]:
    """One namespaced process backend shared by a module's tests (one server per tenant)."""
    require_bwrap()
    async with ProcessBackend(ProcessIsolation.BWRAP) as shared:
        yield shared
