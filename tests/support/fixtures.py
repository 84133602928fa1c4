"""Fixtures shared by the suites, registered for all of them by ``tests/conftest.py``:
a server started on demand (``start_api``), the model endpoint double
(``model_server``), a private PostgreSQL server (``postgres``, started on first use) and
the session's check that no container was left behind."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from orchestrator.api.server import ApiServer
from tests.support.api import Api, StartApi, start_server
from tests.support.backends import docker_problem
from tests.support.model_server import ModelServer
from tests.support.postgres import postgres

__all__ = ["model_server", "no_container_left_behind", "postgres", "start_api"]


@pytest.fixture(scope="session", autouse=True)
def no_container_left_behind() -> Iterator[None]:
    """After the whole run, no container this process started may remain. (Only
    ours: other orchestrators may share the engine while the suite runs.)"""
    yield
    if docker_problem("runc"):
        return
    import docker

    from orchestrator.sandboxes.docker import LABEL_OWNER, owner_id

    left = docker.from_env().containers.list(
        all=True, filters={"label": f"{LABEL_OWNER}={owner_id()}"}, ignore_removed=True
    )
    assert not left, f"containers left behind: {[c.name for c in left]}"


@pytest_asyncio.fixture
async def start_api(tmp_path: Path) -> AsyncIterator[StartApi]:
    """Start servers on demand; every one is stopped (and its sandboxes removed) after."""
    started: list[ApiServer] = []

    async def start(**options: Any) -> Api:
        api = await start_server(tmp_path / f"api{len(started)}", **options)
        started.append(api.server)
        return api

    yield start
    for server in started:
        if not server.service.draining:
            await server.stop(grace_s=1.0)


@pytest.fixture
def model_server() -> Iterator[ModelServer]:
    """A started :class:`ModelServer`, stopped after the test."""
    with ModelServer() as server:
        yield server


@pytest.fixture
def clean_latm_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No LATM_* variable, ``.env`` or config file of the machine's leaks into settings."""
    for name in list(os.environ):
        if name.upper().startswith("LATM_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
