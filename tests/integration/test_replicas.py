"""Replicas, for real: three ``latm serve`` processes on one PostgreSQL behind nginx
(``grpc_pass``), all started by this module. A tenant's rate quota and concurrency slots
hold across replicas, a SIGKILLed replica's slots free themselves, a key revoked on one is
refused by all, a tool imported through one is callable through the others at once,
killing or draining a replica under load loses no acknowledged write, and three first
starts on a new database migrate it once. A second ``latm serve`` on one SQLite file is
refused.

The replicas keep API keys for a minute (``LATM_API_KEY_CACHE_S=60``) and hold slot
leases of two seconds (``LATM_QUOTA_LEASE_S=2``): what they see sooner than that, they
heard from each other.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from latm.orchestrator.v1 import orchestrator_pb2 as pb
from sqlalchemy import text

from orchestrator.client import AsyncClient
from orchestrator.errors import QuotaExceeded, ToolNotFound, Unauthenticated, Unavailable
from orchestrator.registry import ToolRegistry
from orchestrator.registry._engine import MIGRATIONS
from orchestrator.registry.tenants import TenantStore
from tests.support.api import ADD, ADD_CARD, FOREVER, SECOND, SPIN_CARD
from tests.support.cards import card_json
from tests.support.cli import latm
from tests.support.nginx import Nginx, start_nginx
from tests.support.postgres import PostgresServer
from tests.support.replicas import Replicas

pytestmark = pytest.mark.integration

T = TypeVar("T")
LEASE_S = 2.0
REPLICAS = 3


class Cluster:
    """The replicas, nginx in front of them, and the database they share."""

    def __init__(self, replicas: Replicas, nginx: Nginx, url: str) -> None:
        self.replicas = replicas
        self.nginx = nginx
        self.url = url
        self.registry = ToolRegistry.open(url)
        self.tenants = TenantStore(self.registry)

    def client(self, key: str, index: int | None = None) -> AsyncClient:
        """A client of replica ``index``, or of nginx (None)."""
        target = self.nginx.address if index is None else self.replicas[index].address
        return AsyncClient(target, key, timeout_s=60)

    def scalar(self, sql: str, **values: Any) -> Any:
        with self.registry.engine.connect() as connection:
            return connection.execute(text(sql), values).scalar()


@pytest.fixture(scope="module")
def cluster(
    postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory, request: Any
) -> Iterator[Cluster]:
    url = postgres.create_database()  # new: the replicas' first starts migrate it
    folder = tmp_path_factory.mktemp("replicas")
    settings = {
        "LATM_API_KEY_CACHE_S": "60",
        "LATM_QUOTA_LEASE_S": str(LEASE_S),
        "LATM_SHUTDOWN_GRACE_S": "30",
    }
    replicas = Replicas(folder, url, REPLICAS, settings)
    nginx: Nginx | None = None
    started: Cluster | None = None
    try:
        replicas.start()  # all at once
        nginx = start_nginx(folder / "nginx", replicas.addresses)
        started = Cluster(replicas, nginx, url)
        yield started
    finally:
        if request.session.testsfailed:
            print(replicas.log_tails())
            if nginx is not None:
                print(f"--- nginx error log tail:\n{nginx.log_tail()}")
        if nginx is not None:
            nginx.stop()
        replicas.stop_all()
        if started is not None:
            started.registry.close()


@pytest.fixture
def replicas(cluster: Cluster) -> Cluster:
    """The cluster with every replica running (a test before may have stopped one)."""
    cluster.replicas.ensure_running()
    return cluster


async def retried(call: Callable[[], Awaitable[T]], retries: list[str], budget_s: float = 30) -> T:
    """``call()``, tried again while it fails UNAVAILABLE (a replica dying or draining),
    as a client behind a load balancer does; each retry's reason goes to ``retries``."""
    deadline = time.monotonic() + budget_s
    while True:
        try:
            return await call()
        except Unavailable as exc:
            if time.monotonic() > deadline:
                raise
            retries.append(str(exc)[:120])
            await asyncio.sleep(0.05)


