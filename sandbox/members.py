"""Members of allowed modules that tool code gets in a guarded form.

A few public functions of the allowed modules reach past the guards by an internal
path: they evaluate text, look up or write attributes by names they are given, or
change whatever object they are handed. Each is replaced, in the module views tool
code sees, by a wrapper that behaves as in CPython for what tools really do and
refuses (or never takes) the internal path:

* ``functools.update_wrapper`` / ``wraps``: ``assigned`` and ``updated`` name the
  attributes copied with plain ``getattr``/``setattr`` (``updated=['__globals__']``
  copied a library module's globals into the tool's namespace).
* ``functools.singledispatch`` / ``singledispatchmethod``: plain ``@f.register`` on
  an annotated function reads the annotation with ``typing.get_type_hints``, which
  ``eval``-s annotation text in the function's globals; the wrapped ``register``
  takes the annotation only when it is a class (or a union of classes) already.
* ``dataclasses.dataclass`` and ``functools.total_ordering`` write methods into the
  class they are given: only the tool's own classes, never a library's or a guard's.
* ``collections.namedtuple``: ``module=`` names the module whose globals typing
  uses as an evaluation namespace; the class belongs to the tool's module.
* ``dataclasses``' generated methods paste field names into source code: only real
  ``Field`` objects with identifier names, and no tool subclass of ``Field``.

Every route is kept as a test in ``tests/unit/test_members.py`` and, end to end on
every backend, in ``tests/security/test_internal_eval.py``.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import keyword
import types
import typing
from collections.abc import Callable
from typing import Any

from sandbox.ownership import is_tool_class, is_tool_function, is_tool_object, refuse

TOOL_MODULE = "tool"  # the ``__name__`` of a tool's globals, and of its classes


def guarded_update_wrapper(wrapper: Any, wrapped: Any, **options: Any) -> Any:
    """``functools.update_wrapper`` with its default attribute lists, on the tool's own
    functions and objects only."""
    if options:
        raise refuse(f"functools.update_wrapper() with {', '.join(sorted(options))}")
    if not (is_tool_function(wrapper) or is_tool_object(wrapper)):
        raise refuse(f"decorating a {type(wrapper).__name__} object")
    return functools.update_wrapper(wrapper, wrapped)


def guarded_wraps(wrapped: Any, **options: Any) -> Callable[[Any], Any]:
    """``functools.wraps`` over :func:`guarded_update_wrapper`."""
    if options:
        raise refuse(f"functools.wraps() with {', '.join(sorted(options))}")
    return functools.partial(guarded_update_wrapper, wrapped=wrapped)


def guarded_singledispatch(func: Any) -> Any:
    """``functools.singledispatch`` whose ``register`` never evaluates annotations."""
    dispatcher = functools.singledispatch(func)
    dispatcher.register = _register_without_eval(dispatcher.register)  # type: ignore[method-assign]
    return dispatcher


class GuardedSingledispatchmethod(functools.singledispatchmethod):
    """``functools.singledispatchmethod`` over :func:`guarded_singledispatch`."""

    def __init__(self, func: Any) -> None:
        super().__init__(func)
        self.dispatcher = guarded_singledispatch(func)


def _register_without_eval(register: Callable[..., Any]) -> Callable[..., Any]:
    def guarded_register(cls: Any, func: Any = None) -> Any:
        if func is None and not _is_dispatch_type(cls):
            # Plain ``@register`` on an annotated function (CPython's own rule).
            return register(_annotated_class(cls), cls)
        return register(cls, func)

    return guarded_register


def _is_dispatch_type(cls: Any) -> bool:
    if isinstance(cls, type):
        return True
    is_union = isinstance(cls, types.UnionType) or typing.get_origin(cls) is typing.Union
    return is_union and all(isinstance(arg, type) for arg in typing.get_args(cls))


def _annotated_class(func: Any) -> Any:
    """The class of ``func``'s first annotation, read as it is, never evaluated."""
    annotations = func.__annotations__ if isinstance(func, types.FunctionType) else None
    if not annotations:
        raise TypeError(
            f"Invalid first argument to `register()`: {func!r}. Use either "
            "`@register(some_class)` or plain `@register` on an annotated function."
        )
    argname, cls = next(iter(annotations.items()))
    if cls is None:
        cls = type(None)
    if isinstance(cls, str):
        raise TypeError(
            f"Invalid annotation for {argname!r}: {cls!r} is text; the sandbox never "
            "evaluates annotations: annotate with the class itself, or use "
            "`@register(some_class)`"
        )
    if not _is_dispatch_type(cls):
        raise TypeError(f"Invalid annotation for {argname!r}. {cls!r} is not a class.")
    return cls


