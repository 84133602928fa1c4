"""Attack class 22: what a fresh red-team pass found, kept as tests (fixed).

A helper told only the sandbox's rules attacked it for an hour (SECURITY.md,
weaknesses 18-24). Each finding is replayed here on every backend; each test asserts
the attack fails and that later calls are unaffected.
"""

from __future__ import annotations

import pytest

from orchestrator.sandboxes import Status
from orchestrator.sandboxes.base import SandboxBackend
from tests.security.conftest import (
    assert_contained,
    assert_healthy,
    assert_unaffected,
    attack,
    payload_params,
)
from tests.support.attacks import Payload
from tests.support.serving import is_gvisor

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

# Text a dataclass would paste into its generated methods' source, run with the real
# builtins: the pid and the real ``open`` prove it ran.
INJECTED = "a)\\\" + str(__import__('os').getpid()) + repr(open) + \\\""

LIBRARY_INTERNALS: list[Payload] = [
    (
        # A Field subclass whose ``name`` property ignores the library's write.
        "dataclass-field-name-property",
        "import dataclasses\n\n"
        f'EVIL = "{INJECTED}"\n\n'
        "class F(dataclasses.Field):\n"
        "    def getn(self):\n        return EVIL\n"
        "    def setn(self, value):\n        pass\n"
        "    name = property(getn, setn)\n\n"
        "fld = F(dataclasses.MISSING, dataclasses.MISSING, True, True, None, True, None, False)\n\n"
        "@dataclasses.dataclass(init=False, eq=False)\n"
        "class C:\n    'doc'\n    x: int = fld\n",
        "ans = 'ESCAPED' + repr(C())",
    ),
    (
        # copyreg's dispatch table, through copy: setattr of any name on any object,
        # here renaming a real Field that a dataclass subclass then pastes into source.
        "copy-dispatch-table-renames-a-field",
        "import copy\nimport dataclasses\n\n"
        f'EVIL = "{INJECTED}"\n\n'
        "@dataclasses.dataclass\nclass Base:\n    x: int = 1\n\n"
        "class Box:\n    pass\n\n"
        "def f():\n"
        "    fld = dataclasses.fields(Base)[0]\n"
        "    copy.dispatch_table[Box] = lambda x: (lambda: fld, (), (None, {'name': EVIL}))\n"
        "    copy.copy(Box())\n"
        "    @dataclasses.dataclass(init=False, eq=False)\n"
        "    class C(Base):\n        'doc'\n"
        "    return repr(C())\n",
        "ans = 'ESCAPED' + f()",
    ),
    (
        # A Field the library made, with an injected name through a tool's own class.
        "dataclass-inherits-a-renamed-field",
        "import dataclasses\n\n@dataclasses.dataclass\nclass Base:\n    x: int = 1\n",
        "fld = dataclasses.fields(Base)[0]\nfld.name = 'a) + 1'\nans = 'ESCAPED'",
    ),
    (
        # Second pass: a cached_property subclass writes any key into an instance's
        # __dict__ (here __reduce_ex__, which copy then calls with the library's trust).
        "cached-property-subclass-writes-reduce-ex",
        "import copy\nimport functools\n\nclass CP(functools.cached_property):\n    pass\n",
        "ans = 'ESCAPED' + str(CP)",
    ),
    (
        # Second pass: tool code run while dataclasses processes the class, after the
        # guard checked the fields (a classmethod-wrapped property as a default).
        "dataclass-default-runs-tool-code-mid-processing",
        "import dataclasses\n\nseen = []\n\n"
        "def hook(cls):\n    seen.append(cls)\n    return 0\n\n"
        "class Sub:\n    b: int = classmethod(property(hook))\n",
        "dataclasses.dataclass(Sub)\nans = 'ESCAPED' + str(len(seen))",
    ),
]


@pytest.mark.parametrize(("tool", "call"), payload_params(LIBRARY_INTERNALS))
async def test_library_internals_found_by_the_red_team_are_closed(
    backend: SandboxBackend, tool: str, call: str
) -> None:
    assert_contained(await attack(backend, call, tool))
    await assert_unaffected(backend)


async def test_dataclasses_without_init_or_docstring_still_work(backend: SandboxBackend) -> None:
    """``@dataclass(init=False)`` with no docstring makes ``inspect.signature`` parse a
    text signature (``ast.parse``): the tripwire must let that compile to an AST."""
    tool = "import dataclasses\n\n@dataclasses.dataclass(init=False)\nclass C:\n    x: int = 1\n"
    result = await attack(backend, "ans = repr(C())", tool)
    assert (result.status, result.value) == (Status.OK, "C(x=1)"), result


