"""``bench/api_load.py --quick`` and ``bench/mcp_load.py --quick``: the load benchmarks of
the API (and of MCP next to it) run end to end and write their JSON."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.config import Settings
from orchestrator.models import catalog
from tests.support.backends import require_docker
from tests.support.cli import run_benchmark

pytestmark = pytest.mark.integration


@pytest.mark.slow
@pytest.mark.docker
@pytest.mark.timeout(300)
def test_api_load_benchmark_writes_its_json(tmp_path: Path) -> None:
    require_docker()
    # latm serve starts only with its default model in the cache (whatever the test order).
    catalog.fetch(catalog.CATALOG["qwen2.5-coder-0.5b"], Settings().models_dir)
    out = tmp_path / "api_load.json"
    report = run_benchmark("api_load.py", out, "--clients", "4", "--rate", "40", timeout=240)
    assert report["benchmark"] == "api_load"
    assert report["errors"] == {"api": 0, "direct": 0, "api_paced": 0, "direct_paced": 0}
    for name in ("api", "direct", "api_paced", "direct_paced"):
        (measured,) = report[f"{name}_rounds"]
        assert measured["calls"] > 0
        assert measured["errors"] == 0
        assert measured["errors_by_kind"] == {}
        assert 0 < measured["p50_ms"] <= measured["p95_ms"] <= measured["p99_ms"]
        assert measured["p99_ms"] <= measured["max_ms"]
        assert report["medians"][name]["calls_per_s"] > 0
        assert set(measured["cpu_ms_per_call_by_group"]) >= {"server", "containers", "other"}
    # The paced rounds keep to the offered rate: 40 calls/s for 2 s, not back to back.
    for name in ("api_paced", "direct_paced"):
        assert 20 <= report["medians"][name]["calls_per_s"] <= 44, report["medians"][name]
    assert report["config"]["paced_rate_calls_per_s"] == 40
    assert report["api_over_direct"]["calls_per_s"] > 0
    rss = report["server_rss"]
    assert rss["before_load_kb"] > 0
    assert rss["after_load_kb"] > 0
    assert isinstance(rss["growth_pct"], float)
    assert report["server_exit_code"] == 0
    assert report["config"]["quick"] is True
    assert report["config"]["pool"]["max_size"] >= 1
    assert set(report["targets"]) >= {"calls_per_s_met", "p99_met", "rss_growth_met", "no_errors"}
    assert report["targets"]["no_errors"] is True


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_mcp_load_benchmark_writes_its_json(tmp_path: Path) -> None:
    out = tmp_path / "mcp_load.json"
    report = run_benchmark(
        "mcp_load.py", out, "--backend", "process", "--clients", "1", "2", timeout=240
    )
    assert report["benchmark"] == "mcp_load"
    names = {"grpc_c1", "mcp_c1", "grpc_c2", "mcp_c2"}
    assert report["errors"] == dict.fromkeys(names, 0)
    assert set(report["rounds"]) == set(report["medians"]) == names
    for name in names:
        (measured,) = report["rounds"][name]
        assert measured["calls"] > 0
        assert measured["errors_by_kind"] == {}
        assert 0 < measured["p50_ms"] <= measured["p95_ms"] <= measured["p99_ms"]
        assert measured["p99_ms"] <= measured["max_ms"]
        assert measured["server_cpu_ms_per_call"] > 0
        assert report["medians"][name]["calls_per_s"] > 0
    for level in ("c1", "c2"):
        assert set(report["mcp_over_grpc"][level]) == {
            "calls_per_s",
            "p50",
            "p99",
            "server_cpu_per_call",
        }
        assert report["mcp_over_grpc"][level]["calls_per_s"] > 0
    assert report["config"]["quick"] is True
    assert report["config"]["clients"] == [1, 2]
    assert report["server_exit_code"] == 0
    assert report["machine"]["nproc"] > 0
