"""The light client package: latm-client's wheel, installed in a clean venv with only its own
dependencies, runs its README's use against a live ``latm serve`` and raises the typed errors,
without the orchestrator or any of its heavy dependencies."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from latm_client import Client

from tests.support.cards import card_json
from tests.support.cli import latm, serve

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "clients" / "python"
# What a service that only calls the API must not have to install.
HEAVY = ("latm", "sqlalchemy", "alembic", "openai", "anthropic", "numpy", "bm25s",
         "llama-cpp-python", "docker", "psycopg", "pydantic", "mcp", "grpcio-tools")  # fmt: skip
ADD = 'def add(a, b):\n    """Adds two numbers."""\n    return a + b\n'


def _run(
    *args: str | Path,
    timeout: float = 240,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> str:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=timeout, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """latm-client's wheel, built from a copy of clients/python (a build in the checkout
    would leave build/ and *.egg-info there)."""
    work = tmp_path_factory.mktemp("client-wheel")
    skipped = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
    shutil.copytree(CLIENT, work / "src", ignore=skipped)
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "-w", work / "out", work / "src")  # fmt: skip
    (path,) = (work / "out").glob("latm_client-*.whl")
    return path


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new venv with the wheel and what it depends on, from the package index."""
    folder = tmp_path_factory.mktemp("client-venv") / "venv"
    _run(sys.executable, "-m", "venv", folder)
    _run(folder / "bin" / "python", "-m", "pip", "install", "-q",
         "--disable-pip-version-check", wheel)  # fmt: skip
    return folder


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """``latm serve`` on a loopback port, with a tenant whose key it returns and the tool
    ``add`` imported."""
    tmp = tmp_path_factory.mktemp("client-serve")
    user = tmp / "user.json"
    user.write_text("[]")
    env = {
        **os.environ,
        "LATM_DATABASE_URL": f"sqlite:///{tmp / 'registry.db'}",
        "LATM_BACKEND": "process",
        "LATM_PROCESS_ISOLATION": os.environ.get("LATM_PROCESS_ISOLATION", "auto"),
        "LATM_USER_MODEL": f"scripted:{user}",
        "LATM_MAKER_MODEL": f"scripted:{user}",
    }
    created = latm(env, "tenants", "create", "acme")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    process, address = serve(env, "--listen", "127.0.0.1:0")
    try:
        with Client(address, key) as client:
            client.import_tool(card_json(ADD, "add", "2 plus 40", "ans = add(2, 40)", "42"))
        yield address, key
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)


def _in_venv(venv: Path, code: str, key: str, cwd: Path) -> str:
    """Run ``code`` with the venv's Python in isolated mode (no checkout on its path)."""
    env = {"PATH": os.environ.get("PATH", ""), "LATM_API_KEY": key}
    return _run(venv / "bin" / "python", "-I", "-c", code, cwd=cwd, env=env, timeout=60)


def readme_use() -> str:
    """The Python block of clients/python/README.md."""
    (block,) = re.findall(r"```python\n(.*?)```", (CLIENT / "README.md").read_text(), re.S)
    return str(block)


def test_the_wheel_holds_the_client_and_the_generated_api(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for module in ("orchestrator_pb2.py", "orchestrator_pb2.pyi", "orchestrator_pb2_grpc.py"):
        assert f"latm/orchestrator/v1/{module}" in names
    assert {"latm_client/__init__.py", "latm_client/errors.py", "latm_client/py.typed"} <= names
    # `latm` stays a namespace package: the orchestrator's distribution adds latm.sandbox.
    assert not {n for n in names if n.startswith("latm/") and n.count("/") < 3}
    assert not {n for n in names if n.startswith(("latm/sandbox", "orchestrator/", "sandbox/"))}


def test_a_clean_venv_gets_only_the_three_dependencies(venv: Path) -> None:
    listed = _run(venv / "bin" / "python", "-m", "pip", "list", "--format=freeze")
    installed = {line.split("==")[0].lower() for line in listed.split()}
    assert {"latm-client", "grpcio", "protobuf", "googleapis-common-protos"} <= installed
    assert not installed & set(HEAVY), listed


def test_the_readme_use_runs_against_latm_serve(
    venv: Path, server: tuple[str, str], tmp_path: Path
) -> None:
    address, key = server
    use = readme_use()
    assert len([line for line in use.splitlines() if line.strip()]) <= 5
    assert "127.0.0.1:50051" in use
    output = _in_venv(venv, use.replace("127.0.0.1:50051", address), key, tmp_path)
    assert output.strip() == "42"


def test_the_typed_errors_and_the_async_client_need_no_orchestrator(
    venv: Path, server: tuple[str, str], tmp_path: Path
) -> None:
    address, key = server
    code = textwrap.dedent(f"""
        import asyncio, importlib.util, os
        from latm_client import AsyncClient, Client, ToolNotFound, Unauthenticated
        from latm.orchestrator.v1 import orchestrator_pb2

        for absent in ("orchestrator", "sandbox", "latm.sandbox", "numpy", "sqlalchemy"):
            assert importlib.util.find_spec(absent) is None, absent
        with Client({address!r}, os.environ["LATM_API_KEY"]) as client:
            try:
                client.execute_tool("no_such_tool")
            except ToolNotFound as error:
                print("ToolNotFound", error.code.name)
            result = client.execute_tool("add", {{"a": 1, "b": 2}})
            print(result.status, result.value, isinstance(result.ok, bool))
        with Client({address!r}, "latm_0000000000000000_" + "a" * 43) as forged:
            try:
                forged.list_tools()
            except Unauthenticated:
                print("Unauthenticated")

        async def main():
            async with AsyncClient({address!r}, os.environ["LATM_API_KEY"]) as client:
                tools = await client.list_tools()
                print([tool.name for tool in tools], type(tools[0]) is orchestrator_pb2.ToolSummary)

        asyncio.run(main())
    """)
    lines = _in_venv(venv, code, key, tmp_path).splitlines()
    assert lines == [
        "ToolNotFound NOT_FOUND",
        "ok 3 True",
        "Unauthenticated",
        "['add'] True",
    ]
