"""Attack classes 18-21: allowed modules' internals, and the processes that serve later calls.

18. Routes through an allowed module's internals that evaluate text or change what
    tool code does not own (``singledispatch`` evaluating annotation text was a full
    escape). Stopped by the guarded members (sandbox.members), and behind them by the
    tripwire (sandbox.tripwire), whatever the backend.
19. Reading or writing another sandbox process's memory through ``/proc`` (with the
    operator's ``os``: only the OS layers stand). Stopped by the server, template and
    zygote being non-dumpable (their ``/proc/PID/mem``, ``environ``, ``maps`` and
    ``fd`` need ``CAP_SYS_PTRACE``, which no sandbox process has) and, under gVisor,
    by its own /proc.
20. Signalling or stopping the serving processes (``os`` and ``signal`` allowed).
    Stopped by the worker's seccomp filter: a worker may signal only itself.
21. A server, template or zygote that stops answering anyway (stopped here from
    outside the sandbox): the call in flight is answered ``crashed`` within a bound,
    the stopped process is replaced, and the next call works.

Each class asserts that the attack fails and that later calls are unaffected: a
value check (``math.pi``) and an ordinary tool, for the attacker and another tenant.
"""

from __future__ import annotations

import asyncio
import re
import time

import pytest

from orchestrator.sandboxes import ExecRequest, Status
from orchestrator.sandboxes.base import SandboxBackend
from tests.security.conftest import assert_contained, assert_unaffected, attack, payload_params
from tests.support.attacks import Payload
from tests.support.serving import SPIN, is_gvisor, stop_serving_process

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

DISPATCH = "import functools\nimport typing\n\nd = functools.singledispatch(lambda x: 0)\n"
# Each annotation, evaluated, would hand tool code the real object behind a guard.
LEAK = "(leak := ().__class__.__base__.__subclasses__()) and int"
RUNTIME_LEAK = "text = ''.join(['(leak := ().__cl', 'ass__.__ba', 'se__) and int'])\n"
THEN_MARK = "\nans = 'ESCAPED' + str(leak)"

INTERNAL_ROUTES: list[Payload] = [
    ("singledispatch-text", DISPATCH + f"def g(x: {LEAK!r}):\n    return 1\n", "d.register(g)"),
    (
        "singledispatch-runtime-text",
        DISPATCH + RUNTIME_LEAK + "def g(x: text):\n    return 1\n",
        "d.register(g)" + THEN_MARK,
    ),
    (
        "singledispatch-text-in-generic",
        DISPATCH + f"def g(x: list[{LEAK!r}]):\n    return 1\n",
        "d.register(g)" + THEN_MARK,
    ),
    (
        "singledispatch-text-in-union",
        DISPATCH + f"def g(x: typing.Union[{LEAK!r}, str]):\n    return 1\n",
        "d.register(g)" + THEN_MARK,
    ),
    (
        "singledispatchmethod-text",
        "import functools\n\nclass A:\n    @functools.singledispatchmethod\n"
        "    def f(self, x):\n        return 0\n\n"
        f"def g(self, x: {LEAK!r}):\n    return 1\n",
        "A.f.register(g)" + THEN_MARK,
    ),
    (
        "dataclass-of-a-guard",
        "import dataclasses\nimport math\n",
        "dataclasses.dataclass(type(math))\nans = 'ESCAPED' + str(dataclasses.asdict(math))",
    ),
    (
        "total-ordering-of-a-library-class",
        "import functools\nimport fractions\n",
        "functools.total_ordering(fractions.Fraction)\nans = 'ESCAPED'",
    ),
    (
        "namedtuple-in-another-module",
        "import collections\n",
        "collections.namedtuple('P', 'a', module='sys')\nans = 'ESCAPED'",
    ),
]


# --- 18. internal evaluation routes ------------------------------------------------------


@pytest.mark.parametrize(("tool", "call"), payload_params(INTERNAL_ROUTES))
async def test_internal_routes_of_allowed_modules_are_closed(
    backend: SandboxBackend, tool: str, call: str
) -> None:
    assert_contained(await attack(backend, call, tool))
    await assert_unaffected(backend)