def test_concurrent_first_starts_migrate_a_new_database_once(replicas: Cluster) -> None:
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    head = ScriptDirectory.from_config(config).get_current_head()
    assert replicas.scalar("SELECT count(*) FROM alembic_version") == 1
    assert replicas.scalar("SELECT version_num FROM alembic_version") == head
    migrated = [
        member.index
        for member in replicas.replicas.members
        if any(f"-> {head}" in record.get("message", "") for record in member.log_records())
    ]
    assert len(migrated) == 1, f"replicas that ran the migrations: {migrated}"


async def test_a_tenants_rate_quota_holds_across_replicas(replicas: Cluster) -> None:
    """Ten requests a minute: of 30 sent round-robin to the three replicas and nginx, in
    well under the six seconds that refill one, exactly ten are accepted (each replica
    alone would have accepted ten)."""
    key = replicas.tenants.create("rate", {"requests_per_minute": 10})
    targets = [*range(REPLICAS), None]
    clients = [replicas.client(key, index) for index in targets]
    accepted: list[int | None] = []
    refused: list[int | None] = []
    hints: list[float | None] = []
    started = time.monotonic()
    try:
        for n in range(30):
            at = n % len(targets)
            try:
                await clients[at].list_tools()
                accepted.append(targets[at])
            except QuotaExceeded as exc:
                hints.append(exc.retry_after_s)
                refused.append(targets[at])
    finally:
        for client in clients:
            await client.close()
    elapsed = time.monotonic() - started
    assert elapsed < 5.5, f"too slow to tell the quota apart from its refill: {elapsed:.1f} s"
    assert len(accepted) == 10, (accepted, refused)
    assert set(refused) >= set(range(REPLICAS))  # every replica refused some
    assert all(hint is not None and 0 < hint <= 6.0 for hint in hints), hints


async def test_concurrency_slots_are_shared_and_freed_when_a_replica_is_killed(
    replicas: Cluster,
) -> None:
    key = replicas.tenants.create("slots", {"concurrent_executions": 2})
    cluster = replicas.replicas
    async with replicas.client(key, 0) as first, replicas.client(key, 2) as doomed:
        await first.import_tool(SPIN_CARD)
        await first.import_tool(ADD_CARD)
        spinning = [
            asyncio.create_task(doomed.execute_tool("spin", {"loops": FOREVER}, timeout_ms=25_000))
            for _ in range(2)
        ]
        deadline = time.monotonic() + 30
        while replicas.scalar("SELECT count(*) FROM quota_leases WHERE tenant = 'slots'") < 2:
            assert time.monotonic() < deadline, "the two spinning calls never took their slots"
            await asyncio.sleep(0.05)
        for index in (0, 1):  # the slots taken on replica 2 are full on the others too
            async with replicas.client(key, index) as other:
                with pytest.raises(QuotaExceeded, match="already has 2 calls running"):
                    await other.execute_tool("add", {"a": 1, "b": 2})
        cluster.kill(2)
        killed = time.monotonic()
        for task in spinning:
            with pytest.raises(Unavailable):
                await task
        while True:  # its leases run out within LEASE_S: no replica renews them
            try:
                result = await first.execute_tool("add", {"a": 1, "b": 2})
                break
            except QuotaExceeded:
                assert time.monotonic() - killed < LEASE_S + 3, "the dead replica's slots stayed"
                await asyncio.sleep(0.1)
        assert result.value == 3
    freed = time.monotonic() - killed
    assert freed <= LEASE_S + 3
    # No live lease is left (a dead replica's leases may expire one by one: the first call
    # after one of them expired may run beside the other's last seconds).
    live = "SELECT count(*) FROM quota_leases WHERE tenant = 'slots' AND expires_at > now()"
    assert replicas.scalar(live) == 0


async def test_a_key_revoked_on_one_replica_is_refused_by_the_others(replicas: Cluster) -> None:
    """Every replica has the key cached (for a minute); ``latm tenants revoke`` run with
    replica 0's settings reaches all of them at once, and a rotation's new key works
    everywhere while the old one is refused."""
    old = replicas.tenants.create("keys")
    targets = [*range(REPLICAS), None]
    retries: list[str] = []
    for index in targets:  # a replica an earlier test killed may have been restarted just now:
        async with replicas.client(old, index) as client:  # retried as behind a balancer
            assert await retried(client.list_tools, retries) == []
    rotated = latm(replicas.replicas.env, "tenants", "rotate", "keys")
    assert rotated.returncode == 0, rotated.stderr
    new = rotated.stdout.strip()
    for index in targets:
        async with replicas.client(old, index) as stale, replicas.client(new, index) as fresh:
            with pytest.raises(Unauthenticated):
                await stale.list_tools()
            assert await fresh.list_tools() == []
    revoked = latm(replicas.replicas.env, "tenants", "revoke", "keys")
    assert revoked.returncode == 0, revoked.stderr
    for index in targets:
        async with replicas.client(new, index) as client:
            with pytest.raises(Unauthenticated):
                await client.list_tools()


