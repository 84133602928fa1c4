"""``eval`` in the sandbox: the value of an expression of literals and operators.

Models reach for ``eval`` to compute an arithmetic or boolean expression they were given
as text (``eval("(3 + 4) * -2")``, ``eval("not True and False")``). CPython's ``eval``
would compile the text and run it outside every rule the tool's own code was checked
against, so the sandbox's ``eval`` compiles nothing: it parses the text to a syntax tree
(``ast.parse``, which only parses) and computes the value by walking it. It knows
literals, containers of them, operators, comparisons and ``x if c else y``; a name, an
attribute, a call, a subscript or a comprehension is refused with what to do instead.
The operands are only ever builtin literal values, so an operator never runs tool code:
the worst an expression can do is cost time or memory, which the call's limits bound as
they bound any tool code.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable
from typing import Any

from sandbox.policy import MAX_AST_DEPTH, max_depth

MAX_EXPRESSION_CHARS = 100_000
MAX_DEPTH = MAX_AST_DEPTH  # deeper trees are refused before walking, as tool code is

REFUSED = (
    "eval in the sandbox computes expressions of literals and operators only "
    "(numbers, strings, True/False/None, lists, tuples, sets, dicts, arithmetic, "
    "comparisons, and/or/not, x if c else y)"
)

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
    ast.LShift: operator.lshift,
    ast.RShift: operator.rshift,
    ast.BitOr: operator.or_,
    ast.BitXor: operator.xor,
    ast.BitAnd: operator.and_,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
    ast.Invert: operator.invert,
    ast.Not: operator.not_,
}
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
    ast.Is: operator.is_,
    ast.IsNot: operator.is_not,
}


def evaluate(source: object, globals_: object = None, locals_: object = None, /) -> Any:
    """``eval(source)``: the value of ``source``, an expression of literals and operators.

    Raises:
        TypeError: ``source`` is not text, or a namespace was passed.
        SyntaxError: ``source`` is not an expression.
        NameError: it names something (nothing is looked up).
        ValueError: it uses what the sandbox's ``eval`` does not compute, or is too
            long or too deeply nested.
    """
    if globals_ is not None or locals_ is not None:
        raise TypeError(f"eval in the sandbox takes only the expression text; {REFUSED}")
    if isinstance(source, bytes | bytearray):
        source = bytes(source).decode("utf-8")
    if not isinstance(source, str):
        raise TypeError(f"eval() arg 1 must be a string, not {type(source).__name__}")
    if len(source) > MAX_EXPRESSION_CHARS:
        raise ValueError(f"the expression is longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        # CPython's eval ignores leading spaces and tabs too.
        tree = ast.parse(source.lstrip(" \t"), mode="eval")
    except SyntaxError as exc:
        raise SyntaxError(exc.msg) from None
    except (MemoryError, RecursionError):
        raise ValueError(f"the expression is nested deeper than {MAX_DEPTH} levels") from None
    if max_depth(tree) > MAX_DEPTH:
        raise ValueError(f"the expression is nested deeper than {MAX_DEPTH} levels")
    return _value(tree.body)


def _value(node: ast.expr) -> Any:  # noqa: PLR0911 - one return per kind of node
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_value(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        return _BINARY[type(node.op)](_value(node.left), _value(node.right))
    if isinstance(node, ast.BoolOp):
        return _boolean(node)
    if isinstance(node, ast.Compare):
        return _compare(node)
    if isinstance(node, ast.IfExp):
        return _value(node.body) if _value(node.test) else _value(node.orelse)
    if isinstance(node, ast.Tuple):
        return tuple(_value(item) for item in node.elts)
    if isinstance(node, ast.List):
        return [_value(item) for item in node.elts]
    if isinstance(node, ast.Set):
        return {_value(item) for item in node.elts}
    if isinstance(node, ast.Dict) and None not in node.keys:
        return {
            _value(key): _value(value)
            for key, value in zip(node.keys, node.values, strict=True)
            if key is not None
        }
    if isinstance(node, ast.Name):
        raise NameError(f"name {node.id!r} is not defined: {REFUSED}; names are not looked up")
    raise ValueError(f"{type(node).__name__.lower()} is not supported: {REFUSED}")


def _boolean(node: ast.BoolOp) -> Any:
    """``and``/``or``, short-circuited as Python does, giving the deciding operand."""
    value: Any = None
    for operand in node.values:
        value = _value(operand)
        if isinstance(node.op, ast.And) and not value:
            return value
        if isinstance(node.op, ast.Or) and value:
            return value
    return value


def _compare(node: ast.Compare) -> bool:
    """A chain of comparisons, each operand computed once, stopping at the first false."""
    left = _value(node.left)
    for op, comparator in zip(node.ops, node.comparators, strict=True):
        right = _value(comparator)
        if not _COMPARE[type(op)](left, right):
            return False
        left = right
    return True
