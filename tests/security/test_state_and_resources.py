"""Attack classes 11 and 12: state poisoning between calls and tenants, and resource
exhaustion. Language-level attempts run with the shipped allow-list; the OS-level
ones run with ``os``, ``threading``, ``time`` and ``mmap`` allowed by the operator,
so that the worker's rlimits and seccomp filter, the template's scratch clean-up,
the sized tmpfs mounts and the container's cgroups are what stop them."""

from __future__ import annotations

import grpc
import pytest
from latm.sandbox.v1 import sandbox_pb2, sandbox_pb2_grpc

from orchestrator.errors import InvalidRequest
from orchestrator.sandboxes import ExecRequest, Status
from orchestrator.sandboxes.base import SandboxBackend
from tests.security.conftest import (
    ATTACKER,
    VICTIM,
    assert_contained,
    assert_healthy,
    attack,
)
from tests.support.attacks import LANGUAGE_LEVEL_EXHAUSTION, REFUSED
from tests.support.serving import is_docker, is_gvisor

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

FAULT = frozenset({Status.TIMEOUT, Status.MEMORY_LIMIT, Status.OUTPUT_LIMIT, Status.CRASHED})


# --- 11. state poisoning -----------------------------------------------------------------


async def test_rebinding_library_state_does_not_reach_the_next_call(
    backend: SandboxBackend,
) -> None:
    """Run-time guards refuse writes to module views and library classes (and
    decorating them); what tool code may change (decimal precision, random's seed)
    dies with its forked worker. Layer: guards + a fresh worker per call."""
    tool = "".join(
        f"import {m}\n" for m in ("collections", "dataclasses", "decimal", "json", "math", "random")
    )
    for call in (
        "math.floor = len\nans = 1",
        "setattr(math, 'pi', 3)\nans = 1",
        "collections.OrderedDict.poison = 1\nans = 1",
        "json.dumps.poison = 1\nans = 1",
        "dataclasses.dataclass(collections.UserList)\nans = 1",  # only the tool's own classes
    ):
        assert_contained(await attack(backend, call, tool), {Status.POLICY_VIOLATION})
    changed = await attack(
        backend,
        "decimal.getcontext().prec = 2\ndecimal.DefaultContext.prec = 3\nrandom.seed(1)\n"
        "ans = str(decimal.Decimal(1) / 3)",
        tool,
    )
    assert (changed.status, changed.value) == (Status.OK, "0.33"), changed
    for tenant in (ATTACKER, VICTIM):
        after = await attack(
            backend,
            "ans = [str(decimal.Decimal(1) / 3), decimal.DefaultContext.prec, math.pi, "
            "hasattr(collections.OrderedDict, 'poison'), repr(collections.UserList([1]))]",
            tool,
            tenant=tenant,
        )
        assert after.value == ["0." + "3" * 28, 28, 3.141592653589793, False, "[1]"], after
    await assert_healthy(backend)


async def test_files_left_behind_do_not_reach_the_next_call(os_backend: SandboxBackend) -> None:
    """With ``os`` allowed, a call leaves files (one in an unreadable folder) in
    /tmp and /dev/shm and tries the host folder that holds the server's socket.
    Layers: the template empties the scratch folders whenever no call runs; the
    socket folder is not writable by the sandbox once the server listens; each
    tenant has its own tmpfs (bwrap) or container."""
    plant = """
import os
planted = []
for folder in ('/tmp', '/dev/shm', '/run/latm'):
    try:
        fd = os.open(folder + '/poison', os.O_CREAT | os.O_WRONLY, 0o644)
        os.write(fd, b'ESCAPED')
        os.close(fd)
        os.mkdir(folder + '/hidden')
        fd = os.open(folder + '/hidden/poison', os.O_CREAT | os.O_WRONLY, 0o644)
        os.close(fd)
        os.chmod(folder + '/hidden', 0)
        planted.append(folder)
    except OSError:
        pass
for name in os.listdir('/tmp'):
    if name.startswith('latm-sandbox-'):
        try:
            os.open('/tmp/' + name + '/poison', os.O_CREAT | os.O_WRONLY, 0o644)
            planted.append(name)
        except OSError:
            pass
ans = planted
"""
    result = await attack(os_backend, plant)
    assert result.status is Status.OK, result
    assert "/run/latm" not in result.value  # the host folder is locked
    assert not any(p.startswith("latm-sandbox-") for p in result.value)
    await assert_healthy(os_backend, os_level=True)


# --- 12. resource exhaustion ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "limits", "statuses"),
    [pytest.param(c, limit, s, id=name) for name, c, limit, s in LANGUAGE_LEVEL_EXHAUSTION],
)
async def test_exhaustion_with_the_shipped_allow_list(
    backend: SandboxBackend, call: str, limits: dict[str, int], statuses: set[Status]
) -> None:
    """Layers: the template's wall-clock deadline and output caps, RLIMIT_AS and
    RLIMIT_CPU in the worker, the policy's size and depth limits before compiling,
    the JSON depth cap on results; a crash ends only the forked worker."""
    assert_contained(await attack(backend, call, "import json\n", limits=limits), statuses)
    await assert_healthy(backend)


