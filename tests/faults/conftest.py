"""Fixtures of the fault-injection suite.

The servers, backends and model endpoint double are the shared ones (``start_api``,
``make_backend``, ``ModelServer``, in ``tests/support``); this folder adds the faults: a
process or container killed mid-call, a Docker engine restarted under load, an
orchestrator killed mid-``MakeTool``, a misbehaving model endpoint, an exhausted pool and
a full disk.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.faults.endpoint import FaultyEndpoint


@pytest.fixture
def endpoint() -> Iterator[FaultyEndpoint]:
    """A started :class:`FaultyEndpoint` on loopback, stopped after the test."""
    with FaultyEndpoint() as server:
        yield server
