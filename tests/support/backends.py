"""Sandbox backends for the suites that start real ones: bubblewrap or unshare child
processes, and Docker containers under runc or gVisor (runsc); a skip names what is
missing."""

from __future__ import annotations

import shutil
from functools import cache

import pytest

from orchestrator.sandboxes.base import SandboxBackend
from orchestrator.sandboxes.process import ProcessBackend, ProcessIsolation

# The tool module the contract and process suites call: plain functions, module state
# (which must not survive from one call to the next) and a class attribute.
TOOL = """
import math

SEEN = []


class Tally:
    total = 0


def double(x):
    return x * 2


def remember(x):
    SEEN.append(x)
    Tally.total += x
    return [len(SEEN), Tally.total]
"""


def require_bwrap() -> None:
    """Skip the test unless bubblewrap is installed."""
    if shutil.which("bwrap") is None:
        pytest.skip("bubblewrap is not installed (apt-get install bubblewrap)")


@cache
def docker_problem(runtime: str) -> str:
    """Why Docker tests cannot run here ('' when they can)."""
    try:
        import docker
    except ImportError:
        return "the docker SDK is not installed (pip install 'latm[docker]')"
    try:
        client = docker.from_env(timeout=10)
        info = client.info()
    except Exception as exc:
        return f"no Docker engine is reachable ({exc}); run scripts/docker_engine.sh"
    if runtime not in info.get("Runtimes", {}):
        return f"the {runtime} runtime is not registered with Docker (scripts/docker_engine.sh)"
    from orchestrator.images import sandbox_image_tag

    try:
        client.images.get(sandbox_image_tag())
    except docker.errors.ImageNotFound:
        return f"image {sandbox_image_tag()} is not built (latm image build --offline-base)"
    return ""


def require_docker(runtime: str = "runc") -> None:
    """Skip the test unless Docker can run sandboxes under ``runtime``."""
    problem = docker_problem(runtime)
    if problem:
        pytest.skip(problem)


# The contract suite runs against every flavour of every backend.
BACKENDS = ["process-bwrap", "process-unshare", "docker-runc", "docker-runsc"]


def make_backend(flavour: str, **options: object) -> SandboxBackend:
    """A backend of ``flavour``; ``options`` go to the docker backend's options."""
    kind, _, variant = flavour.partition("-")
    if kind == "process":
        mode = ProcessIsolation(variant)
        if mode is ProcessIsolation.BWRAP:
            require_bwrap()
        return ProcessBackend(mode, **options)  # type: ignore[arg-type]
    require_docker(variant)
    from orchestrator.sandboxes.docker import DockerBackend, DockerOptions, Runtime

    return DockerBackend(DockerOptions(runtime=Runtime(variant), **options))  # type: ignore[arg-type]


def docker_marks(flavour: str) -> list[pytest.MarkDecorator]:
    """The marks of a test parameter on ``flavour``: ``docker`` for Docker flavours."""
    return [pytest.mark.docker] if flavour.startswith("docker") else []


BACKEND_PARAMS = [pytest.param(f, marks=docker_marks(f), id=f) for f in BACKENDS]


async def close_backend(request: pytest.FixtureRequest, shared: SandboxBackend) -> None:
    """Close a shared backend; after a failed test, print its sandbox servers' log tails."""
    if request.session.testsfailed and isinstance(shared, ProcessBackend):
        for tenant, server in shared._servers.items():
            print(f"sandbox server of tenant {tenant!r}, log tail:\n{server.log_tail()}")
    await shared.close()