ADD_V2 = ADD.replace("return a + b", "return a + b + 100")
ADD_V2_CARD = card_json(ADD_V2, "add", "What is 2 plus 3?", "ans = add(a=2, b=3)", "105")


async def test_a_tool_imported_through_one_replica_is_callable_through_another_at_once(
    replicas: Cluster,
) -> None:
    key = replicas.tenants.create("tools")
    async with (
        replicas.client(key, 0) as first,
        replicas.client(key, 1) as second,
        replicas.client(key, 2) as third,
    ):
        await first.import_tool(ADD_CARD)
        assert (await second.execute_tool("add", {"a": 2, "b": 3})).value == 5
        assert (await third.execute_tool("add", {"a": 2, "b": 3}, version=1)).value == 5
        # Both now cache the card; a new version through replica 0 replaces it at once.
        assert (await first.import_tool(ADD_V2_CARD)).version == 2
        assert (await second.execute_tool("add", {"a": 2, "b": 3})).value == 105
        # A version is kept in a cache for good, unless a notice says it was deleted.
        assert await first.delete_tool("add", version=1) == 1
        with pytest.raises(ToolNotFound):
            await third.execute_tool("add", {"a": 2, "b": 3}, version=1)
        assert (await third.execute_tool("add", {"a": 2, "b": 3})).value == 105


async def test_a_request_served_by_one_replica_is_reported_through_another_at_once(
    replicas: Cluster,
) -> None:
    """A replica writes what it served before answering: the request id it gave is
    known to every replica the moment the caller has it."""
    key = replicas.tenants.create("reports")
    async with replicas.client(key, 0) as first, replicas.client(key, 1) as second:
        await first.import_tool(ADD_CARD)
        call = pb.ExecuteToolRequest(tool="add", arguments_json='{"a": 2, "b": 2}')
        served = await first.stub.ExecuteTool(call, metadata=first.metadata)
        assert served.value_json == "4"
        report = pb.ReportOutcomeRequest(request_id=served.request_id, answer="4")
        kept = await second.stub.ReportOutcome(report, metadata=second.metadata)
    assert (kept.tool, kept.tool_version) == ("add", 1)
    assert (
        replicas.scalar(
            "SELECT count(*) FROM tool_requests WHERE request_id = :id", id=served.request_id
        )
        == 1
    )


async def _load(
    cluster: Cluster, key: str, prefix: str, seconds: float, retries: list[str]
) -> list[str]:
    """Four clients through nginx, each importing new tools and calling them for
    ``seconds``; every call is retried while UNAVAILABLE. The tools acknowledged."""
    acknowledged: list[str] = []

    async def worker(number: int) -> None:
        async with cluster.client(key) as client:
            count = 0
            stop = time.monotonic() + seconds
            while time.monotonic() < stop:
                name = f"{prefix}{number}_{count}"
                card = json.loads(ADD_CARD)
                card["name"] = name
                importing = functools.partial(client.import_tool, json.dumps(card))
                await retried(importing, retries)
                acknowledged.append(name)
                calling = functools.partial(client.execute_tool, name, {"a": count, "b": 1})
                result = await retried(calling, retries)
                assert result.value == count + 1
                count += 1

    await asyncio.gather(*(worker(n) for n in range(4)))
    return acknowledged


def _served_by(cluster: Cluster, index: int) -> int:
    """Requests nginx passed to replica ``index`` (its access log names the upstream)."""
    log = cluster.nginx.root / "access.log"
    return log.read_text().count(cluster.replicas[index].address)


