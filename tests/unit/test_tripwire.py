"""The audit-hook tripwire, armed in a fresh interpreter as a worker arms it.

The payloads stand for what escaped tool code would do with real objects; each
runs in a child process whose tripwire reports the event and exits, as a worker's.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

PRELUDE = """
import collections, copy, copyreg, dataclasses, functools, gc, inspect, json, os, sys, typing
from sandbox.tripwire import Tripwire

def tripped(event):
    print('TRIPPED', event, flush=True)
    os._exit(9)

tool = compile(TOOL, '<tool>', 'exec')
namespace = {}
arm = Tripwire(MODULES).install(tripped)
compile('1', 'dormant', 'eval')  # dormant until armed: nothing trips yet
arm([tool])
exec(tool, namespace)
print('FINISHED', flush=True)
"""


def run_armed(tool: str, modules: tuple[str, ...] = ("math", "typing")) -> str:
    script = f"TOOL = {textwrap.dedent(tool)!r}\nMODULES = {modules!r}\n{PRELUDE}"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.returncode in (0, 9), done.stderr
    return done.stdout.strip()


def test_what_tools_legitimately_do_passes() -> None:
    tool = """
        import collections, dataclasses, typing
        P = collections.namedtuple('P', 'a b')
        @dataclasses.dataclass(frozen=True)
        class D:
            a: int
            b: 'typing.List[int]' = None
        class T(typing.NamedTuple):
            u: int
        V = typing.TypeVar('V')
        Forward = typing.List['Node']
        class Counter:
            total = 0
        Counter.total = 5
        seen = id(Counter)
        try:
            1 / 0
        except ZeroDivisionError as exc:
            trace = exc
    """
    assert run_armed(tool) == "FINISHED"


@pytest.mark.parametrize(
    ("tool", "event"),
    [
        # The reported escape: annotation text eval-ed by an allowed module's internals.
        (
            "import functools\nd = functools.singledispatch(lambda x: 0)\n"
            "def g(x: '(leak := 1) and int'):\n    return 1\nd.register(g)\n",
            "exec",
        ),
        ("import typing\ndef g(a: 'int'):\n    pass\ntyping.get_type_hints(g)", "exec"),
        ("eval('1')", "compile"),
        ("exec('x = 1')", "compile"),
        ("c = compile('1', 'x', 'eval')", "compile"),
        ("open('/etc/hostname').read()", "open"),
        ("import wave", "import"),
        ("import os\nos.kill(os.getpid(), 0)", "os.kill"),
        ("import os\nos.system('true')", "os.system"),
        ("import sys\nframe = sys._getframe()", "sys._getframe"),
        ("def f():\n    return 1\ncode = f.__code__", "object.__getattr__"),
        ("def f():\n    yield 1\nframe = f().gi_frame", "object.__getattr__"),
        ("import sys\nsys.addaudithook(lambda *a: None)", "sys.addaudithook"),
        ("import sys\nsys.settrace(None)", "sys.settrace"),
        ("import gc\ngc.get_referrers(1)", "gc.get_referrers"),
        ("def f():\n    return 1\nf.__defaults__ = (1,)", "object.__setattr__"),
        ("def f():\n    return 1\nf.__code__.replace(co_consts=(2,))", "object.__getattr__"),
        # A trusted writer used to replace the tripwire's reporter's code.
        (
            "import functools\n"
            "def quiet(event):\n    return None\n"
            "def loud(event):\n    return 1\n"
            "class Holder:\n    pass\n"
            "import inspect\n"
            "h = Holder()\nh.__dict__['__code__'] = dict(inspect.getmembers(quiet))['__code__']\n"
            "functools.update_wrapper(loud, h, assigned=('__code__',), updated=())\n",
            "object.__setattr__",
        ),
        # A library function as a trampoline: the frame read is ChainMap's, not a reader's.
        (
            "import collections, sys\n"
            "frame = collections.ChainMap(collections.defaultdict(sys._getframe))['k']",
            "sys._getframe",
        ),
        # copy._reconstruct (library code) writing a private attribute by name.
        (
            "import copy, copyreg, json\n"
            "class Box:\n    pass\n"
            "state = (None, {'__kwdefaults__': {}})\n"
            "copyreg.dispatch_table[Box] = lambda x: (lambda: json.dumps, (), state)\n"
            "copy.copy(Box())",
            "object.__setattr__",
        ),
    ],
)
def test_an_escape_trips_the_wire(tool: str, event: str) -> None:
    assert run_armed(tool) == f"TRIPPED {event}"


def test_the_modules_an_operator_allows_bring_their_events() -> None:
    tool = "import os\nfd = os.open('/dev/null', os.O_RDONLY)\nos.close(fd)\nos.getpid()"
    assert run_armed(tool, ("math", "os")) == "FINISHED"
    assert run_armed(tool, ("math",)) == "TRIPPED open"


def test_a_tool_cannot_catch_the_trip() -> None:
    tool = "try:\n    eval('1')\nexcept BaseException:\n    pass\n"
    assert run_armed(tool) == "TRIPPED compile"


def test_the_judgement_cannot_be_rebound_once_installed() -> None:
    """Escaped code that finds the Tripwire object and rebinds what it holds changes
    nothing: the hook judges from its closure, built when it was installed."""
    tool = "import gc\nwire = [o for o in gc.get_objects() if type(o).__name__ == 'Tripwire'][0]\n"
    assert run_armed(tool) == "TRIPPED gc.get_objects"
    script = (
        "import os\nfrom sandbox.tripwire import Tripwire\n"
        "wire = Tripwire(['math'])\n"
        "arm = wire.install(lambda event: (print('TRIPPED', event, flush=True), os._exit(9)))\n"
        "arm([])\n"
        "wire.families = frozenset({'os', 'open'})\nwire.modules = frozenset({'os'})\n"
        "os.listdir('/')\nprint('FINISHED')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=False
    )
    assert done.stdout.strip() == "TRIPPED os.listdir", done.stderr
