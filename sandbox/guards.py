"""The run-time half of the policy: the hooks RestrictedPython's compiled code calls.

RestrictedPython rewrites ``a.b`` into ``_getattr_(a, "b")``, ``a[k] = v`` into
``_write_(a)[k] = v``, ``for x in y`` into ``for x in _getiter_(y)`` and so on; the
functions here decide what those hooks allow. Everything a tool can reach goes
through them: safe builtins, read-only views of allowed modules, attribute and
item access, writes, imports and printing.
"""

from __future__ import annotations

import builtins
import codecs
import decimal
import encodings
import functools
import importlib
import operator
import pkgutil
import string
import sys
import types
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from RestrictedPython.Guards import guarded_iter_unpack_sequence, guarded_unpack_sequence

from sandbox.errors import GuardError
from sandbox.expressions import evaluate
from sandbox.members import GUARDED_MEMBERS, SEALED_CLASSES
from sandbox.ownership import TOOL_CLASS_MARK, is_tool_function, is_tool_object, refuse
from sandbox.policy import Allowlist
from sandbox.tripwire import Tripwire

# Attributes refused on any object, whatever its type: they reach frames, code
# objects or the class hierarchy, or format strings that read attributes.
BLOCKED_ATTRIBUTES = frozenset(
    {
        "gi_frame",
        "gi_code",
        "gi_yieldfrom",
        "cr_frame",
        "cr_code",
        "cr_await",
        "cr_origin",
        "ag_frame",
        "ag_code",
        "ag_await",
        "tb_frame",
        "tb_next",
        "f_back",
        "f_builtins",
        "f_code",
        "f_globals",
        "f_locals",
        "f_trace",
        "f_generator",
        "co_code",
        "mro",
    }
)
# str.format and format_map resolve "{0.__class__}" with plain getattr, and so does
# everything that forwards to them (collections.UserString, super() of a str subclass):
# attributes of these names are refused unless they are the tool's own functions, or
# str's own, which tool code gets as safe_format (fields that only name an argument).
STRING_FORMAT_ATTRIBUTES = frozenset({"format", "format_map"})
# Objects whose attributes are never readable.
OPAQUE_TYPES = (types.FrameType, types.TracebackType, types.CodeType)

SAFE_BUILTIN_NAMES = (
    "abs",
    "all",
    "any",
    "ascii",
    "bin",
    "bool",
    "bytearray",
    "bytes",
    "callable",
    "chr",
    "classmethod",
    "complex",
    "dict",
    "divmod",
    "enumerate",
    "filter",
    "float",
    "format",
    "frozenset",
    "hash",
    "hex",
    "id",
    "int",
    "isinstance",
    "issubclass",
    "iter",
    "len",
    "list",
    "map",
    "max",
    "min",
    "next",
    "object",
    "oct",
    "ord",
    "pow",
    "property",
    "range",
    "repr",
    "reversed",
    "round",
    "set",
    "slice",
    "sorted",
    "staticmethod",
    "str",
    "sum",
    "super",
    "tuple",
    "zip",
    "True",
    "False",
    "None",
    "Ellipsis",
    "NotImplemented",
)
SAFE_EXCEPTIONS = tuple(
    name
    for name, value in vars(builtins).items()
    if isinstance(value, type)
    and issubclass(value, BaseException)
    and not name.startswith("_")
    and name
    not in {
        "SystemExit",
        "KeyboardInterrupt",
        "GeneratorExit",
        "BaseExceptionGroup",
        "ExceptionGroup",
    }
)

INPLACE_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "+=": operator.iadd,
    "-=": operator.isub,
    "*=": operator.imul,
    "/=": operator.itruediv,
    "//=": operator.ifloordiv,
    "%=": operator.imod,
    "**=": operator.ipow,
    "<<=": operator.ilshift,
    ">>=": operator.irshift,
    "&=": operator.iand,
    "|=": operator.ior,
    "^=": operator.ixor,
    "@=": operator.imatmul,
}
# Objects tool code may write items or attributes into, besides its own (dict and list
# subclasses included). decimal.Context: ``getcontext().prec = 50`` is how precision is set.
WRITABLE_CONTAINERS = (dict, list, set, bytearray, deque, decimal.Context)

