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


def test_publishes_at_once_on_different_replicas_never_pass_the_tools_quota(
    postgres: PostgresServer,
) -> None:
    """Eight publishes of eight new tools, released at one moment from four registries
    (as four replicas) on one database, with room for three tools: exactly three are
    stored, the others refused with QuotaExceeded, because a tenant's publishes take
    turns (without it each counted the tools before any other had added one)."""
    from orchestrator.registry import StoreLimits, ToolRegistry
    from tests.support.cards import tool_card

    url = postgres.create_database()
    replicas = [ToolRegistry.open(url) for _ in range(4)]
    limits = StoreLimits(
        tools=3, versions=5, stored_bytes=10_000_000, card_bytes=1_000_000, demos=50, cases=50
    )

    def publish(n: int) -> None:
        name = f"add_{n}"
        source = f'def {name}(a, b):\n    """Add two numbers."""\n    return a + b + {n}\n'
        replicas[n % len(replicas)].publish("acme", tool_card(source, name), limits)

    try:
        assert _at_once(publish, 8) == ["done"] * 3 + ["refused"] * 5
        assert len(replicas[0].list("acme")) == 3
    finally:
        for registry in replicas:
            registry.close()


def test_cases_added_at_once_never_pass_a_tools_case_quota(postgres: PostgresServer) -> None:
    """Twelve different cases for one tool, added at one moment from three registries with
    room for five: five are kept and seven refused, never more kept than the quota."""
    from orchestrator.registry import CaseBook, NewCase, ToolRegistry

    url = postgres.create_database()
    books = [CaseBook(ToolRegistry.open(url)) for _ in range(3)]

    def add(n: int) -> None:
        case = NewCase(tool="add", input=f"{n} + 1?", source="reported", expected=str(n + 1))
        books[n % len(books)].add("acme", case, max_cases=5)

    try:
        assert _at_once(add, 12) == ["done"] * 5 + ["refused"] * 7
        assert len(books[0].suite("acme", "add")) == 5
    finally:
        for book in books:
            book.registry.close()


def _at_once(act: Callable[[int], None], count: int) -> list[str]:
    """Run ``act(0)`` .. ``act(count - 1)`` in threads released at one moment; each
    outcome is "done" or "refused" (QuotaExceeded), sorted."""
    from orchestrator.errors import QuotaExceeded

    start = threading.Barrier(count)

    def run(n: int) -> str:
        start.wait(timeout=30)
        try:
            act(n)
        except QuotaExceeded:
            return "refused"
        return "done"

    with concurrent.futures.ThreadPoolExecutor(count) as pool:
        return sorted(pool.map(run, range(count)))
