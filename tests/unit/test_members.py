"""The guarded members of allowed modules: each internal route refused, CPython's
behaviour kept for what tools really write."""

from __future__ import annotations

import pytest

from sandbox.errors import GuardError
from tests.support.policy import run_tool

DISPATCH = (
    "import functools\n\ndef base(x):\n    return 'object'\n\nd = functools.singledispatch(base)\n"
)


def test_singledispatch_register_by_class_annotation_works() -> None:
    source = DISPATCH + (
        "@d.register\ndef on_int(x: int):\n    return 'int'\n\n"
        "@d.register(str)\ndef on_str(x):\n    return 'str'\n\n"
        "@d.register\ndef on_either(x: float | bytes):\n    return 'float or bytes'\n"
    )
    assert run_tool(source, "[d(1), d('a'), d(1.5), d(b''), d([])]") == [
        "int",
        "str",
        "float or bytes",
        "float or bytes",
        "object",
    ]


@pytest.mark.parametrize(
    "annotation",
    [
        "'(leak := 1) and int'",  # the reported escape: text evaluated by get_type_hints
        "text",  # a variable holding text built at run time
        "list['int']",  # text inside a generic alias is evaluated too
        "typing.Union['int', str]",
    ],
)
def test_singledispatch_never_evaluates_annotation_text(annotation: str) -> None:
    source = (
        DISPATCH + "import typing\ntext = ''.join(['in', 't'])\n"
        f"def impl(x: {annotation}):\n    return 'ESCAPED'\n"
    )
    with pytest.raises(TypeError, match="Invalid annotation"):
        run_tool(source, "d.register(impl)")


def test_singledispatchmethod_register_never_evaluates_annotation_text() -> None:
    source = (
        "import functools\n\nclass A:\n"
        "    @functools.singledispatchmethod\n"
        "    def f(self, x):\n        return 'object'\n\n"
        "    @f.register\n    def on_int(self, x: int):\n        return 'int'\n\n"
        "text = 'int'\n\ndef impl(self, x: text):\n    return 'ESCAPED'\n"
    )
    assert run_tool(source, "[A().f(1), A().f('a')]") == ["int", "object"]
    with pytest.raises(TypeError, match="is text"):
        run_tool(source, "A.f.register(impl)")


@pytest.mark.parametrize(
    ("source", "call"),
    [
        ("import dataclasses\nimport math\n", "dataclasses.dataclass(type(math))"),
        ("import dataclasses\n", "dataclasses.dataclass(frozen=True)(type(type))"),
        ("import functools\nimport fractions\n", "functools.total_ordering(fractions.Fraction)"),
        ("import collections\n", "collections.namedtuple('P', 'a', module='sys')"),
    ],
)
def test_library_classes_and_modules_are_not_the_tools_to_change(source: str, call: str) -> None:
    with pytest.raises(GuardError):
        run_tool(source, call)


def test_dataclass_total_ordering_and_namedtuple_work_on_the_tools_own_classes() -> None:
    source = (
        "import collections\nimport dataclasses\nimport functools\n\n"
        "@dataclasses.dataclass(frozen=True, order=True)\nclass P:\n    a: int\n    b: int = 2\n\n"
        "@dataclasses.dataclass\nclass Q:\n"
        "    items: list = dataclasses.field(default_factory=list)\n\n"
        "@functools.total_ordering\nclass V:\n    def __init__(self, v):\n        self.v = v\n"
        "    def __lt__(self, other):\n        return self.v < other.v\n"
        "    def __eq__(self, other):\n        return self.v == other.v\n\n"
        "N = collections.namedtuple('N', 'x y', defaults=[0])\n"
    )
    call = "[P(1) < P(2), repr(P(1)), Q().items, V(1) >= V(2), N(1), N(3).y]"
    assert run_tool(source, call) == [True, "P(a=1, b=2)", [], False, (1, 0), 0]
