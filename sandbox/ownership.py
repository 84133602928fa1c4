"""What tool code owns: its own functions, classes and their instances.

The guards let tool code change only what it owns, and the wrapped members of
allowed modules (:mod:`sandbox.members`) decorate only what it owns; both ask here.
"""

from __future__ import annotations

import types

from sandbox.errors import GuardError

TOOL_FILENAMES = frozenset({"<tool>", "<call>"})
TOOL_CLASS_MARK = "_latm_tool_class"


def refuse(what: str) -> GuardError:
    return GuardError(f"{what} is not allowed in the sandbox")


def is_tool_function(value: object) -> bool:
    """True for functions (and bound methods of functions) compiled from tool code."""
    function = getattr(value, "__func__", value)
    return isinstance(function, types.FunctionType) and (
        function.__code__.co_filename in TOOL_FILENAMES
    )


def is_tool_object(obj: object) -> bool:
    """True for classes a tool defined and their instances: the tool owns them."""
    cls = obj if isinstance(obj, type) else type(obj)
    return any(TOOL_CLASS_MARK in vars(base) for base in cls.__mro__)


def is_tool_class(obj: object) -> bool:
    return isinstance(obj, type) and is_tool_object(obj)
