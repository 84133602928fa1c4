"""The ``latm`` CLI against a running ``latm serve`` over TLS (``--server``), both run as
separate processes the way a user runs them: the tenant's tools, exec by name, solve and make
with scripted models, usage, and the refusals (a credentials file others can read, plaintext
beyond loopback, another tenant's name)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.api import ADD_CARD
from tests.support.cli import latm
from tests.support.maker import SORT, maker_script, scripted, word_sorting
from tests.support.tls import make_pki

pytestmark = pytest.mark.integration

QUESTION = "What is 2 plus 3?"
READY = "latm: serving on "
# What a user's shell may hold that would point these runs elsewhere.
OUTSIDE = ("LATM_SERVER", "LATM_API_KEY", "LATM_CREDENTIALS", "LATM_TLS_CA", "LATM_TLS_CERT")


@dataclass(frozen=True)
class Served:
    """A ``latm serve`` on TLS with tenant acme: the CLI's environment to reach it."""

    address: str
    key: str
    env: dict[str, str]  # the CLI's: the CA and the key, no LATM_SERVER
    folder: Path


def server_env(folder: Path) -> dict[str, str]:
    """The server's settings: a fresh registry, the process backend, scripted models."""
    user = [{"response": "ans = add(a=2, b=3)", "expect": [QUESTION]}]
    return {
        **{k: v for k, v in os.environ.items() if k not in OUTSIDE and k != "LATM_TLS_KEY"},
        "XDG_CONFIG_HOME": str(folder / "config"),  # no credentials file of the user's
        "LATM_DATABASE_URL": f"sqlite:///{folder / 'registry.db'}",
        "LATM_BACKEND": "process",
        "LATM_USER_MODEL": scripted(folder, "user", user),
        "LATM_MAKER_MODEL": scripted(folder, "maker", maker_script(SORT)),
    }


def start(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[str], str]:
    with log.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "orchestrator.cli", "serve", "--listen", "127.0.0.1:0"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=sink,
            text=True,
        )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith(READY):
        process.kill()
        process.wait()
        pytest.fail(f"latm serve did not start: {line!r}\n{log.read_text()[-3000:]}")
    return process, line.removeprefix(READY).strip()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("remote")
    env = server_env(folder)
    created = latm(env, "tenants", "create", "acme")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    pki = make_pki(folder / "pki")
    tls = {"LATM_TLS_CERT_FILE": str(pki.server_cert), "LATM_TLS_KEY_FILE": str(pki.server_key)}
    process, address = start({**env, **tls}, folder / "serve.log")
    try:
        cli = {**env, "LATM_TLS_CA": str(pki.ca), "LATM_API_KEY": key}
        yield Served(address, key, cli, folder)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


def remote(served: Served, *args: str, env: dict[str, str] | None = None) -> Run:
    done = latm(env or served.env, *args)
    assert served.key not in done.stdout + done.stderr
    return Run(done.returncode, done.stdout, done.stderr)


def test_the_tenants_tools_over_tls(served: Served, tmp_path: Path) -> None:
    card = tmp_path / "add.json"
    card.write_text(ADD_CARD)
    server = ("--server", served.address)
    imported = remote(served, *server, "tools", "import", str(card))
    assert (imported.code, imported.out.strip()) == (
        0,
        "add v1 (usage demos proven 1/1 in the sandbox)",
    ), imported.err
    [row] = json.loads(remote(served, "tools", "list", "--json", *server).out)
    assert (row["name"], row["version"], row["uses"]) == ("add", 1, 0)
    listed = remote(served, "tools", *server, "list")
    assert "tools of tenant acme" in listed.out
    assert "Add two numbers." in listed.out
    assert "add v1" in remote(served, *server, "tools", "show", "add").out
    exported = json.loads(remote(served, "tools", "export", "add", *server).out)
    assert (exported["format"], exported["name"]) == ("latm.tool/v1", "add")

    called = remote(served, "exec", "add", "--args", '{"a": 2, "b": 40}', *server)
    assert called.code == 0, called.err
    result = json.loads(called.out)
    assert (result["status"], result["value"], result["error"]) == ("ok", 42, None)
    assert set(result) == {"status", "value", "stdout", "error", "isolation", "usage"}
    failed = remote(served, *server, "exec", "add", "--args", '{"a": 2, "b": "x"}')
    assert failed.code == 1
    assert json.loads(failed.out)["status"] == "error"
    unknown = remote(served, *server, "exec", "nope", "--args", "{}")
    assert (unknown.code, unknown.out) == (1, "")
    assert "latm exec: no tool 'nope' in tenant 'acme'" in unknown.err
    not_an_object = remote(served, *server, "exec", "add", "--args", "[2, 40]")
    assert not_an_object.code == 2
    assert "--args must be a JSON object" in not_an_object.err

    removed = remote(served, *server, "tools", "rm", "add")
    assert removed.out.strip() == "removed 1 version(s) of add"
    gone = remote(served, "tools", "show", "add", *server)
    assert gone.code == 1
    assert "latm tools show: no tool 'add' in tenant 'acme'" in gone.err


