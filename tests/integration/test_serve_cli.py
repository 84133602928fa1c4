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

import pytest

from orchestrator.client import Client
from orchestrator.errors import Unauthenticated
from tests.support.backends import require_bwrap
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