async def test_deeply_nested_arguments_are_refused(backend: SandboxBackend) -> None:
    """Layer: the server's argument check (JSON depth cap) before any worker runs,
    whether the client or the server refuses first."""
    nested: object = 1
    for _ in range(200):
        nested = [nested]
    try:
        result = await backend.execute(
            ATTACKER, ExecRequest(source="", call="x", args={"x": nested})
        )
        assert_contained(result)
    except (InvalidRequest, RecursionError):
        pass
    sandbox = await backend.acquire(ATTACKER)
    try:
        async with grpc.aio.insecure_channel(sandbox.client.target) as channel:
            stub = sandbox_pb2_grpc.SandboxServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.Execute(
                    sandbox_pb2.ExecuteRequest(
                        call="x", args_json='{"x": ' + "[" * 100000 + "]" * 100000 + "}"
                    )
                )
            assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    finally:
        await backend.release(sandbox, faulted=False)
    await assert_healthy(backend)


OS_LEVEL_EXHAUSTION = [
    ("sleep", "import time\ntime.sleep(30)", {"timeout_ms": 800}, {Status.TIMEOUT}),
    (
        "thread-spin",
        "import threading\ndef spin():\n    while True:\n        pass\n"
        "for _ in range(8):\n    threading.Thread(target=spin).start()\nans = 'ESCAPED'",
        {"timeout_ms": 2000},
        REFUSED,
    ),
    ("fork-bomb", "import os\nwhile True:\n    os.fork()", {"timeout_ms": 2000}, REFUSED),
    ("fork-exec", "import os\nans = os.system('true')", {}, REFUSED | {Status.OK}),
    (
        "fd-exhaustion",
        "import os\nfds = [os.open('/dev/null', os.O_RDONLY) for _ in range(100000)]\n"
        "ans = 'ESCAPED'",
        {},
        REFUSED,
    ),
    (
        "one-huge-file",
        "import os\nfd = os.open('/tmp/big', os.O_CREAT | os.O_WRONLY)\n"
        "for _ in range(64):\n    os.write(fd, b'0' * (1 << 20))\nans = 'ESCAPED'",
        {},
        REFUSED | {Status.CRASHED},  # RLIMIT_FSIZE: EFBIG, or SIGXFSZ
    ),
    (
        "disk-fill",
        "import os\nfor i in range(256):\n"
        "    fd = os.open('/tmp/f' + str(i), os.O_CREAT | os.O_WRONLY)\n"
        "    os.write(fd, b'0' * (512 * 1024))\n    os.close(fd)\nans = 'ESCAPED'",
        {},
        REFUSED,  # 128 MiB into a 16 MiB tmpfs: ENOSPC
    ),
    (
        "shm-fill",
        "import os\nfor i in range(256):\n"
        "    fd = os.open('/dev/shm/f' + str(i), os.O_CREAT | os.O_WRONLY)\n"
        "    os.write(fd, b'0' * (512 * 1024))\n    os.close(fd)\nans = 'ESCAPED'",
        {},
        REFUSED,
    ),
    (
        "inode-fill",
        "import os\ni = 0\nwhile True:\n    os.close(os.open('/tmp/i' + str(i), os.O_CREAT))\n"
        "    i += 1",
        {"timeout_ms": 1500},
        {Status.TIMEOUT} | REFUSED,
    ),
    ("mmap-bomb", "import mmap\nans = mmap.mmap(-1, 10 ** 10)", {"memory_mb": 64}, REFUSED | FAULT),
]


@pytest.mark.parametrize(
    ("call", "limits", "statuses"),
    [pytest.param(c, limit, s, id=name) for name, c, limit, s in OS_LEVEL_EXHAUSTION],
)
async def test_exhaustion_with_os_allowed(
    os_backend: SandboxBackend, call: str, limits: dict[str, int], statuses: set[Status]
) -> None:
    """Layers: the worker's seccomp filter (no clone/fork: no threads, no processes,
    whatever the uid) backed by RLIMIT_NPROC and the container's pids limit;
    RLIMIT_NOFILE; RLIMIT_FSIZE; 16 MiB tmpfs for /tmp and /dev/shm (bwrap --size,
    Docker's tmpfs option and a 16 MiB /dev/shm); the deadline; the template's
    clean-up of scratch folders; RLIMIT_AS and the memory cgroup."""
    result = await attack(os_backend, call, limits=limits)
    assert_contained(result, statuses)
    if result.status is Status.OK:  # os.system: the shell could not be started
        assert result.value != 0, result
    await assert_healthy(os_backend, os_level=True)


INODE_FILL = """
import os
ans = 0
try:
    while ans < 20000:
        os.close(os.open('/tmp/i' + str(ans), os.O_CREAT | os.O_WRONLY))
        ans += 1
except OSError as error:
    ans = [ans, error.errno]
"""


async def test_scratch_files_are_bounded_in_number(os_backend: SandboxBackend) -> None:
    """Layer: ``nr_inodes`` on the container's /tmp under runc (4096 files). bubblewrap
    and gVisor bound empty files by the deadline, the template's clean-up and (gVisor)
    the memory cgroup that holds the Sentry's files."""
    result = await attack(os_backend, INODE_FILL, timeout_ms=20_000)
    assert_contained(result, {Status.OK, Status.TIMEOUT} | REFUSED)
    if is_docker(os_backend) and not is_gvisor(os_backend):
        assert result.status is Status.OK, result
        created, errno = result.value
        assert errno == 28  # ENOSPC: out of inodes
        assert created < 4096
    await assert_healthy(os_backend, os_level=True)
