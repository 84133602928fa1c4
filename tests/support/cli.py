"""The ``latm`` command line and the benchmark scripts, run as separate processes the
way a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def latm(
    env: dict[str, str], *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``latm ARGS`` in ``env`` to completion (two minutes at most), capturing text."""
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def serve(env: dict[str, str], *args: str) -> tuple[subprocess.Popen[str], str]:
    """Start ``latm serve``; return it and the address it printed once ready."""
    process = subprocess.Popen(
        [sys.executable, "-m", "orchestrator.cli", "serve", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("latm: serving on "):
        process.kill()
        _, err = process.communicate()
        pytest.fail(f"latm serve did not start: {line!r} {err[-2000:]}")
    return process, line.removeprefix("latm: serving on ").strip()


def run_benchmark(script: str, out: Path, *args: str, timeout: float) -> dict[str, Any]:
    """Run ``bench/SCRIPT --quick`` and return the JSON it wrote to ``out``."""
    done = subprocess.run(
        [sys.executable, f"bench/{script}", "--quick", "--out", str(out), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    report: dict[str, Any] = json.loads(out.read_text())
    return report
