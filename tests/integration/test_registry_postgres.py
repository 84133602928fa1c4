"""The registry contract on a real PostgreSQL: a private server for this session, reached
only through a Unix socket in a temporary folder (no TCP), with a fresh database per test."""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable

import pytest

from tests.support.postgres import PostgresServer
from tests.support.registry import RegistryContract

pytestmark = pytest.mark.integration


class TestPostgresRegistry(RegistryContract):
    @pytest.fixture
    def new_database_url(self, postgres: PostgresServer) -> Callable[[], str]:
        return postgres.create_database


def test_replicas_starting_at_once_on_a_new_database_migrate_it_once(
    postgres: PostgresServer,
) -> None:
    """Several replicas' first start on one new database: each opens the registry at the
    same moment; exactly one runs the migrations (an advisory lock serialises them), the
    others find the schema at its newest revision, and all of them can serve."""
    from sqlalchemy import text

    from orchestrator.registry import ToolRegistry
    from tests.support.cards import tool_card

    url = postgres.create_database()
    replicas = 4
    start = threading.Barrier(replicas)

    def first_start(_: int) -> ToolRegistry:
        start.wait(timeout=30)
        return ToolRegistry.open(url)

    pool = concurrent.futures.ThreadPoolExecutor(replicas)
    starting = [pool.submit(first_start, n) for n in range(replicas)]
    pool.shutdown(wait=False)  # a start that never ends fails the test below, not the run
    opened = [future.result(timeout=60) for future in starting]
    try:
        source = 'def add(a, b):\n    """Add two numbers."""\n    return a + b\n'
        opened[0].publish("acme", tool_card(source, "add"))
        assert all([t.name for t in registry.list("acme")] == ["add"] for registry in opened)
        with opened[1]._engine.connect() as connection:
            versions = connection.execute(text("SELECT version_num FROM alembic_version")).all()
        assert len(versions) == 1
    finally:
        for registry in opened:
            registry.close()