async def _check_kept(cluster: Cluster, key: str, acknowledged: list[str]) -> None:
    """Every acknowledged tool is listed and callable through every running replica."""
    for member in cluster.replicas.members:
        if not member.running:
            continue
        async with cluster.client(key, member.index) as client:
            listed = {tool.name for tool in await client.list_tools()}
            assert set(acknowledged) <= listed, sorted(set(acknowledged) - listed)
            assert (await client.execute_tool(acknowledged[0], {"a": 1, "b": 1})).value == 2


async def test_killing_a_replica_mid_load_loses_no_acknowledged_write(replicas: Cluster) -> None:
    key = replicas.tenants.create(
        "load", {"requests_per_minute": 100_000, "concurrent_executions": 64}
    )
    retries: list[str] = []
    load = asyncio.create_task(_load(replicas, key, "k", 6.0, retries))
    await asyncio.sleep(2.0)
    before = _served_by(replicas, 1)
    replicas.replicas.kill(1)
    acknowledged = await load
    assert before > 0, "nginx had sent nothing to the replica that was killed"
    assert _served_by(replicas, 0) + _served_by(replicas, 2) > 0
    assert len(acknowledged) >= 8, len(acknowledged)
    await _check_kept(replicas, key, acknowledged)
    print(f"{len(acknowledged)} tools acknowledged; {len(retries)} retries: {retries[:5]}")


async def test_a_replica_that_receives_sigterm_drains_while_the_others_serve(
    replicas: Cluster,
) -> None:
    """Calls in flight on the draining replica finish with their results; new calls to it
    are refused UNAVAILABLE (or find it gone), and go on through nginx to the others; it
    exits 0."""
    key = replicas.tenants.create(
        "drain", {"requests_per_minute": 100_000, "concurrent_executions": 64}
    )
    slow_key = replicas.tenants.create("drain-slow")
    async with replicas.client(slow_key, 0) as draining:
        await draining.import_tool(SPIN_CARD)
        slow = [
            asyncio.create_task(
                draining.execute_tool("spin", {"loops": SECOND // 2}, timeout_ms=20_000)
            )
            for _ in range(2)
        ]
        retries: list[str] = []
        load = asyncio.create_task(_load(replicas, key, "d", 5.0, retries))
        leases = "SELECT count(*) FROM quota_leases WHERE tenant = 'drain-slow'"
        while replicas.scalar(leases) < 2:  # both slow calls are running on replica 0
            assert not any(task.done() for task in slow)
            await asyncio.sleep(0.02)
        replicas.replicas.signal(0, signal.SIGTERM)
        await asyncio.sleep(0.2)
        with pytest.raises(Unavailable):
            await draining.list_tools()
        for task in slow:
            assert (await task).value == sum(range(SECOND // 2))
        acknowledged = await load
    assert replicas.replicas.wait(0, timeout_s=30) == 0
    messages = [r.get("message") for r in replicas.replicas[0].log_records()]
    assert "draining" in messages
    assert "stopped" in messages
    await _check_kept(replicas, key, acknowledged)


def test_a_second_replica_on_sqlite_is_refused(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "LATM_DATABASE_URL": f"sqlite:///{tmp_path / 'registry.db'}",
        "LATM_BACKEND": "process",
        "LATM_PROCESS_ISOLATION": os.environ.get("LATM_PROCESS_ISOLATION", "auto"),
        "LATM_USER_MODEL": "scripted:" + str(tmp_path / "models.json"),
        "LATM_MAKER_MODEL": "scripted:" + str(tmp_path / "models.json"),
    }
    (tmp_path / "models.json").write_text("[]")
    replicas = Replicas(tmp_path / "first", f"sqlite:///{tmp_path / 'registry.db'}", 1)
    replicas.start()
    try:
        second = subprocess.run(
            [sys.executable, "-m", "orchestrator.cli", "serve", "--listen", f"unix:{tmp_path}/b"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert second.returncode == 2, second.stderr[-2000:]
        pid = replicas[0].process.pid  # type: ignore[union-attr]
        assert f"another latm serve (pid {pid}) is serving the SQLite registry" in second.stderr
        assert "PostgreSQL (LATM_DATABASE_URL=postgresql+psycopg://" in second.stderr
        tenants = latm(env, "tenants", "create", "acme")  # other commands still work
        assert tenants.returncode == 0, tenants.stderr
    finally:
        replicas.stop_all()
    replicas.start()  # the lock went with the first server
    replicas.stop_all()
