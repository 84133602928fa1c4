"""``latm exec`` and ``latm demo`` as a user runs them: real processes, the JSON contract."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from orchestrator.config import Settings
from orchestrator.models import catalog
from tests.support.backends import require_docker
from tests.support.cli import run_benchmark

pytestmark = pytest.mark.integration

LATM = [sys.executable, "-m", "orchestrator.cli"]


def latm(
    *args: str, timeout: float = 60, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*LATM, *args], capture_output=True, text=True, timeout=timeout, check=False, env=env
    )


@pytest.fixture
def tool_file(tmp_path: Path) -> Path:
    path = tmp_path / "tool.py"
    path.write_text("def pair(x):\n    print('working')\n    return (x, x * 2)\n")
    return path


def test_exec_prints_exactly_one_json_object(tool_file: Path) -> None:
    done = latm("exec", "--source", str(tool_file), "--call", "pair(21)")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert set(result) == {"status", "value", "stdout", "error", "isolation", "usage"}
    assert result["status"] == "ok"
    assert result["value"] == [21, 42]
    assert result["stdout"] == "working\n"
    assert result["error"] is None
    assert result["isolation"].startswith("process")
    assert set(result["usage"]) == {"wall_ms", "cpu_ms", "max_rss_kb"}


def test_exec_statements_return_ans(tool_file: Path) -> None:
    done = latm("exec", "--source", str(tool_file), "--call", "a, b = pair(2)\nans = a + b")
    assert json.loads(done.stdout)["value"] == 6


@pytest.mark.parametrize(
    ("call", "extra", "status"),
    [
        ("import os", [], "policy_violation"),
        ("1 / 0", [], "error"),
        ("while True:\n    pass", ["--timeout-ms", "300"], "timeout"),
        ("x = bytearray(10 ** 9)", ["--memory-mb", "64"], "memory_limit"),
    ],
)
def test_exec_failure_statuses_exit_1(
    tool_file: Path, call: str, extra: list[str], status: str
) -> None:
    done = latm("exec", "--source", str(tool_file), "--call", call, *extra)
    assert done.returncode == 1
    result = json.loads(done.stdout)
    assert result["status"] == status
    assert set(result["error"]) == {"type", "message"}


@pytest.mark.parametrize(
    "args",
    [
        ["exec", "--source", "/nonexistent/tool.py", "--call", "1"],
        ["exec", "--call", "1"],
        ["exec", "--source", "x.py", "--call", "1", "--backend", "kubernetes"],
        ["exec", "--source", "{tool}", "--call", "1", "--runtime", "runsc"],
        ["exec", "--source", "{tool}", "--call", "1", "--timeout-ms", "-5"],
        ["exec", "--source", "{tool}", "--call", "   "],
    ],
)
def test_usage_errors_exit_2(tool_file: Path, args: list[str]) -> None:
    done = latm(*(a.replace("{tool}", str(tool_file)) for a in args))
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout == ""
    assert done.stderr.strip()


@pytest.mark.docker
@pytest.mark.parametrize("runtime", ["runc", "runsc"])
def test_exec_on_the_docker_backend(tool_file: Path, runtime: str) -> None:
    require_docker(runtime)
    done = latm(
        "exec", "--source", str(tool_file), "--call", "pair(3)",
        "--backend", "docker", "--runtime", runtime,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "ok"
    assert result["value"] == [3, 6]
    assert result["stdout"] == "working\n"
    assert result["isolation"] == f"docker+{runtime}"
    timeout = latm(
        "exec", "--source", str(tool_file), "--call", "while True:\n    pass",
        "--backend", "docker", "--runtime", runtime, "--timeout-ms", "300",
    )  # fmt: skip
    assert timeout.returncode == 1
    assert json.loads(timeout.stdout)["status"] == "timeout"


@pytest.mark.docker
def test_image_build_is_idempotent_and_list_shows_it() -> None:
    require_docker()
    from orchestrator.images import sandbox_image_tag

    done = latm("image", "build", timeout=300)
    assert done.returncode == 0, done.stderr
    tag = done.stdout.strip()
    assert tag.startswith(sandbox_image_tag() + "-")
    assert "up to date" in done.stderr
    listing = latm("image", "list", "--json")
    assert listing.returncode == 0, listing.stderr
    images = json.loads(listing.stdout)
    (sandbox,) = [i for i in images if tag in i["tags"]]
    assert sandbox["kind"] == "sandbox"
    assert sandbox_image_tag() in sandbox["tags"]
    assert tag.endswith(sandbox["content_hash"])
    assert any(i["kind"] == "base" for i in images)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_demo_runs_the_whole_loop_on_the_local_model(tmp_path: Path) -> None:
    """The README's main job: the sandbox, then LATM on the embedded Qwen model, in both
    roles as ``make demo`` runs it (its maker is the 0.5B, not the default 1.5B)."""
    catalog.fetch(catalog.CATALOG["qwen2.5-coder-0.5b"], Settings().models_dir)
    env = {
        **os.environ,
        "LATM_DATABASE_URL": f"sqlite:///{tmp_path / 'registry.db'}",
        "LATM_MAKER_MODEL": "local:qwen2.5-coder-0.5b",
    }
    done = latm("demo", timeout=600, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "policy_violation" in done.stdout
    assert "timeout" in done.stdout
    assert "memory_limit" in done.stdout
    assert '"apple fig pear"' in done.stdout
    assert "verified 3/3 on held-out cases" in done.stdout
    assert "cost split: maker" in done.stdout
    listed = latm("tools", "--tenant", "demo", "list", "--json", env=env)
    assert [tool["name"] for tool in json.loads(listed.stdout)] == ["sum_numbers"]


@pytest.mark.slow
def test_latency_benchmark_writes_its_json(tmp_path: Path) -> None:
    report = run_benchmark("sandbox_latency.py", tmp_path / "bench.json", timeout=180)
    text = json.dumps(report)
    for peer in ("sandbox", "in-process", "python -c"):
        assert f'"{peer}"' in text


@pytest.mark.slow
@pytest.mark.docker
def test_docker_benchmark_writes_its_json(tmp_path: Path) -> None:
    require_docker("runsc")
    report = run_benchmark(
        "docker_sandbox.py", tmp_path / "docker.json", "--no-llm-sandbox", timeout=300
    )
    for runtime in ("runc", "runsc"):
        measured = report["results"][runtime]
        assert measured["warm"]["serial"]["failures"] == 0
        assert measured["cold_start"]["p50_ms"] > 0
        assert measured["fault_run"]["status"] == "crashed"
        assert measured["fault_run"]["next_call_value"] == 4
        assert measured["fault_run"]["killed_container_destroyed"] is True
        assert "warm_p50_met" in report["targets"][runtime]


@pytest.mark.slow
def test_models_benchmark_writes_its_json(tmp_path: Path) -> None:
    catalog.fetch(catalog.CATALOG["smollm2-135m"], Settings().models_dir)
    report = run_benchmark(
        "models.py", tmp_path / "models.json", "--model", "smollm2-135m", timeout=300
    )
    assert list(report["models"]) == ["smollm2-135m"]
    result = report["models"]["smollm2-135m"]
    assert result["load_s"]["median"] > 0
    assert result["generation"]["tokens_per_s"]["median"] > 0
    assert result["memory_after_load"]["rss_mb"] > 50


@pytest.mark.slow
def test_engine_benchmark_writes_its_json(tmp_path: Path) -> None:
    report = run_benchmark("engine.py", tmp_path / "engine.json", timeout=300)
    overhead, dispatch = report["overhead"], report["dispatch"]
    assert overhead["engine_solve_ms"]["p50"] >= overhead["bare_sandbox_call_ms"]["p50"] > 0
    assert dispatch["tools"] == 300
    assert dispatch["dispatch_ms"]["p50"] > 0
    # The whole route (demo evidence, the model when asked) costs more than the shortlist.
    assert dispatch["dispatch_ms"]["p50"] > dispatch["shortlist_only_ms"]["p50"] > 0
    assert sum(dispatch["routed_by"].values()) == dispatch["queries"]