def test_solve_then_usage(served: Served, tmp_path: Path) -> None:
    card = tmp_path / "add.json"
    card.write_text(ADD_CARD)
    env = {**served.env, "LATM_SERVER": served.address}  # the server from the environment
    assert remote(served, "tools", "import", str(card), env=env).code == 0
    solved = remote(served, "--json", "solve", QUESTION, env=env)
    assert solved.code == 0, solved.err
    answer = json.loads(solved.out)
    assert (answer["answer"], answer["tool"], answer["route"]) == ("5", "add", "tool")
    assert set(answer) >= {"usage", "cost_usd", "wall_s", "request_id", "confidence"}
    usage = remote(served, "usage", "--json", env=env)
    assert usage.code == 0, usage.err
    report = json.loads(usage.out)
    assert report["tenant"] == "acme"
    assert report["total"]["calls"] >= 1
    assert report["total"]["prompt_tokens"] > 0
    assert report["by_tool"]["add"]["calls"] >= 1
    assert sum(period["calls"] for period in report["by_period"]) == report["total"]["calls"]
    assert "usage of tenant acme" in remote(served, "usage", env=env).out


def test_make_shows_the_servers_progress(served: Served, tmp_path: Path) -> None:
    task = tmp_path / "word_sorting.json"
    examples = [{"input": q, "target": a} for q, a in word_sorting()]
    task.write_text(json.dumps({"examples": examples}))
    made = remote(served, "make", str(task), "--json", "--server", served.address)
    assert made.code == 0, made.err
    report = json.loads(made.out)
    assert (report["published"], report["tool"], report["version"]) == (True, "sort_words", 1)
    assert report["attempts"] == {"propose": 1, "verify": 1}
    assert report["card"]["verification"] == {
        **report["card"]["verification"],
        "passed": 3,
        "total": 3,
    }
    assert report["usage"]["prompt_tokens"] > 0
    lines = [line.split(maxsplit=1) for line in made.err.splitlines() if line.strip()]
    assert ["propose", "attempt 1: asking the maker for a tool"] in lines
    assert ["propose", "tool sort_words(question: str) -> str solves the"] in [
        [stage, message[:48]]
        for stage, message in lines  # the line is cut at 80 columns
    ]
    assert ["verify", "attempt 1: the maker writes calls for 3 held-out questions"] in lines
    assert ["wrap", "tool sort_words verified 3/3"] in lines


def test_a_shared_flag_means_the_same_on_either_side(served: Served) -> None:
    server = ["--server", served.address]
    runs = [
        remote(served, *server, "--json", "tools", "list"),
        remote(served, "tools", "list", "--json", *server),
        remote(served, "tools", *server, "list", "--json"),
        remote(served, "--json", "tools", "list", *server),
    ]
    assert {run.code for run in runs} == {0}
    assert len({run.out for run in runs}) == 1
    assert "--server" in remote(served, "tools", "list", "--help").out


def test_the_key_decides_the_tenant(served: Served) -> None:
    server = ("--server", served.address)
    assert remote(served, "--tenant", "acme", "tools", "list", *server).code == 0
    other = remote(served, "tools", "list", "--tenant", "other", *server)
    assert other.code == 1
    assert "--tenant other: the API key is tenant acme's" in other.err


def test_a_credentials_file_others_can_read_is_refused(served: Served, tmp_path: Path) -> None:
    credentials = tmp_path / "credentials"
    credentials.write_text(served.key + "\n")
    env = {k: v for k, v in served.env.items() if k != "LATM_API_KEY"}
    server = ("--server", served.address, "--credentials", str(credentials))
    credentials.chmod(0o644)
    refused = remote(served, *server, "tools", "list", "--json", env=env)
    assert (refused.code, refused.out) == (2, "")
    assert f"credentials file {credentials} has mode 0644" in refused.err
    assert f"chmod 600 {credentials}" in refused.err
    credentials.chmod(0o600)
    allowed = remote(served, *server, "tools", "list", "--json", env=env)
    assert allowed.code == 0, allowed.err
    default = Path(env["XDG_CONFIG_HOME"]) / "latm" / "credentials"
    default.parent.mkdir(parents=True, exist_ok=True)
    default.write_text(served.key)
    default.chmod(0o600)
    found = remote(served, "usage", "--json", "--server", served.address, env=env)
    assert json.loads(found.out)["tenant"] == "acme"


def test_plaintext_beyond_loopback_is_refused(served: Served) -> None:
    env = {k: v for k, v in served.env.items() if k != "LATM_TLS_CA"}
    refused = remote(served, "--server", "192.0.2.1:50051", "tools", "list", env=env)
    assert (refused.code, refused.out) == (2, "")
    assert "refusing plaintext to 192.0.2.1:50051" in refused.err
    wrong_ca = remote(
        served,
        *("--server", served.address, "--tls-ca", str(served.folder / "pki" / "other-ca.pem")),
        *("exec", "add", "--args", "{}"),
    )
    assert wrong_ca.code == 1
    assert "latm exec: failed to connect" in wrong_ca.err  # after gRPC's own log line
    assert "CERTIFICATE_VERIFY_FAILED" in wrong_ca.err
