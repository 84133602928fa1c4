"""The tool registry's contract, which every database must keep.

``RegistryContract`` holds the scenarios; ``tests/unit/test_registry.py`` runs them on
SQLite files and ``tests/integration/test_registry_postgres.py`` on a private PostgreSQL
server. A subclass provides ``new_database_url``: a factory of empty databases. The
helpers here seed and inspect a registry's database directly.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, insert, update

from orchestrator.errors import InvalidRequest, QuotaExceeded, ToolNotFound
from orchestrator.latm.cards import ToolCard, source_sha256
from orchestrator.registry import (
    RegistryUnavailable,
    StoreLimits,
    ToolRegistry,
)
from orchestrator.registry import store as registry_store
from orchestrator.registry._engine import MIGRATIONS
from orchestrator.registry.schema import Base, ToolRow
from tests.support.cards import SORT_SOURCE, make_card

ROOT = Path(__file__).resolve().parents[2]
SORT_SOURCE_V2 = "def sort_words(text):\n    return ' '.join(sorted(text.split(), key=str.lower))\n"
MANY = 10_000

# Reopens the registry in a fresh interpreter, prints a card back and records a use.
CHILD = """
import sys
from orchestrator.registry import ToolRegistry

url, tenant, name = sys.argv[1:4]
with ToolRegistry.open(url) as registry:
    print(registry.export(tenant, name))
    registry.record_use(tenant, name, None, role="user", ok=True, cost_usd=0.25)
"""


def roomy(**tight: int) -> StoreLimits:
    """Store limits that nothing here reaches, but for the ``tight`` ones."""
    return replace(StoreLimits(1000, 1000, 10**9, 10**7, 100, 1000), **tight)


@contextmanager
def statements() -> Iterator[list[str]]:
    """Every SQL statement any engine sends while the block runs."""
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(args[2])

    event.listen(Engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", record)


@contextmanager
def raw_engine(url: str) -> Iterator[Engine]:
    """An engine on the registry's database that bypasses the registry (to seed or tamper)."""
    engine = create_engine(url)
    try:
        yield engine
    finally:
        engine.dispose()


def seed_tools(url: str, tenant: str, count: int) -> None:
    """Insert ``count`` version-1 tools in one statement (publishing one by one is slow)."""
    rows = []
    for i in range(count):
        card = make_card(f"tool_{i:05d}").model_copy(update={"version": 1})
        rows.append(
            {
                "tenant": tenant,
                "name": card.name,
                "version": 1,
                "sha256": card.sha256,
                "description": card.description,
                "entrypoint": card.entrypoint,
                "signature": card.signature,
                "task": card.task,
                "card_json": card.to_json(),
            }
        )
    with raw_engine(url) as engine, engine.begin() as connection:
        connection.execute(insert(ToolRow), rows)