_MISSING = object()


def _is_private(name: str) -> bool:
    return name.startswith("_") and name != "_"


def guarded_getattr(obj: object, name: object, default: object = _MISSING) -> Any:
    """``getattr`` for tool code: public, non-introspective attributes only."""
    name = _exact_name(name)
    if _is_private(name) or name in BLOCKED_ATTRIBUTES:
        raise refuse(f"attribute '{name}'")
    if isinstance(obj, OPAQUE_TYPES):
        raise refuse(f"reading attributes of {type(obj).__name__} objects")
    if name in STRING_FORMAT_ATTRIBUTES and (isinstance(obj, str) or obj is str):
        return safe_str_method(obj, name)
    if name == "obj" and isinstance(obj, BaseException):
        raise refuse("reading the object an exception refers to")
    value = getattr(obj, name) if default is _MISSING else getattr(obj, name, default)
    if name in STRING_FORMAT_ATTRIBUTES and value is not default and not is_tool_function(value):
        raise refuse(f"str.{name} (use f-strings or %-formatting)")
    return value


def safe_str_method(obj: object, name: str) -> Callable[..., str]:
    """``str.format`` or ``str.format_map`` for tool code: ``"{:>8.2f}".format(x)``,
    ``"{name}".format_map(d)``, ``str.format(t, x)``, with any conversion and format spec,
    but no replacement field that reads an attribute or an item (``{0.__class__}``,
    ``{0[key]}``): str.format resolves those with plain getattr and getitem."""
    method = safe_format if name == "format" else safe_format_map
    if obj is str:
        return method
    return functools.partial(method, str.__str__(obj))


_FORMATTER = string.Formatter()  # only its parser: the fields are formatted by str.format


def safe_format(template: str, /, *args: object, **kwargs: object) -> str:
    text = _template(template)
    return str.format(text, *args, **kwargs)


def safe_format_map(template: str, mapping: Mapping[str, object], /) -> str:
    text = _template(template)
    return str.format_map(text, mapping)


def _template(template: object) -> str:
    if not isinstance(template, str):
        raise TypeError("a format string must be a str")
    text = str.__str__(template)
    _check_fields(text)
    return text


def _check_fields(text: str) -> None:
    """Refuse a replacement field that names more than an argument, nested specs too."""
    for _literal, field_name, spec, _conversion in _FORMATTER.parse(text):
        if field_name is None:
            continue
        # An argument's name or number never holds "." or "["; what follows one does.
        if "." in field_name or "[" in field_name:
            raise refuse(
                f"the format field {{{field_name}}} (a field may name an argument only, "
                "not read its attributes or items)"
            )
        if spec:
            _check_fields(spec)


def _exact_name(name: object) -> str:
    """An attribute name as a plain ``str``.

    A tool's own ``str`` subclass could override ``startswith``, ``__eq__`` or
    ``__hash__`` to pass the checks below while ``getattr`` still sees the real
    characters; every check and the lookup itself use this exact copy instead.
    """
    if not isinstance(name, str):
        raise TypeError("attribute name must be a string")
    return str.__str__(name)


def guarded_hasattr(obj: object, name: object) -> bool:
    try:
        guarded_getattr(obj, name)
    except (AttributeError, GuardError):
        return False
    return True


def guarded_write(obj: object) -> object:
    """``_write_``: the object an assignment or deletion may target, or a refusal."""
    if isinstance(obj, WRITABLE_CONTAINERS) or is_tool_object(obj):
        return obj
    if isinstance(obj, ModuleView):
        raise refuse(f"changing module '{object.__getattribute__(obj, '_name')}'")
    raise refuse(f"changing a {type(obj).__name__} object")


def guarded_setattr(obj: object, name: str, value: object) -> None:
    if not isinstance(name, str) or _is_private(name := _exact_name(name)):
        raise refuse(f"setting attribute {name!r}")
    setattr(guarded_write(obj), name, value)


