"""``bench/soak.py --quick``: mixed legitimate and hostile calls from many clients through
the public API to a real orchestrator (docker backend, runc), then the leak and memory checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.config import Settings
from orchestrator.models import catalog
from tests.support.backends import require_docker
from tests.support.cli import run_benchmark

pytestmark = pytest.mark.integration

CATEGORIES = {"legit", "read", "escape", "exhaustion", "api", "limits"}


@pytest.mark.slow
@pytest.mark.docker
@pytest.mark.timeout(480)
def test_soak_quick_passes_its_criteria(tmp_path: Path) -> None:
    require_docker()
    # latm serve starts only with its default model in the cache (whatever the test order).
    catalog.fetch(catalog.CATALOG["qwen2.5-coder-0.5b"], Settings().models_dir)
    out = tmp_path / "soak.json"
    report = run_benchmark("soak.py", out, timeout=420)
    assert report["benchmark"] == "soak"
    assert report["config"]["quick"] is True
    assert report["config"]["clients"] >= 8
    assert report["config"]["tenants"] >= 2

    calls = report["calls"]
    assert calls["measured"] > 0
    assert calls["unexpected"] == 0, calls["unexpected_examples"]
    assert calls["expected_success"] > 0
    assert set(calls["by_category"]) == CATEGORIES
    for name, category in calls["by_category"].items():
        assert category["calls"] > 0, name
    outcomes = calls["by_category"]
    assert set(outcomes["legit"]["outcomes"]) <= {"ok", "quota_exceeded"}
    assert "ok" not in outcomes["escape"]["outcomes"]
    assert "ok" not in outcomes["exhaustion"]["outcomes"]
    refused = set(calls["refused_by_kind"])
    assert {"policy_violation", "unauthenticated", "not_found", "invalid_argument"} <= refused
    assert refused & {"timeout", "memory_limit", "output_limit"}
    # The hostile tenant reached its limits, and was refused with quota errors.
    limits = outcomes["limits"]["outcomes"]
    assert limits.get("quota_exceeded", 0) > 0
    assert set(limits) <= {"ok", "quota_exceeded", "invalid_argument", "not_found"}

    assert report["left_after_stop"]["containers"] == 0
    assert report["left_after_stop"]["processes"] == []
    assert report["end"]["containers"] <= report["pool_containers"]
    assert report["criteria"]["fd_growth"]["value"] <= 0
    assert report["end"]["children"] <= report["baseline"]["children"]
    assert report["rss_kb"]["samples"] > 0
    assert isinstance(report["rss_settled_growth_pct"], float)  # the two readings, recorded
    assert report["server_exit_code"] == 0

    criteria = report["criteria"]
    assert criteria["rss_growth_pct"]["limit"] == 10.0
    assert criteria["others_legit_p99_ms"]["value"] > 0
    assert all(c["passed"] for c in criteria.values() if c["gates"]), criteria
    # A quick run's medians are recorded for the README, not gated (speed is the bench's).
    assert {name for name, c in criteria.items() if not c["gates"]} == {
        "others_legit_p50_ms",
        "others_legit_p99_ms",
    }
    assert report["passed"] is True
