"""``latm tenants`` and ``latm serve`` as separate processes: keys are printed once and
work against the served API; SIGTERM drains and exits 0; plaintext beyond loopback is
refused; a config file configures the server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from orchestrator.client import Client
from orchestrator.errors import ModelNotAvailable, Unauthenticated
from orchestrator.models import catalog
from tests.support.backends import require_bwrap
from tests.support.cards import card_json
from tests.support.cli import latm, serve

pytestmark = pytest.mark.integration


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    user = tmp_path / "user.json"
    user.write_text("[]")
    return {
        **os.environ,
        "LATM_DATABASE_URL": f"sqlite:///{tmp_path / 'registry.db'}",
        "LATM_BACKEND": "process",
        "LATM_USER_MODEL": f"scripted:{user}",
        "LATM_MAKER_MODEL": f"scripted:{user}",
    }


def test_tenant_commands(env: dict[str, str]) -> None:
    created = latm(env, "tenants", "create", "acme", "--requests-per-minute", "30")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("latm_")
    assert "shown only once" in created.stderr
    again = latm(env, "tenants", "create", "acme")
    assert again.returncode == 1
    assert "exists already" in again.stderr

    listed = latm(env, "tenants", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)
    assert (row["name"], row["active_keys"], row["quotas"]) == (
        "acme",
        1,
        {"requests_per_minute": 30},
    )
    assert key not in listed.stdout

    rotated = latm(env, "tenants", "rotate", "acme")
    assert rotated.returncode == 0
    assert rotated.stdout.strip() not in ("", key)
    assert latm(env, "tenants", "quota", "acme", "--requests-per-minute", "0").returncode == 0
    assert json.loads(latm(env, "tenants", "list", "--json").stdout)[0]["quotas"] == {}
    assert latm(env, "tenants", "revoke", "acme").returncode == 0
    assert json.loads(latm(env, "tenants", "list", "--json").stdout)[0]["revoked"] is True
    bad = latm(env, "tenants", "create", "no spaces")
    assert bad.returncode == 1
    assert "tenant name" in bad.stderr


def test_serve_answers_then_drains_on_sigterm(env: dict[str, str], tmp_path: Path) -> None:
    require_bwrap()
    key = latm(env, "tenants", "create", "acme").stdout.strip()
    config = tmp_path / "latm.toml"
    config.write_text('log_format = "json"\nshutdown_grace_s = 5\n')
    process, address = serve(env, "--listen", f"unix:{tmp_path}/api.sock", "--config", str(config))
    try:
        assert address == f"unix:{tmp_path}/api.sock"
        with Client(address, key) as client:
            assert client.list_tools() == []
        forged = Client(address, "latm_0000000000000000_" + "a" * 43)
        with forged, pytest.raises(Unauthenticated):
            forged.list_tools()
    finally:
        process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err[-2000:]
    assert time.monotonic() - started < 10
    records = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    messages = [record["message"] for record in records]
    assert "draining" in messages
    assert "stopped" in messages
    assert key not in err


def test_serve_refuses_plaintext_beyond_loopback(env: dict[str, str]) -> None:
    refused = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "serve", "--listen", "0.0.0.0:0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 2
    assert "refusing plaintext on 0.0.0.0:0" in refused.stderr


def test_serve_refuses_a_config_file_holding_a_secret(env: dict[str, str], tmp_path: Path) -> None:
    config = tmp_path / "latm.toml"
    config.write_text('openai_api_key = "sk-should-not-be-here"\n')
    refused = latm(env, "serve", "--config", str(config))
    assert refused.returncode == 2
    assert "environment or the secrets folder" in refused.stderr
    assert "sk-should-not-be-here" not in refused.stderr


QWEN = "qwen2.5-coder-0.5b"
ADD = 'def add(a, b):\n    """Add two numbers."""\n    return a + b\n'
ADD_CARD = card_json(ADD, "add", "What is 2 plus 3?", "ans = add(a=2, b=3)", "5")


@pytest.fixture
def modelless(env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """The default local model in both roles, and an empty model cache."""
    (tmp_path / "models").mkdir()
    return {
        **env,
        "LATM_MODELS_DIR": str(tmp_path / "models"),
        "LATM_USER_MODEL": f"local:{QWEN}",
        "LATM_MAKER_MODEL": f"local:{QWEN}",
        "LATM_LOG_FORMAT": "json",
    }


def health(address: str, service: str) -> int:
    """The health service's status for ``service`` ('' is the whole server)."""
    with grpc.insecure_channel(address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=10
        )
    return int(reply.status)


