"""The red-team suite's fixtures: one shared backend per flavour and allow-list.

Every attack runs against every flavour: bubblewrap processes, Docker with runc and
Docker with gVisor. ``backend`` serves the shipped allow-list, where the language
layers (AST policy, RestrictedPython, run-time guards) stop an attack first.
``os_backend`` is the same flavour with the allow-list widened by the operator
(``os``, ``socket``, ``ctypes`` ...), so that an attack reaches the layers beneath
(seccomp, rlimits, namespaces, the container, gVisor) and those are proven on
their own. Each test asserts that the attack fails AND that the platform is
healthy afterwards (:func:`assert_healthy`).
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio

from orchestrator.registry import ToolRegistry
from orchestrator.sandboxes import ExecRequest, ExecResult, Status
from orchestrator.sandboxes.base import SandboxBackend
from orchestrator.sandboxes.pool import PoolConfig
from orchestrator.sandboxes.process import SCRATCH_FOLDERS, install_in_scratch
from tests.support.attacks import REFUSED, Payload
from tests.support.backends import TOOL, close_backend, docker_marks, make_backend

FLAVOURS = ["process-bwrap", "docker-runc", "docker-runsc"]
FLAVOUR_PARAMS = [pytest.param(f, marks=docker_marks(f), id=f) for f in FLAVOURS]

# What an operator may widen the allow-list with: enough to reach the OS layers.
OS_MODULES = ["os", "time", "threading", "socket", "ctypes", "mmap", "signal"]

ATTACKER = "mallory"
VICTIM = "alice"
MARK = "ESCAPED"  # what a payload returns only when its attack worked
SECRET = "sk-latm-redteam-secret-7f3a"
SECRET_ENV = {"OPENAI_API_KEY": SECRET, "LATM_DATABASE_URL": f"postgresql://u:{SECRET}@db/latm"}

# The scratch entries a bwrap sandbox's server owns when this checkout lives under /tmp:
# its Python install, bound there (none for a checkout elsewhere, or in a container).
SERVER_OWN = sorted(
    str(folder / root.relative_to(folder).parts[0])
    for root in install_in_scratch()
    for folder in SCRATCH_FOLDERS
    if root.is_relative_to(folder)
)
# A call that lists what a sandbox holds that a call could have left behind: scratch
# files and processes other than the server's own.
INVENTORY = (
    f"own = {SERVER_OWN!r}\n"
    + """
import os
found = []
for folder in ('/tmp', '/dev/shm', '/run/latm'):
    try:
        names = os.listdir(folder)
    except OSError:
        continue
    for name in names:
        if name in ('sandbox.sock', 'tunnel.sock') or name.startswith('latm-sandbox-'):
            continue
        if folder + '/' + name not in own:
            found.append(folder + '/' + name)
for pid in os.listdir('/proc'):
    if pid.isdigit():
        try:
            fd = os.open('/proc/' + pid + '/cmdline', os.O_RDONLY)
            line = os.read(fd, 4096)
            os.close(fd)
        except OSError:
            continue
        if line and b'sandbox' not in line and b'bwrap' not in line:
            found.append('process ' + pid + ': ' + line.decode('utf-8', 'replace'))
ans = found
"""
)


@pytest.fixture(scope="session", autouse=True)
def orchestrator_secrets() -> Iterator[dict[str, str]]:
    """Secrets sit in the orchestrator's environment while every sandbox starts."""
    saved = {name: os.environ.get(name) for name in SECRET_ENV}
    os.environ.update(SECRET_ENV)
    yield SECRET_ENV
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def _backend(flavour: str, allow_modules: list[str]) -> SandboxBackend:
    if flavour.startswith("docker"):
        return make_backend(
            flavour, allow_modules=allow_modules, pool=PoolConfig(min_idle=1, max_size=3)
        )
    return make_backend(flavour, allow_modules=allow_modules)


@pytest_asyncio.fixture(loop_scope="session", scope="package", params=FLAVOUR_PARAMS)
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[SandboxBackend]:
    """A backend with the shipped allow-list, shared by the suite (closed when it ends,
    so later leftover-container checks see none of it)."""
    shared = _backend(request.param, [])
    try:
        yield shared
    finally:
        await close_backend(request, shared)


@pytest_asyncio.fixture(loop_scope="session", scope="package", params=FLAVOUR_PARAMS)
async def os_backend(request: pytest.FixtureRequest) -> AsyncIterator[SandboxBackend]:
    """A backend whose operator allowed OS modules: only the OS layers stand."""
    shared = _backend(request.param, OS_MODULES)
    try:
        yield shared
    finally:
        await close_backend(request, shared)


async def attack(
    backend: SandboxBackend,
    call: str,
    tool: str = "",
    *,
    tenant: str = ATTACKER,
    limits: dict[str, int] | None = None,
    **more_limits: int,
) -> ExecResult:
    """Run one attack payload as call code (after ``tool`` as its module)."""
    fields = {"source": tool, "call": call, **(limits or {}), **more_limits}
    return await backend.execute(tenant, ExecRequest.model_validate(fields))


def assert_contained(
    result: ExecResult, allowed: frozenset[Status] | set[Status] = REFUSED
) -> None:
    """The attack did not work: an expected status, and neither the marker nor a
    secret anywhere in what came back."""
    assert result.status in allowed, result
    everything = json.dumps(
        [result.value, result.stdout, result.stderr, result.error and result.error.message]
    )
    assert MARK not in everything, result
    assert SECRET not in everything, result
    assert result.isolation  # every answer names what it ran under


async def assert_healthy(backend: SandboxBackend, os_level: bool = False) -> None:
    """The next normal call works, nothing of the attack's state reached it, and the
    other tenant is untouched. With ``os_level``, also no file or process is left."""
    for tenant in (ATTACKER, VICTIM):
        result = await backend.execute(
            tenant,
            ExecRequest(
                source=TOOL,
                call="ans = [double(21), remember(5), math.floor(2.5), str(type(1))]",
            ),
        )
        assert result.status is Status.OK, result
        assert result.value == [42, [1, 5], 2, "<class 'int'>"]
        assert result.isolation == backend.isolation[0]
        if os_level:
            left = await backend.execute(tenant, ExecRequest(source="", call=INVENTORY))
            assert left.status is Status.OK, left
            assert left.value == [], f"left behind in {tenant}'s sandbox: {left.value}"


def tools_by_tenant(
    registry: ToolRegistry, tenants: tuple[str, ...]
) -> dict[str, list[tuple[str, int | None, str]]]:
    """What each tenant's registry holds (name, version, description): an attack must
    leave it as it was."""
    return {
        tenant: [(t.name, t.version, t.description) for t in registry.list(tenant)]
        for tenant in tenants
    }


def payload_params(payloads: list[Payload]) -> list[Any]:
    return [pytest.param(tool, call, id=name) for name, tool, call in payloads]


# --- later calls, and the processes that serve them ---------------------------------

PI = 3.141592653589793


async def assert_unaffected(backend: SandboxBackend, tenant: str = ATTACKER) -> None:
    """Later calls see the real ``math.pi`` and ordinary tools work, for every tenant."""
    result = await backend.execute(
        tenant, ExecRequest(source="import math\n", call="ans = [math.pi, sorted([3, 1, 2])]")
    )
    assert result.status is Status.OK, result
    assert result.value == [PI, [1, 2, 3]]
    await assert_healthy(backend)