class RegistryContract:
    """Scenarios every registry database must pass."""

    @pytest.fixture
    def url(self, new_database_url: Callable[[], str]) -> str:
        return new_database_url()

    @pytest.fixture
    def registry(self, url: str) -> Iterator[ToolRegistry]:
        with ToolRegistry.open(url) as opened:
            yield opened

    # --- publish, get, versions ---

    def test_publish_stores_version_one_and_get_returns_it(self, registry: ToolRegistry) -> None:
        published = registry.publish("acme", make_card())
        assert published.version == 1
        assert published == make_card().model_copy(update={"version": 1})
        assert registry.get("acme", "sort_words") == published
        assert registry.get("acme", "sort_words", 1) == published

    def test_publishing_the_same_source_again_returns_the_existing_version(
        self, registry: ToolRegistry
    ) -> None:
        first = registry.publish("acme", make_card())
        again = registry.publish("acme", make_card(description="reworded, same source"))
        assert again == first
        assert [s.version for s in registry.list("acme")] == [1]

    def test_a_changed_source_becomes_a_new_version_and_the_old_one_stays(
        self, registry: ToolRegistry
    ) -> None:
        v1 = registry.publish("acme", make_card())
        v2 = registry.publish("acme", make_card(source=SORT_SOURCE_V2))
        assert v2.version == 2
        assert registry.get("acme", "sort_words") == v2
        assert registry.get("acme", "sort_words", 1) == v1
        assert registry.get("acme", "sort_words", 1).source == SORT_SOURCE
        v3 = registry.publish("acme", make_card())  # an older source is still a new version
        assert (v3.version, v3.source) == (3, SORT_SOURCE)

    def test_publish_refuses_a_card_whose_source_does_not_match_its_sha256(
        self, registry: ToolRegistry
    ) -> None:
        forged = make_card().model_copy(update={"source": SORT_SOURCE_V2})
        with pytest.raises(InvalidRequest, match="does not match"):
            registry.publish("acme", forged)
        assert registry.list("acme") == []

    def test_concurrent_publishes_get_distinct_versions(self, registry: ToolRegistry) -> None:
        sources = [f"{SORT_SOURCE}# variant {i}\n" for i in range(8)]
        barrier = threading.Barrier(len(sources))

        def publish(source: str) -> tuple[int, str]:
            barrier.wait()
            return registry.publish("acme", make_card(source=source)).version or 0, source

        with ThreadPoolExecutor(len(sources)) as pool:
            versions = dict(pool.map(publish, sources))
        assert sorted(versions) == list(range(1, 9))
        for version, source in versions.items():
            assert registry.get("acme", "sort_words", version).source == source

    # --- lookups and listing ---

    def test_unknown_tools_and_versions_are_tool_not_found(self, registry: ToolRegistry) -> None:
        with pytest.raises(ToolNotFound, match=r"tool 'nope' in tenant 'acme'"):
            registry.get("acme", "nope")
        registry.publish("acme", make_card())
        with pytest.raises(ToolNotFound, match=r"version 2 of tool 'sort_words'.*'acme'"):
            registry.get("acme", "sort_words", 2)

    def test_list_gives_the_latest_version_of_each_tool(self, registry: ToolRegistry) -> None:
        registry.publish("acme", make_card("zeta"))
        registry.publish("acme", make_card("alpha"))
        registry.publish("acme", make_card("alpha", source=SORT_SOURCE_V2))
        listed = registry.list("acme")
        assert [(s.name, s.version) for s in listed] == [("alpha", 2), ("zeta", 1)]
        alpha = listed[0]
        assert alpha.sha256 == source_sha256(SORT_SOURCE_V2)
        assert alpha.signature == "sort_words(text: str) -> str"
        assert alpha.description == "alpha: sorts the words of a text"
        assert (alpha.entrypoint, alpha.uses, alpha.cost_usd) == ("sort_words", 0, 0.0)
        assert alpha.created_at.tzinfo is not None

    def test_listing_ten_thousand_tools_is_one_fast_query(
        self, registry: ToolRegistry, url: str
    ) -> None:
        seed_tools(url, "acme", MANY)
        registry.publish("acme", make_card("tool_00007", source=SORT_SOURCE_V2))
        registry.record_use("acme", "tool_00003", 1, role="user", ok=True, cost_usd=0.5)
        with statements() as sent:
            started = time.perf_counter()
            listed = registry.list("acme")
            elapsed = time.perf_counter() - started
        assert len(sent) == 1, sent  # no query per tool
        assert elapsed < 5.0
        assert len(listed) == MANY
        by_name = {s.name: s for s in listed}
        assert by_name["tool_00007"].version == 2
        assert (by_name["tool_00003"].uses, by_name["tool_00003"].cost_usd) == (1, 0.5)

    # --- export and import ---

    def test_export_then_import_into_another_tenant_gives_the_same_card(
        self, registry: ToolRegistry
    ) -> None:
        registry.publish("acme", make_card())
        original = registry.publish("acme", make_card(source=SORT_SOURCE_V2))
        text = registry.export("acme", "sort_words")
        imported = registry.import_card("globex", text)
        assert imported.version == 1
        assert imported.model_dump(exclude={"version"}) == original.model_dump(exclude={"version"})
        assert registry.get("globex", "sort_words") == imported
        assert registry.import_card("globex", text.encode()) == imported  # never overwrites
        changed = registry.import_card("globex", registry.export("acme", "sort_words", 1))
        assert (changed.version, changed.source) == (2, SORT_SOURCE)

    def test_import_refuses_an_edited_source_without_a_new_sha256(
        self, registry: ToolRegistry
    ) -> None:
        registry.publish("acme", make_card())
        text = registry.export("acme", "sort_words").replace("sorted(", "reversed(")
        with pytest.raises(InvalidRequest, match=r"does not match provenance\.sha256"):
            registry.import_card("globex", text)
        assert registry.list("globex") == []

    @pytest.mark.parametrize(
        "text", ["", "not json", "{}", '{"name": "x"}', b"\xff\xfe", "[1, 2]"], ids=repr
    )
    def test_import_refuses_malformed_cards(self, registry: ToolRegistry, text: str) -> None:
        with pytest.raises(InvalidRequest, match=r"not a valid latm\.tool/v1 tool card"):
            registry.import_card("acme", text)

    @pytest.mark.parametrize("name", ["sort_words\n", "sort_words\r\n", " sort_words"])
    def test_import_refuses_look_alike_names(self, registry: ToolRegistry, name: str) -> None:
        """A trailing newline made a name distinct from the tool it spells."""
        card = json.loads(make_card("sort_words").to_json())
        with pytest.raises(InvalidRequest, match="is not a tool name"):
            registry.import_card("globex", json.dumps({**card, "name": name}))
        with pytest.raises(InvalidRequest, match="is not a tool name"):
            registry.import_card("globex", json.dumps({**card, "entrypoint": name}))
        assert registry.list("globex") == []

    # --- persistence, tenants, removal ---

    def test_the_registry_survives_a_restart_in_a_new_process(self, url: str) -> None:
        with ToolRegistry.open(url) as registry:
            published = registry.publish("acme", make_card())
        child = subprocess.run(
            [sys.executable, "-c", CHILD, url, "acme", "sort_words"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert child.returncode == 0, child.stderr
        assert ToolCard.from_json(child.stdout) == published
        with ToolRegistry.open(url) as reopened:
            assert reopened.get("acme", "sort_words") == published
            assert reopened.usage("acme", "sort_words")["calls"] == 1

    def test_tenants_see_nothing_of_each_other(self, registry: ToolRegistry) -> None:
        registry.publish("acme", make_card())
        registry.record_use("acme", "sort_words", 1, role="user", ok=True)
        registry.add_candidate("acme", "count the vowels")
        assert registry.list("globex") == []
        assert registry.candidates("globex") == []
        for call in (
            lambda: registry.get("globex", "sort_words"),
            lambda: registry.export("globex", "sort_words"),
            lambda: registry.usage("globex", "sort_words"),
            lambda: registry.remove("globex", "sort_words"),
            lambda: registry.record_use("globex", "sort_words", 1, role="user", ok=True),
        ):
            with pytest.raises(ToolNotFound, match="'globex'"):
                call()
        own = registry.publish("globex", make_card(source=SORT_SOURCE_V2))
        assert own.version == 1
        assert registry.get("acme", "sort_words").source == SORT_SOURCE
        assert registry.usage("globex", "sort_words")["calls"] == 0

    def test_remove_one_version_or_all_of_them(self, registry: ToolRegistry) -> None:
        for source in (SORT_SOURCE, SORT_SOURCE_V2, f"{SORT_SOURCE}# 3\n"):
            registry.publish("acme", make_card(source=source))
        registry.publish("acme", make_card("other"))
        assert registry.remove("acme", "sort_words", 2) == 1
        with pytest.raises(ToolNotFound):
            registry.get("acme", "sort_words", 2)
        assert registry.get("acme", "sort_words", 1).source == SORT_SOURCE
        assert registry.remove("acme", "sort_words") == 2
        assert [s.name for s in registry.list("acme")] == ["other"]
        with pytest.raises(ToolNotFound, match="tool 'sort_words' in tenant 'acme'"):
            registry.remove("acme", "sort_words")

    def test_removing_a_tool_removes_its_usage(self, registry: ToolRegistry) -> None:
        registry.publish("acme", make_card())
        registry.record_use("acme", "sort_words", 1, role="user", ok=True, cost_usd=1.0)
        registry.remove("acme", "sort_words")
        registry.publish("acme", make_card())
        assert registry.usage("acme", "sort_words")["calls"] == 0

    # --- usage and candidates ---

    def test_usage_adds_up_every_version_by_role(self, registry: ToolRegistry) -> None:
        registry.publish("acme", make_card())
        registry.publish("acme", make_card(source=SORT_SOURCE_V2))
        tokens = {"prompt_tokens": 100, "completion_tokens": 20}
        registry.record_use("acme", "sort_words", 1, role="maker", ok=True, cost_usd=0.5, **tokens)
        registry.record_use("acme", "sort_words", 2, role="user", ok=True, wall_s=0.25, **tokens)
        registry.record_use("acme", "sort_words", None, role="user", ok=False, wall_s=0.5)
        usage = registry.usage("acme", "sort_words")
        assert (usage["calls"], usage["ok"], usage["cost_usd"]) == (3, 2, 0.5)
        assert (usage["prompt_tokens"], usage["completion_tokens"]) == (200, 40)
        assert usage["wall_s"] == pytest.approx(0.75)
        assert usage["by_role"]["maker"]["calls"] == 1
        assert (usage["by_role"]["user"]["calls"], usage["by_role"]["user"]["ok"]) == (2, 1)
        [summary] = registry.list("acme")
        assert (summary.uses, summary.cost_usd) == (3, 0.5)

    @pytest.mark.parametrize(
        "bad",
        [
            {"role": "admin"},
            {"prompt_tokens": -1},
            {"cost_usd": float("nan")},
            {"wall_s": float("inf")},
        ],
        ids=str,
    )
    def test_record_use_refuses_bad_input(self, registry: ToolRegistry, bad: Any) -> None:
        registry.publish("acme", make_card())
        with pytest.raises(InvalidRequest):
            registry.record_use("acme", "sort_words", 1, **({"role": "user", "ok": True} | bad))
        assert registry.usage("acme", "sort_words")["calls"] == 0

    def test_candidates_come_back_newest_first(self, registry: ToolRegistry) -> None:
        for question in ("first", "second", "third"):
            registry.add_candidate("acme", question)
        assert registry.candidates("acme") == ["third", "second", "first"]
        assert registry.candidates("acme", limit=2) == ["third", "second"]
        with pytest.raises(InvalidRequest, match="must not be empty"):
            registry.add_candidate("acme", "   ")
        with pytest.raises(InvalidRequest, match="limit"):
            registry.candidates("acme", limit=0)

    # --- errors and transactions ---

    @pytest.mark.parametrize("tenant", ["", "   ", " acme", "a\nb", "x" * 200])
    def test_a_bad_tenant_is_invalid_request(self, registry: ToolRegistry, tenant: str) -> None:
        for call in (
            lambda: registry.publish(tenant, make_card()),
            lambda: registry.get(tenant, "sort_words"),
            lambda: registry.list(tenant),
            lambda: registry.candidates(tenant),
        ):
            with pytest.raises(InvalidRequest, match="tenant"):
                call()

    @pytest.mark.parametrize("version", [0, -1, True])
    def test_a_bad_version_is_invalid_request(self, registry: ToolRegistry, version: int) -> None:
        registry.publish("acme", make_card())
        with pytest.raises(InvalidRequest, match="version"):
            registry.get("acme", "sort_words", version)

    def test_a_failed_publish_leaves_the_database_unchanged(
        self, registry: ToolRegistry, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        real = registry_store._publish_in

        def fail_after_writing(*args: Any) -> ToolCard:
            real(*args)
            args[0].flush()  # the row reached the database inside the transaction
            raise RuntimeError("crash after the insert")

        monkeypatch.setattr(registry_store, "_publish_in", fail_after_writing)
        with pytest.raises(RuntimeError, match="crash"):
            registry.publish("acme", make_card())
        monkeypatch.undo()
        assert registry.list("acme") == []
        assert registry.publish("acme", make_card()).version == 1

    def test_a_tampered_stored_card_is_refused(self, registry: ToolRegistry, url: str) -> None:
        registry.publish("acme", make_card())
        tampered = registry.export("acme", "sort_words").replace("sorted(", "reversed(")
        with raw_engine(url) as engine, engine.begin() as connection:
            connection.execute(update(ToolRow).values(card_json=tampered))
        with pytest.raises(RegistryUnavailable, match="corrupt"):
            registry.get("acme", "sort_words")

    def test_a_closed_registry_refuses_work(self, url: str) -> None:
        registry = ToolRegistry.open(url)
        registry.close()
        with pytest.raises(RegistryUnavailable, match="closed"):
            registry.list("acme")

    # --- what a tenant may keep ---

    def test_tools_per_tenant_are_bounded_and_another_tenant_is_not(
        self, registry: ToolRegistry
    ) -> None:
        limits = roomy(tools=2)
        for name in ("one", "two"):  # at the limit
            registry.publish("acme", make_card(name), limits)
        registry.publish("acme", make_card("one", SORT_SOURCE_V2), limits)  # a version: fine
        with pytest.raises(QuotaExceeded, match="2 tools, its quota"):
            registry.publish("acme", make_card("three"), limits)
        with pytest.raises(QuotaExceeded, match="2 tools"):
            registry.check_room("acme", "three", limits)
        registry.check_room("acme", "one", limits)
        assert [t.name for t in registry.list("acme")] == ["one", "two"]
        for name in ("one", "two", "three"):
            registry.publish("globex", make_card(name), roomy(tools=3))
        registry.remove("acme", "two")
        registry.publish("acme", make_card("three"), limits)  # room again

    def test_versions_per_tool_are_bounded(self, registry: ToolRegistry) -> None:
        limits = roomy(versions=2)
        registry.publish("acme", make_card(), limits)
        registry.publish("acme", make_card(source=SORT_SOURCE_V2), limits)
        registry.publish("acme", make_card(source=SORT_SOURCE_V2), limits)  # unchanged: no new
        third = SORT_SOURCE_V2.replace("str.lower", "str.casefold")
        with pytest.raises(QuotaExceeded, match="2 versions"):
            registry.publish("acme", make_card(source=third), limits)
        registry.remove("acme", "sort_words", 1)
        assert registry.publish("acme", make_card(source=third), limits).version == 3

    def test_stored_bytes_are_bounded_counting_rows_from_before_the_size_was_kept(
        self, registry: ToolRegistry, url: str
    ) -> None:
        size = len(make_card("tool_a").model_copy(update={"version": 1}).to_json().encode())
        limits = roomy(stored_bytes=3 * size)
        for name in ("tool_a", "tool_b", "tool_c"):  # exactly at the limit
            registry.publish("acme", make_card(name), limits)
        with pytest.raises(QuotaExceeded, match=f"stores {3 * size} bytes"):
            registry.publish("acme", make_card("tool_d"), limits)
        with raw_engine(url) as engine, engine.begin() as connection:  # as a 0002 row was
            connection.execute(update(ToolRow).values(card_bytes=None))
        with pytest.raises(QuotaExceeded, match=f"stores {3 * size} bytes"):
            registry.publish("acme", make_card("tool_d"), limits)
        registry.publish("globex", make_card("tool_d"), limits)

    @pytest.mark.parametrize(
        ("field", "limit", "match"),
        [
            ("card_bytes", 1000, "1087 bytes of card JSON"),
            ("demos", 1, "2 usage demos"),
            ("cases", 1, "2 verification cases"),
        ],
    )
    def test_one_card_over_its_size_limits_is_refused(
        self, registry: ToolRegistry, field: str, limit: int, match: str
    ) -> None:
        demos = [
            {"question": f"sort {n}", "solution": "ans = sort_words('b a')", "answer": "a b"}
            for n in range(2)
        ]
        case = {"question": "sort b a", "expected": "a b", "got": "a b", "passed": True}
        verification = {"passed": 2, "total": 2, "cases": [case, case]}
        card = make_card(usage_demos=demos, verification=verification)
        with pytest.raises(QuotaExceeded, match=match):
            registry.publish("acme", card, roomy(**{field: limit}))
        assert registry.list("acme") == []
        registry.publish("acme", card, roomy())

    # --- schema ---

    def test_the_migrated_schema_matches_the_orm(
        self, registry: ToolRegistry, url: str, new_database_url: Callable[[], str]
    ) -> None:
        config = Config()
        config.set_main_option("script_location", MIGRATIONS)
        head = ScriptDirectory.from_config(config).get_current_head()
        assert head is not None
        with raw_engine(url) as engine, engine.connect() as connection:
            context = MigrationContext.configure(connection)
            assert context.get_current_revision() == head
            assert compare_metadata(context, Base.metadata) == []
        with raw_engine(new_database_url()) as engine, engine.connect() as connection:
            # The comparison sees real differences: an unmigrated database lacks every table.
            diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
            assert {d[1].name for d in diff if d[0] == "add_table"} == {
                "tools",
                "tool_usage",
                "candidates",
                "tenants",
                "api_keys",
                "usage_events",
                "regression_cases",
                "tool_requests",
                "quota_buckets",
                "quota_leases",
            }