def stop(process: subprocess.Popen[str]) -> str:
    """SIGTERM ``process``; its stderr once it exited 0."""
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err[-2000:]
    return err


def test_serve_starts_without_its_model_and_refuses_only_what_needs_it(
    modelless: dict[str, str], tmp_path: Path
) -> None:
    require_bwrap()
    key = latm(modelless, "tenants", "create", "acme").stdout.strip()
    process, address = serve(modelless, "--listen", f"unix:{tmp_path}/api.sock")
    try:
        for service in ("", "latm.orchestrator.v1.OrchestratorService"):
            assert health(address, service) == health_pb2.HealthCheckResponse.SERVING
        for role in ("user", "maker"):
            assert (
                health(address, f"latm.model.{role}") == health_pb2.HealthCheckResponse.NOT_SERVING
            )
        with Client(address, key) as client:
            client.import_tool(ADD_CARD)  # its demo runs in the sandbox: no model needed
            assert client.execute_tool("add", {"a": 2, "b": 40}).value == 42
            assert [tool.name for tool in client.list_tools()] == ["add"]
            with pytest.raises(ModelNotAvailable) as solve:
                client.solve("What is 2 plus 3?")
            with pytest.raises(ModelNotAvailable) as make:
                list(client.make_tool("sums", [("1 + 1", "2")]))
    finally:
        err = stop(process)
    for refused in (solve.value, make.value):
        assert refused.code is grpc.StatusCode.FAILED_PRECONDITION  # the class the code named
        assert f"latm models fetch {QWEN}" in str(refused)
    records = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    warnings = [record["message"] for record in records if record["level"] == "WARNING"]
    assert len(warnings) == 1, warnings
    assert f"latm models fetch {QWEN}" in warnings[0]
    calls = {record["message"] for record in records if record["logger"] == "latm.api"}
    assert {"Solve FAILED_PRECONDITION", "ExecuteTool OK"} <= calls


def test_a_model_fetched_after_the_start_is_reported_available(
    modelless: dict[str, str], tmp_path: Path
) -> None:
    pytest.importorskip("llama_cpp", reason="a local model's server needs llama-cpp-python")
    process, address = serve(modelless, "--listen", f"unix:{tmp_path}/api.sock")
    try:
        assert health(address, "latm.model.user") == health_pb2.HealthCheckResponse.NOT_SERVING
        model = catalog.CATALOG[QWEN]
        # What the fetch leaves for the cache check: a file of the pinned size (sparse:
        # never loaded here) and the manifest written after verification.
        with (tmp_path / "models" / model.filename).open("wb") as handle:
            handle.truncate(model.size)
        manifest = tmp_path / "models" / f"{model.filename}.json"
        manifest.write_text(json.dumps({"name": QWEN, "sha256": model.sha256}))
        deadline = time.monotonic() + 15
        while health(address, "latm.model.user") != health_pb2.HealthCheckResponse.SERVING:
            assert time.monotonic() < deadline, "the fetched model was not picked up"
            time.sleep(0.2)
        assert health(address, "latm.model.maker") == health_pb2.HealthCheckResponse.SERVING
    finally:
        err = stop(process)
    assert f"model local:{QWEN} is available now" in err