def guarded_delattr(obj: object, name: str) -> None:
    if not isinstance(name, str) or _is_private(name := _exact_name(name)):
        raise refuse(f"deleting attribute {name!r}")
    delattr(guarded_write(obj), name)


def guarded_getitem(obj: Any, key: Any) -> Any:
    if isinstance(obj, types.ModuleType | ModuleView):
        raise refuse("indexing a module")
    return obj[key]


def guarded_iter(obj: Any) -> Any:
    return iter(obj)


def inplace_var(op: str, target: Any, value: Any) -> Any:
    """``_inplacevar_``: ``x += y`` on a plain name."""
    return INPLACE_OPERATORS[op](target, value)


def inplace_attr(obj: Any, name: str, op: str, value: Any) -> None:
    """``obj.name op= value`` for the tool's own objects."""
    current = guarded_getattr(obj, name)
    guarded_setattr(obj, name, INPLACE_OPERATORS[op](current, value))


def inplace_item(obj: Any, key: Any, op: str, value: Any) -> None:
    """``obj[key] op= value`` for writable containers and the tool's own objects."""
    target = guarded_write(obj)
    target[key] = INPLACE_OPERATORS[op](guarded_getitem(obj, key), value)  # type: ignore[index]


def apply(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``_apply_``: calls with ``*args`` or ``**kwargs``."""
    return func(*args, **kwargs)


def tool_metaclass(name: str, bases: tuple[type, ...], namespace: dict[str, Any]) -> type:
    """``__metaclass__`` for ``class`` statements in tool code: marks the class as the tool's."""
    if any(isinstance(base, type) and issubclass(base, type) for base in bases):
        # A metaclass of the tool's own would create classes like type() with three arguments.
        raise refuse("subclassing type")
    for base in bases:
        if isinstance(base, type) and issubclass(base, SEALED_CLASSES):
            raise refuse(f"subclassing {base.__module__}.{base.__qualname__}")
    namespace[TOOL_CLASS_MARK] = True
    return type(name, bases, namespace)


class SafeType:
    """The sandbox's ``type``: ``type(x)`` for ordinary objects, never a metaclass.

    ``type(int)`` would hand tool code the real ``type`` (and ``type(abc_class)`` the
    real ``ABCMeta``), whose three-argument call creates classes outside the policy,
    so for classes it returns this guard itself. ``isinstance(x, type)`` and
    ``issubclass(c, type)`` keep working.
    """

    def __call__(self, *args: Any) -> Any:
        if len(args) != 1:
            raise refuse("type() with three arguments")
        result = type(args[0])
        return self if issubclass(result, type) or result is SafeType else result

    def __instancecheck__(self, obj: object) -> bool:
        return isinstance(obj, type)

    def __subclasscheck__(self, cls: type) -> bool:
        return issubclass(cls, type)

    def __repr__(self) -> str:
        return "<class 'type'>"


safe_type = SafeType()


class PrintCollector:
    """``_print_``: ``print`` writes to the worker's captured stdout."""

    def __init__(self, _getattr_: object = None) -> None:
        self.parts: list[str] = []

    def _call_print(
        self,
        *objects: object,
        sep: str | None = " ",
        end: str | None = "\n",
        file: object = None,
        flush: bool = False,
    ) -> None:
        if file is not None:
            raise refuse("print(file=...)")
        text = (" " if sep is None else sep).join(str(o) for o in objects)
        text += "\n" if end is None else end
        self.parts.append(text)
        sys.stdout.write(text)

    def __call__(self) -> str:
        return "".join(self.parts)


class ModuleView:
    """A read-only view of an allowed module: public names, no denied names."""

    __slots__ = ("_members", "_name")
    _members: dict[str, object]
    _name: str

    def __init__(self, name: str, members: Mapping[str, object]) -> None:
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_members", dict(members))

    def __getattr__(self, item: str) -> object:
        try:
            return self._members[item]
        except KeyError:
            raise AttributeError(f"module '{self._name}' has no attribute '{item}'") from None

    def __setattr__(self, key: str, value: object) -> None:
        raise refuse(f"changing module '{self._name}'")

    def __delattr__(self, key: str) -> None:
        raise refuse(f"changing module '{self._name}'")

    def __repr__(self) -> str:
        return f"<module '{self._name}' (sandbox view)>"


class Environment:
    """Everything tool code runs against, built once in the template process.

    Worker processes fork from the template and call :meth:`new_globals` for a
    fresh namespace; the module views and builtins are shared read-only.
    """

    def __init__(self, allowlist: Allowlist) -> None:
        self.allowlist = allowlist
        self.modules: dict[str, ModuleView] = {}
        for name in sorted(allowlist.modules, key=lambda n: -n.count(".")):
            self.modules[name] = self._view(name)
        self.builtins = self._builtins()
        self.tripwire = Tripwire(allowlist.modules)
        for name in sorted(allowlist.internal):
            importlib.import_module(name)
        warm_codecs()

    def _view(self, name: str) -> ModuleView:
        module = importlib.import_module(name)
        denied = self.allowlist.modules[name]
        members: dict[str, object] = {}
        for attr, value in vars(module).items():
            if _is_private(attr) or attr in denied:
                continue
            if isinstance(value, types.ModuleType):
                full = value.__name__
                if full in self.modules:
                    members[attr] = self.modules[full]
                continue
            members[attr] = GUARDED_MEMBERS.get((name, attr), value)
        return ModuleView(name, members)

    def _builtins(self) -> dict[str, object]:
        table: dict[str, object] = {name: getattr(builtins, name) for name in SAFE_BUILTIN_NAMES}
        table.update({name: getattr(builtins, name) for name in SAFE_EXCEPTIONS})
        table.update(
            getattr=guarded_getattr,
            hasattr=guarded_hasattr,
            setattr=guarded_setattr,
            delattr=guarded_delattr,
            type=safe_type,
            eval=evaluate,
            __import__=self.guarded_import,
            __build_class__=builtins.__build_class__,
        )
        return table

    def guarded_import(
        self,
        name: str,
        globals_: object = None,
        locals_: object = None,
        fromlist: Iterable[str] | None = (),
        level: int = 0,
    ) -> ModuleView:
        """``__import__``: only allowed modules, always as their sandbox view.

        An allowed module's C code imports its lazy helpers through this too (it looks
        ``__import__`` up in the calling frame, the tool's): for those internal names it
        gives back nothing, and CPython's PyImport_Import takes the module, imported
        when the template started, from ``sys.modules``. An internal name the operator
        also allows (``allow_modules``) is an allowed module like any other.
        """
        internal = name in self.allowlist.internal and name not in self.modules
        if level == 0 and internal and name in sys.modules:
            return None  # type: ignore[return-value]
        if level != 0 or name not in self.modules:
            allowed = ", ".join(self.allowlist.module_names)
            raise ImportError(f"import of '{name}' is not allowed; allowed: {allowed}")
        if fromlist:
            return self.modules[name]
        # "import a.b" binds "a": hand back the top-level view.
        return self.modules.get(name.split(".", maxsplit=1)[0], self.modules[name])

    def new_globals(self, module_name: str = "tool") -> dict[str, object]:
        return {
            "__builtins__": dict(self.builtins),
            "__name__": module_name,
            "__metaclass__": tool_metaclass,
            "_getattr_": guarded_getattr,
            "_getitem_": guarded_getitem,
            "_getiter_": guarded_iter,
            "_write_": guarded_write,
            "_apply_": apply,
            "_print_": PrintCollector,
            "_inplacevar_": inplace_var,
            "_inplace_attr_": inplace_attr,
            "_inplace_item_": inplace_item,
            "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
            "_unpack_sequence_": guarded_unpack_sequence,
        }


def warm_codecs() -> None:
    """Look up every codec of the standard library once, so that ``str.encode`` and
    ``bytes.decode`` in a tool find their codec in the cache instead of importing its
    module (an import the tripwire would stop) during a call."""
    for module in pkgutil.iter_modules(encodings.__path__):
        try:
            codecs.lookup(module.name)
        except (LookupError, ImportError):  # aliases, helpers, other platforms' codecs
            continue
