"""The tripwire: a CPython audit hook in every worker, independent of RestrictedPython.

The language layers (AST policy, RestrictedPython, guards) decide what tool code
may say; the tripwire watches what the interpreter is actually asked to do. It is
armed in the worker once the job is decoded and the rlimits and seccomp filter are
in place, immediately before tool code runs, and cannot be removed. From then on
every audit event (PEP 578) is judged, and one that tool code never legitimately
causes ends the call at once: the worker writes a ``policy_violation`` result and
exits, inside the hook, so no ``except`` in tool code can swallow it.

Allowed are only:

* the events of the modules the allow-list admits (``os.*`` and ``open`` when an
  operator allowed ``os``, ``socket.*`` with ``socket``, and so on), and
  ``builtins.id``;
* ``exec`` of the job's own code objects, and ``compile``/``exec`` by the
  standard-library functions that generate code from validated identifiers
  (``collections.namedtuple``, ``dataclasses``' method builder) or only compile
  (``typing.ForwardRef``, ``ast.parse`` for ``inspect.signature``);
* ``sys._getframe`` by the two functions of the allowed modules that read their
  caller's module name; reads of restricted attributes by ``inspect`` (for
  ``dataclasses``) and this package, writes of private ones by the modules that
  build classes (``collections``, ``dataclasses``, ``typing``, ``functools``); writes
  of public attributes of classes (a tool's ``Counter.total = 0``). The caller is
  the exact code object or file, never "any library code": a library function used
  as a trampoline by escaped code does not pass;
* ``import`` of an allowed module not loaded yet.

Everything else, known or not (``compile`` or ``exec`` of new code, ``open``,
``os``/``subprocess``/``socket``/``ctypes``/``signal`` events, other imports,
``sys.settrace``, ``gc.get_referrers``, ``code.__new__``, ``marshal.loads`` ...),
trips the wire.
"""

from __future__ import annotations

import ast
import collections
import dataclasses
import functools
import inspect
import os
import sys
import typing
from collections.abc import Callable, Iterable
from types import CodeType
from typing import Any, NoReturn

import sandbox

ALWAYS_ALLOWED = frozenset({"builtins.id"})
ATTRIBUTE_WRITES = frozenset({"object.__setattr__", "object.__delattr__"})
# What no code of the allowed modules writes while a call runs, whoever the caller:
# replacing a function's code (the tripwire's own reporter's, to silence it) or an
# object's class. (namedtuple writes ``__defaults__``, typing ``__bases__``.)
NEVER_WRITTEN = frozenset({"__code__", "__kwdefaults__", "__class__"})
# The module whose admission allows a family of events, where their names differ.
FAMILY_MODULES = {"open": "os", "posix": "os", "shutil": "os", "_thread": "threading"}

# Standard-library code that generates code from identifiers it validated first.
CODE_GENERATORS = frozenset(
    {
        collections.namedtuple.__code__,
        dataclasses._create_fn.__code__,  # type: ignore[attr-defined]
    }
)
# Code that compiles text only to an AST or a code object it never runs.
COMPILE_ONLY = frozenset({typing.ForwardRef.__init__.__code__, ast.parse.__code__})
# The only readers of the caller's frame among the allowed modules (a module name).
FRAME_READERS = frozenset(
    {
        typing._caller.__code__,  # type: ignore[attr-defined]
        collections.namedtuple.__code__,
    }
)
# The events allowed only when the code that raised them is one of these.
TRUSTED_CALLERS = {
    "exec": CODE_GENERATORS,
    "compile": CODE_GENERATORS | COMPILE_ONLY,
    "sys._getframe": FRAME_READERS,
}
# Files whose code legitimately reads restricted attributes (``inspect.signature``
# reads ``__code__`` for dataclasses; the worker reads its traceback's frames) and
# writes private ones (``__module__``, ``__doc__`` of the classes they build).
READER_FILES = (inspect.__file__, dataclasses.__file__)
WRITER_FILES = (
    collections.__file__,
    dataclasses.__file__,
    typing.__file__,
    functools.__file__,
    inspect.__file__,
)

OnTrip = Callable[[str], NoReturn]
Judge = Callable[[str, tuple[Any, ...], CodeType | None], bool]


def _sandbox_folder() -> str:
    return os.path.join(os.path.dirname(os.path.abspath(sandbox.__file__ or "")), "")


class Tripwire:
    """The judgement, built once in the template; each worker installs it."""

    def __init__(self, allowed_modules: Iterable[str]) -> None:
        self.modules = frozenset(allowed_modules)
        self.families = frozenset(
            family
            for family in {*self.modules, *FAMILY_MODULES}
            if FAMILY_MODULES.get(family, family) in self.modules
        )

    def install(self, on_trip: OnTrip) -> Callable[[Iterable[CodeType | None]], None]:
        """Install the hook in this process, dormant, and return the function that arms
        it with the code the job may ``exec``. (A spare worker installs it while it
        waits for its job: the cost is off the call's path. Once armed, it cannot be
        removed or disarmed.) Everything the hook consults lives in its closure, built
        here from immutable values: no attribute an escaped tool could rebind."""
        judge = _judge(self.modules, self.families)
        own: frozenset[CodeType] = frozenset()
        armed = busy = False

        def hook(event: str, args: tuple[Any, ...]) -> None:
            nonlocal busy
            if not armed or busy:
                return  # dormant, or our own frame lookup below
            busy = True
            try:
                allowed = (event == "exec" and args[0] in own) or judge(event, args, _caller())
            except Exception:  # noqa: BLE001 - a judgement that fails is a refusal
                allowed = False
            if not allowed:
                on_trip(event)  # never returns; "busy" stays set while it reports
            busy = False

        def arm(own_code: Iterable[CodeType | None]) -> None:
            nonlocal own, armed
            own = frozenset(code for code in own_code if code is not None)
            armed = True

        sys.addaudithook(hook)
        return arm


def _judge(modules: frozenset[str], families: frozenset[str]) -> Judge:
    sandbox_folder = _sandbox_folder()

    def judge(event: str, args: tuple[Any, ...], caller: CodeType | None) -> bool:
        if event in ALWAYS_ALLOWED or event.partition(".")[0] in families:
            return True
        if event in TRUSTED_CALLERS:
            return caller in TRUSTED_CALLERS[event]
        if event == "import":
            return str(args[0]).partition(".")[0] in modules
        return caller is not None and by_file(event, args, caller.co_filename)

    def by_file(event: str, args: tuple[Any, ...], file: str) -> bool:
        ours = file.startswith(sandbox_folder)
        if event == "object.__getattr__":
            return ours or file in READER_FILES
        if event in ATTRIBUTE_WRITES:
            public = isinstance(args[1], str) and not args[1].startswith("_")
            return public or ((ours or file in WRITER_FILES) and args[1] not in NEVER_WRITTEN)
        return False

    return judge


def _caller() -> CodeType | None:
    """The code of the frame that raised the event being judged (frames: this function,
    the hook, then the audited operation's caller)."""
    try:
        return sys._getframe(2).f_code
    except ValueError:
        return None