# --- 19. the memory of other processes ----------------------------------------------------

PROC_REACH = """
import os
me = os.getpid()
reached = []
for name in os.listdir('/proc'):
    if not name.isdigit() or int(name) == me:
        continue
    for leaf, flags in (('mem', os.O_RDWR), ('mem', os.O_RDONLY), ('environ', os.O_RDONLY),
                        ('maps', os.O_RDONLY), ('task/' + name + '/mem', os.O_RDWR)):
        try:
            fd = os.open('/proc/' + name + '/' + leaf, flags)
        except OSError:
            continue
        os.close(fd)
        reached.append(name + '/' + leaf)
    try:
        fds = os.listdir('/proc/' + name + '/fd')
    except OSError:
        fds = []
    for fd in fds:
        try:
            os.close(os.open('/proc/' + name + '/fd/' + fd, os.O_RDONLY | os.O_NONBLOCK))
            reached.append(name + '/fd/' + fd)
        except OSError:
            pass
ans = reached
"""


# gVisor's /proc lets a process of the same uid read another's environ and maps and
# open its standard streams (a known limit, in SECURITY.md): the memory, and every
# other descriptor, stay out of reach there too.
GVISOR_OPEN = re.compile(r"\d+/(environ|maps|fd/[012])")


async def test_no_worker_reaches_the_memory_of_the_serving_processes(
    os_backend: SandboxBackend,
) -> None:
    result = await attack(os_backend, PROC_REACH)
    assert result.status is Status.OK, result
    reached = result.value
    if is_gvisor(os_backend):
        reached = [path for path in reached if not GVISOR_OPEN.fullmatch(path)]
    assert reached == [], f"a worker reached {reached}"
    await assert_unaffected(os_backend)


# --- 20. signals -------------------------------------------------------------------------

SIGNAL_ALL = """
import os
import signal
me = os.getpid()
sent = []
for name in os.listdir('/proc'):
    if name.isdigit() and int(name) != me:
        for sig in (signal.SIGSTOP, signal.SIGCONT, 0):
            try:
                os.kill(int(name), sig)
                sent.append(name)
            except OSError:
                pass
for group in (0, os.getpgid(os.getppid())):
    try:
        os.killpg(group, signal.SIGSTOP)
        sent.append('group ' + str(group))
    except OSError:
        pass
ans = sent
"""


async def test_no_worker_signals_the_serving_processes(os_backend: SandboxBackend) -> None:
    result = await attack(os_backend, SIGNAL_ALL)
    assert result.status is Status.OK, result
    assert result.value == [], f"a worker signalled {result.value}"
    # A worker still signals itself, as CPython's own abort() does.
    crash = await attack(os_backend, "import os\nos.kill(os.getpid(), 9)")
    assert crash.status is Status.CRASHED, crash
    await assert_unaffected(os_backend)


# --- 21. a serving process that stops answering --------------------------------------------

HEALED_WITHIN_S = 15.0


@pytest.mark.parametrize("role", ["server", "template", "zygote"])
async def test_a_stopped_serving_process_is_detected_and_replaced(
    backend: SandboxBackend, role: str
) -> None:
    tenant = f"stopped-{role}"
    warm = await backend.execute(tenant, ExecRequest(source="", call="ans = 1"))
    assert warm.status is Status.OK, warm
    sandbox = await backend.acquire(tenant)
    try:
        call = asyncio.ensure_future(
            sandbox.execute(ExecRequest(source="", call=SPIN, timeout_ms=40_000, cpu_ms=40_000))
        )
        await asyncio.sleep(0.5)
        stop_serving_process(backend, sandbox, role)
        stopped = time.monotonic()
        result = await asyncio.wait_for(call, 45)
        took = time.monotonic() - stopped
    finally:
        await backend.release(sandbox, faulted=True)
    assert result.status is Status.CRASHED, result
    assert took < HEALED_WITHIN_S, f"the call in flight took {took:.1f} s to be answered"
    await assert_unaffected(backend, tenant)
