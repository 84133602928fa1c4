"""Clients written by others: a Node.js client (``@grpc/grpc-js`` + ``@grpc/proto-loader``,
built from the .proto alone) calls ``latm serve`` over TLS, and ``buf curl`` lists its services
through reflection and calls the health check.

The server is the real ``latm serve`` process, on an ephemeral port, with a tenant made by
``latm tenants create``, a private CA, and a scripted user model.
"""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from orchestrator.client import Client, TlsFiles
from tests.support.api import ADD_CARD
from tests.support.node import NODE_CLIENT, missing, node_ready
from tests.support.tls import make_pki

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PROTO = ROOT / "protos" / "latm" / "orchestrator" / "v1" / "orchestrator.proto"
SERVICE = "latm.orchestrator.v1.OrchestratorService"
HEALTH = "grpc.health.v1.Health"
READY = "latm: serving on "
START_TIMEOUT_S = 60.0
GRACE_S = 5.0

QUESTION = "What is 2 plus 3?"


@dataclass(frozen=True)
class Served:
    """A running ``latm serve``: where it listens, a tenant's key, and the CA to trust."""

    address: str
    api_key: str
    ca: Path
    other_ca: Path  # a CA the server's certificate does not chain to
    log: Path


def hermetic_env(folder: Path) -> dict[str, str]:
    """The caller's environment without its LATM_* settings, plus this server's."""
    user = folder / "user.json"
    user.write_text(json.dumps([{"response": "ans = add(a=2, b=3)", "expect": [QUESTION]}]))
    maker = folder / "maker.json"
    maker.write_text("[]")
    pki = make_pki(folder / "pki")
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("LATM_")},
        "LATM_DATABASE_URL": f"sqlite:///{folder / 'registry.db'}",
        "LATM_BACKEND": "process",
        "LATM_USER_MODEL": f"scripted:{user}",
        "LATM_MAKER_MODEL": f"scripted:{maker}",
        "LATM_TLS_CERT_FILE": str(pki.server_cert),
        "LATM_TLS_KEY_FILE": str(pki.server_key),
        "LATM_SHUTDOWN_GRACE_S": str(GRACE_S),
        "LATM_LOG_FORMAT": "text",
    }


def latm(env: dict[str, str], cwd: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"latm {' '.join(args)}: {done.stderr}"
    return done.stdout


def wait_ready(server: subprocess.Popen[str], log: Path) -> str:
    """The address from the server's ``latm: serving on ADDRESS`` line."""
    stdout = server.stdout
    assert stdout is not None
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:  # drains stdout for the server's whole life
        for line in stdout:
            lines.put(line)
        lines.put("")  # end of output: the server exited

    threading.Thread(target=pump, daemon=True).start()
    try:
        while True:
            line = lines.get(timeout=START_TIMEOUT_S)
            if line.startswith(READY):
                return line[len(READY) :].strip()
            if not line:
                break
    except queue.Empty:
        pass
    pytest.fail(f"latm serve did not report ready; its log:\n{log.read_text()[-4000:]}")


def stop(server: subprocess.Popen[str], log: Path) -> None:
    server.send_signal(signal.SIGTERM)
    try:
        code = server.wait(timeout=GRACE_S + 15)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()
        pytest.fail(f"latm serve ignored SIGTERM; its log:\n{log.read_text()[-4000:]}")
    assert code == 0, f"latm serve exited {code}; its log:\n{log.read_text()[-4000:]}"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("interop")
    env = hermetic_env(folder)
    api_key = latm(env, folder, "tenants", "create", "interop").strip().splitlines()[-1]
    log = folder / "serve.log"
    with log.open("w") as sink:
        server = subprocess.Popen(
            [sys.executable, "-m", "orchestrator.cli", "serve", "--listen", "127.0.0.1:0"],
            env=env,
            cwd=folder,
            stdout=subprocess.PIPE,
            stderr=sink,
            text=True,
        )
    try:
        address = wait_ready(server, log)
        ca = folder / "pki" / "ca.pem"
        with Client(address, api_key, tls=TlsFiles(ca=ca)) as client:
            assert client.import_tool(ADD_CARD).version == 1
        yield Served(address, api_key, ca, folder / "pki" / "other-ca.pem", log)
    finally:
        stop(server, log)


def buf() -> str:
    found = Path(sys.executable).with_name("buf")
    path = str(found) if found.exists() else shutil.which("buf")
    if path is None:
        missing("buf is not installed (pip install 'latm[dev]' brings buf-bin)")
    return path


def buf_curl(served: Served, *args: str) -> str:
    done = subprocess.run(
        [buf(), "curl", "--protocol", "grpc", "--cacert", str(served.ca), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"buf curl {' '.join(args)}: {done.stderr}"
    return done.stdout


def run_node_client(served: Served, ca: Path) -> tuple[int, dict[str, Any], str]:
    """client.js's exit status, its JSON report and its stderr."""
    node = node_ready()
    args = ["--target", served.address, "--ca", str(ca), "--proto", str(PROTO)]
    done = subprocess.run(
        [node, "client.js", *args],
        cwd=NODE_CLIENT,
        env={**os.environ, "LATM_API_KEY": served.api_key},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.stdout.strip(), f"client.js printed nothing: {done.stderr}"
    return done.returncode, json.loads(done.stdout), done.stderr


def test_node_grpc_js_client_over_tls(served: Served) -> None:
    code, report, stderr = run_node_client(served, served.ca)
    assert report["mismatches"] == [], json.dumps(report, indent=2)
    assert code == 0, stderr
    assert [t["name"] for t in report["list_tools"]["response"]["tools"]] == ["add"]
    execution = report["execute_tool"]["response"]
    assert (execution["status"], json.loads(execution["value_json"])) == ("EXEC_STATUS_OK", 42)
    answer = report["solve"]["response"]
    assert (answer["answer"], answer["route"], answer["tool"]) == ("5", "tool", "add")
    assert answer["call"] == "ans = add(a=2, b=3)"
    assert report["unauthenticated"]["error"]["code"] == 16  # UNAUTHENTICATED


def test_node_client_refuses_a_server_its_ca_did_not_sign(served: Served) -> None:
    code, report, _ = run_node_client(served, served.other_ca)
    assert code == 1
    assert report["list_tools"]["error"]["code"] == 14  # UNAVAILABLE: the handshake failed
    assert report["execute_tool"]["error"]["code"] == 14


def test_buf_curl_lists_services_through_reflection(served: Served) -> None:
    url = f"https://{served.address}"
    services = buf_curl(served, "--list-services", url).split()
    assert SERVICE in services
    assert HEALTH in services
    methods = buf_curl(served, "--list-methods", url).split()
    for name in ("MakeTool", "Solve", "ExecuteTool", "ListTools", "ImportTool", "GetUsage"):
        assert f"{SERVICE}/{name}" in methods


def test_buf_curl_calls_the_health_check(served: Served) -> None:
    url = f"https://{served.address}/{HEALTH}/Check"
    assert json.loads(buf_curl(served, "-d", "{}", url)) == {"status": "SERVING"}
    named = buf_curl(served, "-d", json.dumps({"service": SERVICE}), url)
    assert json.loads(named) == {"status": "SERVING"}
