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
* ``exec`` of the job's own code objects, and ``compile``/``exec`` by the three
  standard-library functions that generate code from validated identifiers
  (``collections.namedtuple``, ``dataclasses``' method builder) or only compile
  (``typing.ForwardRef``);
* reads of restricted attributes, writes of private ones and ``sys._getframe``
  when the caller is library code (a file of the interpreter or of this package),
  never tool code or code compiled at run time; writes of public attributes of
  classes (a tool's ``Counter.total = 0``);
* ``import`` of an allowed module not loaded yet.

Everything else, known or not (``compile`` or ``exec`` of new code, ``open``,
``os``/``subprocess``/``socket``/``ctypes``/``signal`` events, other imports,
``sys.settrace``, ``gc.get_referrers``, ``code.__new__``, ``marshal.loads`` ...),
trips the wire.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import sys
import sysconfig
import typing
from collections.abc import Callable, Iterable
from types import CodeType
from typing import Any, NoReturn

import sandbox

ALWAYS_ALLOWED = frozenset({"builtins.id"})
LIBRARY_ONLY = frozenset({"object.__getattr__", "sys._getframe"})
ATTRIBUTE_WRITES = frozenset({"object.__setattr__", "object.__delattr__"})
# The module whose admission allows a family of events, where their names differ.
FAMILY_MODULES = {"open": "os", "posix": "os", "shutil": "os", "_thread": "threading"}

# Standard-library code that generates code from identifiers it validated first.
CODE_GENERATORS = frozenset(
    {
        collections.namedtuple.__code__,
        dataclasses._create_fn.__code__,  # type: ignore[attr-defined]
    }
)
COMPILE_ONLY = frozenset({typing.ForwardRef.__init__.__code__})

OnTrip = Callable[[str], NoReturn]


def library_prefixes() -> tuple[str, ...]:
    """Where the files of trusted code live: the interpreter's library and this package."""
    paths = sysconfig.get_paths()
    roots = {paths[key] for key in ("stdlib", "platstdlib", "purelib", "platlib")}
    roots.add(os.path.dirname(os.path.abspath(sandbox.__file__ or "")))
    return (*sorted(os.path.join(root, "") for root in roots), "<frozen ")


class Tripwire:
    """The judgement, built once in the template; :meth:`arm` installs it in a worker."""

    def __init__(self, allowed_modules: Iterable[str]) -> None:
        self.modules = frozenset(allowed_modules)
        self.families = frozenset(
            family
            for family in {*self.modules, *FAMILY_MODULES}
            if FAMILY_MODULES.get(family, family) in self.modules
        )
        self.library = library_prefixes()

    def arm(self, own_code: Iterable[CodeType | None], on_trip: OnTrip) -> None:
        """Install the hook in this process; ``own_code`` may be ``exec``-uted."""
        own = frozenset(code for code in own_code if code is not None)
        busy = [False]

        def hook(event: str, args: tuple[Any, ...]) -> None:
            if busy[0]:
                return  # our own frame lookup, below
            busy[0] = True
            try:
                allowed = self.allows(event, args, own, _caller())
            except Exception:  # noqa: BLE001 - a judgement that fails is a refusal
                allowed = False
            if allowed:
                busy[0] = False
            else:
                on_trip(event)  # never returns; ``busy`` stays set while it reports

        sys.addaudithook(hook)

    def allows(
        self, event: str, args: tuple[Any, ...], own: frozenset[CodeType], caller: CodeType | None
    ) -> bool:
        """Whether ``event`` (with ``args``), raised by code ``caller``, may happen."""
        if event in ALWAYS_ALLOWED or event.partition(".")[0] in self.families:
            return True
        if event in ("exec", "compile"):
            generated = caller in CODE_GENERATORS or (event == "compile" and caller in COMPILE_ONLY)
            return generated or (event == "exec" and args[0] in own)
        if event in ATTRIBUTE_WRITES and _public(args[1]):
            return True
        if event in LIBRARY_ONLY or event in ATTRIBUTE_WRITES:
            return caller is not None and caller.co_filename.startswith(self.library)
        return event == "import" and str(args[0]).partition(".")[0] in self.modules


def _public(name: object) -> bool:
    return isinstance(name, str) and not name.startswith("_")


def _caller() -> CodeType | None:
    """The code of the frame that raised the event being judged (frames: this function,
    the hook, then the audited operation's caller)."""
    try:
        return sys._getframe(2).f_code
    except ValueError:
        return None
