"""Fixtures that start real sandbox servers: child processes under bubblewrap or
unshare, and hardened Docker containers under runc and gVisor (runsc)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from orchestrator.sandboxes.base import SandboxBackend
from tests.support.backends import BACKEND_PARAMS, close_backend, make_backend

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture(loop_scope="module", scope="module", params=BACKEND_PARAMS)
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[SandboxBackend]:
    """One backend shared by a module's tests (one server or pool per tenant)."""
    shared = make_backend(request.param)
    try:
        yield shared
    finally:
        await close_backend(request, shared)
