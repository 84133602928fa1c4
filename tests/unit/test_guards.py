"""Run-time guards: what compiled tool code can reach, tested through real tool code."""

from __future__ import annotations

import pytest

from sandbox.errors import GuardError
from sandbox.guards import Environment, guarded_getattr, guarded_write
from sandbox.policy import default_allowlist
from tests.support.policy import run_tool

ENV = Environment(default_allowlist())


@pytest.mark.parametrize(
    "call",
    [
        "getattr((), '_' + '_class__')",  # names built at run time
        "getattr((), ''.join([chr(95), chr(95), 'class', chr(95), chr(95)]))",
        "'{0.__class__}'.format(1)",
        "'{0[0]}'.format([1])",
        "'{x.real}'.format_map({'x': 1})",
        "str.format('{0:{1.__class__}}', 1, 2)",  # a field inside a format spec
        "getattr(str, 'format')('{0.__doc__}', 1)",
        "int.mro()",
        "t = type\nans = t('X', (object,), {})",  # three-argument type() past the AST check
        "setattr(math, 'floor', None)",
        "n = chr(95) * 2 + 'doc' + chr(95) * 2\nans = hasattr(1, n) or getattr(1, n)",
    ],
)
def test_guard_refuses(call: str) -> None:
    with pytest.raises((GuardError, AttributeError)):
        run_tool("import math\n", call)


def test_frames_of_generators_are_unreachable() -> None:
    with pytest.raises(GuardError):
        run_tool("def g():\n    yield 1\n", "getattr(g(), 'gi' + '_frame')")


def test_exception_obj_is_unreachable() -> None:
    source = (
        "def f():\n    try:\n        (1).nope\n"
        "    except AttributeError as e:\n        return getattr(e, 'obj')\n"
    )
    with pytest.raises(GuardError):
        run_tool(source, "f()")


def test_modules_are_read_only_views() -> None:
    with pytest.raises(GuardError, match="changing"):
        run_tool("import math\n", "ans = 1\nmath.floor = None")
    with pytest.raises(AttributeError):
        run_tool("import random\n", "getattr(random, 'SystemRandom') and random.nope")


def test_private_members_of_allowed_modules_are_hidden() -> None:
    view = ENV.modules["random"]
    with pytest.raises(AttributeError):
        view.__getattr__("_inst")
    assert "sys" not in ENV.modules["typing"]._members  # modules inside modules are dropped


def test_submodule_views_are_nested() -> None:
    assert run_tool("import collections.abc\n", "isinstance([], collections.abc.Sequence)")


@pytest.mark.parametrize("expression", ["type(int)", "type(collections.abc.Sequence)"])
def test_type_never_hands_out_a_metaclass(expression: str) -> None:
    source = "import collections.abc\n"
    with pytest.raises(GuardError, match="three arguments"):
        run_tool(source, f"t = {expression}\nans = t('X', (), {{}})")
    assert run_tool(source, f"{expression} is type")


def test_type_still_answers_ordinary_questions() -> None:
    assert run_tool("", "[type(1) is int, isinstance(int, type), issubclass(bool, int)]") == [
        True,
        True,
        True,
    ]
    assert run_tool("", "isinstance(3, type)") is False


def test_subclassing_a_metaclass_is_refused() -> None:
    # Even if the real ``type`` were reached some other way, a class statement
    # deriving from it is refused.
    from sandbox.guards import tool_metaclass

    with pytest.raises(GuardError, match="subclassing type"):
        tool_metaclass("Meta", (type,), {})


def test_write_guard_allows_own_objects_and_containers_only() -> None:
    assert guarded_write([]) == []
    with pytest.raises(GuardError):
        guarded_write(ENV.modules["math"])
    with pytest.raises(GuardError):
        guarded_write(object())
    with pytest.raises(GuardError):
        guarded_getattr(1, "__class__")


def test_import_hook_refuses_unlisted_modules() -> None:
    with pytest.raises(ImportError, match="not allowed"):
        ENV.guarded_import("os")


LYING_STR = (
    "class S(str):\n"
    "    def startswith(self, prefix):\n"
    "        return False\n"
    "    def __eq__(self, other):\n"
    "        return False\n"
    "    def __hash__(self):\n"
    "        return 7\n"
)


