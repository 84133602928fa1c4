"""Node.js for the interoperability clients in ``tests/interop/node`` (the gRPC client
on ``@grpc/grpc-js`` and the MCP client on ``@modelcontextprotocol/sdk``), installed by
``scripts/setup_node.sh``; a missing one skips, or fails under ``CI=true``."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import NoReturn

import pytest

from tests.conftest import IN_CI

ROOT = Path(__file__).resolve().parents[2]
NODE_CLIENT = ROOT / "tests" / "interop" / "node"


def missing(reason: str) -> NoReturn:
    """Skip outside CI; under ``CI=true`` a missing component is a failure."""
    if IN_CI:
        pytest.fail(f"{reason} (CI must provide it)")
    pytest.skip(reason)


def node_ready() -> str:
    """The node binary, with the clients' packages installed (scripts/setup_node.sh)."""
    node = shutil.which("node")
    if node is None or shutil.which("npm") is None:
        missing("node and npm are not installed (scripts/setup_node.sh installs them)")
    setup = subprocess.run(
        ["bash", str(ROOT / "scripts" / "setup_node.sh")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if setup.returncode != 0:
        missing(f"scripts/setup_node.sh failed: {setup.stderr.strip()[-2000:]}")
    return node
