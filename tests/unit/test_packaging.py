"""The wheel: every data file the platform reads at run time is in it, and setuptools finds no
package it would leave out (pip prints that warning at every install)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from orchestrator.cli import demo
from orchestrator.latm.tasks import load_task

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "README.md", "orchestrator", "sandbox", "protos")
UNDECLARED = "is absent from the `packages` configuration"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], str]:
    """The wheel's file names and the build's output (pip -v shows the backend's warnings)."""
    pytest.importorskip("setuptools")
    work = tmp_path_factory.mktemp("wheel")
    (work / "src").mkdir()
    # A copy: pip builds in the source tree, and build/ and *.egg-info left in the checkout
    # would be shared by every run.
    for name in SOURCES:
        if (ROOT / name).is_dir():
            skipped = shutil.ignore_patterns("__pycache__", "*.egg-info", "build")
            shutil.copytree(ROOT / name, work / "src" / name, ignore=skipped)
        else:
            shutil.copy2(ROOT / name, work / "src" / name)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-build-isolation",
         "--no-index", "-w", str(work / "out"), str(work / "src")],
        capture_output=True, text=True, timeout=90, check=False,
    )  # fmt: skip
    output = built.stdout + built.stderr
    assert built.returncode == 0, output
    (path,) = (work / "out").glob("latm-*.whl")
    with zipfile.ZipFile(path) as archive:
        return archive.namelist(), output


def test_every_data_file_is_in_the_wheel(wheel: tuple[list[str], str]) -> None:
    names, _ = wheel
    data = [
        path.relative_to(ROOT).as_posix()
        for top in ("orchestrator", "sandbox")
        for path in (ROOT / top).rglob("*")
        if path.is_file() and path.suffix not in {".py", ".pyc"}
    ]
    assert "orchestrator/cli/demo_tasks/sum_numbers.jsonl" in data
    assert sorted(set(data) - set(names)) == []


def test_the_build_leaves_no_package_out(wheel: tuple[list[str], str]) -> None:
    _, output = wheel
    assert "Successfully built latm" in output
    assert UNDECLARED not in output


def test_the_api_code_is_left_to_latm_client(wheel: tuple[list[str], str]) -> None:
    # latm.orchestrator.v1 ships in latm-client (clients/python), on which latm depends;
    # `latm` is a namespace package that both distributions add to.
    names, _ = wheel
    assert "latm/sandbox/v1/sandbox_pb2.py" in names
    assert "latm/__init__.py" not in names
    assert not [name for name in names if name.startswith("latm/orchestrator/")]


def test_latm_pins_the_client_of_the_same_checkout() -> None:
    root = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    client = tomllib.loads((ROOT / "clients/python/pyproject.toml").read_text())["project"]
    assert f"latm-client=={client['version']}" in root["dependencies"]
    assert sorted(client["dependencies"]) == [
        "googleapis-common-protos>=1.63", "grpcio>=1.85.1", "protobuf>=7.35.1,<8",
    ]  # fmt: skip


def test_the_demo_finds_its_task() -> None:
    task = load_task(demo.DEMO_TASK)
    assert task.examples