@pytest.mark.parametrize(
    "call",
    [
        "getattr((), S('__class__'))",
        "getattr((x for x in []), S('gi_frame'))",
        "class T:\n    pass\nsetattr(T, S('__class__'), int)\nans = 1",
        "class T:\n    pass\ndelattr(T, S('__doc__'))\nans = 1",
    ],
)
def test_a_lying_str_subclass_is_checked_as_the_str_it_spells(call: str) -> None:
    with pytest.raises(GuardError):
        run_tool(LYING_STR, call)


@pytest.mark.parametrize(
    ("source", "call"),
    [
        ("import collections\n", "collections.UserString('{0.__class__}').format(1)"),
        ("import collections\n", "collections.UserString('{x}').format_map({'x': 1})"),
        ("class S(str):\n    pass\n", "super(S, S('{0.__class__}')).format(1)"),
    ],
)
def test_format_is_refused_wherever_it_forwards_to_str_format(source: str, call: str) -> None:
    with pytest.raises(GuardError, match=r"str\.format"):
        run_tool(source, call)


@pytest.mark.parametrize(
    "call",
    [
        "functools.update_wrapper(f, typing.cast, assigned=[], updated=['__globals__'])",
        "functools.wraps(typing.cast, updated=['__globals__'])(f)",
        "functools.update_wrapper(typing.cast, f)",  # a library object as the wrapper
    ],
)
def test_update_wrapper_keeps_its_default_attributes_and_the_tools_objects(call: str) -> None:
    source = "import functools\nimport typing\ndef f():\n    return 1\n"
    with pytest.raises(GuardError):
        run_tool(source, call)


def test_guarded_features_still_serve_ordinary_tools() -> None:
    source = (
        "import functools\n"
        "def deco(f):\n"
        "    @functools.wraps(f)\n"
        "    def inner(x):\n"
        "        return f(x) + 1\n"
        "    return inner\n"
        "@deco\n"
        "def g(x):\n"
        "    return x\n"
        "class Report:\n"
        "    def format(self, x):\n"
        "        return [x]\n"
    )
    assert run_tool(source, "[g(1), Report().format(2), type(type(type)) is type]") == [
        2,
        [2],
        True,
    ]


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        ("'{:.2f}'.format(3.14159)", "3.14"),
        ("'{:>6}|{:<4}|{:^5}'.format('ab', 1, 'c')", "    ab|1   |  c  "),
        ("'{name} is {age:d}'.format(name='Ann', age=7)", "Ann is 7"),
        ("'{0}{1}{0}'.format('a', 'b')", "aba"),
        ("'{x!r} {y:,}'.format_map({'x': 'q', 'y': 1234567})", "'q' 1,234,567"),
        ("'{:{w}.{p}f}'.format(2.5, w=7, p=2)", "   2.50"),
        ("str.format('{}-{}', 1, 2)", "1-2"),
        ("'{{literal}} {}'.format(1)", "{literal} 1"),
        ("'{:%Y-%m-%d}'.format(datetime.date(2024, 2, 29))", "2024-02-29"),
    ],
)
def test_str_format_serves_fields_that_name_an_argument(call: str, expected: str) -> None:
    assert run_tool("import datetime\n", f"ans = {call}") == expected


def test_internal_modules_of_allowed_modules_load_through_the_import_hook() -> None:
    """datetime.strptime imports _strptime through the calling frame's __import__."""
    assert "_strptime" in ENV.allowlist.internal
    assert ENV.guarded_import("_strptime") is None  # nothing handed back
    source = "import datetime\n"
    call = "ans = datetime.datetime.strptime('2024-02-29 13:05', '%Y-%m-%d %H:%M').isoformat()"
    assert run_tool(source, call) == "2024-02-29T13:05:00"
    assert run_tool(source, "ans = datetime.date(2024, 2, 29).strftime('%A %d %B')") == (
        "Thursday 29 February"
    )
    with pytest.raises(ImportError, match="not allowed"):
        ENV.guarded_import("_strptime", level=1)


def test_an_internal_module_the_operator_allows_is_imported_like_any_allowed_one() -> None:
    """``allow_modules=["time"]`` gives tools ``time``; it is no longer a silent no-op."""
    env = Environment(default_allowlist().with_modules(["time"]))
    assert "time" in env.allowlist.internal
    view = env.guarded_import("time")
    assert view is not None
    assert callable(view.monotonic)
    assert ENV.guarded_import("time") is None  # by default, only the allowed modules' own use