# With ``ctypes`` allowed by the operator: libc's fcntl and ioctl, past Python.
SIGNAL_OWNER = """
import ctypes
import os
libc = ctypes.CDLL(None, use_errno=True)
read_end, write_end = os.pipe()
target = os.getppid()
owner = (ctypes.c_int * 2)(0, target)
refused = {}
for name, call in [
    ('F_SETOWN', lambda: libc.fcntl(write_end, 8, target)),
    ('F_SETSIG', lambda: libc.fcntl(write_end, 10, 19)),
    ('F_SETOWN_EX', lambda: libc.fcntl(write_end, 15, ctypes.byref(owner))),
    ('FIOSETOWN', lambda: libc.ioctl(write_end, 0x8901, ctypes.byref(ctypes.c_int(target)))),
    ('SIOCSPGRP', lambda: libc.ioctl(write_end, 0x8902, ctypes.byref(ctypes.c_int(target)))),
]:
    refused[name] = call() == -1 and ctypes.get_errno() == 1
for name, call in [('setpgid', lambda: os.setpgid(0, os.getpgid(target))), ('setsid', os.setsid)]:
    try:
        call()
        refused[name] = False
    except PermissionError:
        refused[name] = True
refused['F_GETFL still works'] = libc.fcntl(write_end, 3) >= 0
ans = refused
"""


async def test_no_worker_makes_the_kernel_signal_for_it_or_leaves_its_group(
    os_backend: SandboxBackend,
) -> None:
    """Layer: the worker's seccomp filter (fcntl/ioctl commands that set a signal owner,
    setpgid, setsid); the template also kills a worker by pid, not only by group."""
    result = await attack(os_backend, SIGNAL_OWNER)
    assert result.status is Status.OK, result
    assert all(result.value.values()), result.value
    await assert_unaffected(os_backend)


# The host's end of the tunnel (gVisor only) answers only a dial-in with the server's
# token; the server listens in the abstract namespace, with no file to replace.
TUNNEL_SQUAT = """
import os
import socket
try:
    os.stat('/tmp/sandbox.sock')
    found = {'server socket file': True}
except OSError:
    found = {'server socket file': False}
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(3)
try:
    s.connect('/run/latm/tunnel.sock')
    s.sendall(b'x' * 64)
    data = s.recv(4096)
    found['paired'] = bool(data)
except socket.timeout:
    found['paired'] = False
except OSError as exc:
    found['connect'] = exc.errno
ans = found
"""


async def test_no_worker_poses_as_the_server_on_the_tunnel(os_backend: SandboxBackend) -> None:
    result = await attack(os_backend, TUNNEL_SQUAT)
    assert result.status is Status.OK, result
    assert result.value["server socket file"] is False, result.value
    if is_gvisor(os_backend):
        assert result.value.get("paired") is False, result.value
    await assert_unaffected(os_backend)


# With ``os`` and ``ctypes`` allowed: reach the serving processes' limits, priority and
# the sandbox's SysV IPC, all of which would outlive the call.
OUTLIVING = """
import ctypes
import os
libc = ctypes.CDLL(None, use_errno=True)
target = os.getppid()
refused = {}
limit = (ctypes.c_ulong * 2)(12, 12)
refused['prlimit64 of the zygote'] = libc.prlimit(target, 7, ctypes.byref(limit), None) == -1
refused['setpriority of the zygote'] = libc.setpriority(0, target, 19) == -1
refused['setpriority of PID 1'] = libc.setpriority(0, 1, 19) == -1
refused['SysV shmget'] = libc.shmget(0, 1 << 20, 0o1600) == -1
refused['SysV semget'] = libc.semget(0, 1, 0o1600) == -1
refused['SysV msgget'] = libc.msgget(0, 0o1600) == -1
refused['own rlimit still readable'] = libc.prlimit(0, 7, None, ctypes.byref(limit)) == 0
ans = refused
"""

DEEP_TREE = """
import os
fd = os.open('/tmp', os.O_RDONLY)
for depth in range(1500):
    os.mkdir('d', dir_fd=fd)
    inner = os.open('d', os.O_RDONLY, dir_fd=fd)
    os.close(fd)
    fd = inner
os.close(fd)
ans = 'left a tree 1500 deep'
"""


async def test_no_worker_reaches_the_limits_priority_or_ipc_that_outlive_it(
    os_backend: SandboxBackend,
) -> None:
    """Layer: the worker's seccomp filter (prlimit64 only on itself; no setpriority,
    scheduling or SysV/POSIX-queue IPC)."""
    result = await attack(os_backend, OUTLIVING)
    assert result.status is Status.OK, result
    assert all(result.value.values()), result.value
    await assert_unaffected(os_backend)


async def test_a_tree_deeper_than_recursion_is_cleaned_up(os_backend: SandboxBackend) -> None:
    """The template's scratch clean-up neither recurses nor dies on what a call left."""
    result = await attack(os_backend, DEEP_TREE)
    assert result.status is Status.OK, result
    await assert_unaffected(os_backend)
    await assert_healthy(os_backend, os_level=True)