def guarded_dataclass(cls: Any = None, /, **options: Any) -> Any:
    """``dataclasses.dataclass``, as a decorator with or without options."""
    if cls is None:
        return functools.partial(_dataclass, **options)
    return _dataclass(cls, **options)


def _dataclass(cls: Any, **options: Any) -> Any:
    if not is_tool_class(cls):
        raise refuse(f"dataclass() of {cls!r}, which is not a class of the tool's")
    _check_fields(cls)
    return dataclasses.dataclass(cls, **options)


def _check_fields(cls: type) -> None:
    """Every name ``dataclasses`` will paste into the methods' source is an identifier
    on a real ``Field``: the library writes ``f.name = annotation`` and trusts what it
    reads back (a ``Field`` subclass with a ``name`` property injected code into it)."""
    names: list[object] = list(vars(cls).get("__annotations__", {}))
    for name in names:
        value = vars(cls).get(name) if isinstance(name, str) else None
        if isinstance(value, dataclasses.Field) and type(value) is not dataclasses.Field:
            raise refuse(f"a {type(value).__name__} as the field {name!r}")
        if isinstance(value, classmethod | staticmethod | property):
            # Read while the class is processed: tool code would run between this
            # check and the library's use of what it checked.
            raise refuse(f"a {type(value).__name__} as the default of the field {name!r}")
    for base in cls.__mro__[1:]:
        inherited = vars(base).get("__dataclass_fields__", {})
        names += [field.name for field in inherited.values()]
        if any(type(field) is not dataclasses.Field for field in inherited.values()):
            raise refuse(f"the fields of {base.__qualname__}")
    for name in names:
        if not (isinstance(name, str) and name.isidentifier() and not keyword.iskeyword(name)):
            raise refuse(f"a dataclass field named {name!r}")


def guarded_total_ordering(cls: Any) -> Any:
    """``functools.total_ordering`` on the tool's own classes."""
    if not is_tool_class(cls):
        raise refuse(f"total_ordering() of {cls!r}, which is not a class of the tool's")
    return functools.total_ordering(cls)


def guarded_namedtuple(
    typename: Any,
    field_names: Any,
    *,
    rename: bool = False,
    defaults: Any = None,
    module: Any = None,
) -> Any:
    """``collections.namedtuple``, whose class always belongs to the tool's module."""
    if module is not None:
        raise refuse("namedtuple(module=...)")
    return collections.namedtuple(
        typename, field_names, rename=rename, defaults=defaults, module=TOOL_MODULE
    )


# Library classes whose instances library code trusts to be what they say: a tool's
# subclass could override what the library reads back (``Field.name``), or write what
# it steers by (``cached_property.attrname``: any key, ``__reduce_ex__`` included,
# into an instance's ``__dict__``, which ``copy`` then calls with the library's trust).
SEALED_CLASSES = (dataclasses.Field, functools.cached_property)

GUARDED_MEMBERS: dict[tuple[str, str], object] = {
    ("functools", "update_wrapper"): guarded_update_wrapper,
    ("functools", "wraps"): guarded_wraps,
    ("functools", "singledispatch"): guarded_singledispatch,
    ("functools", "singledispatchmethod"): GuardedSingledispatchmethod,
    ("functools", "total_ordering"): guarded_total_ordering,
    ("dataclasses", "dataclass"): guarded_dataclass,
    ("collections", "namedtuple"): guarded_namedtuple,
}
