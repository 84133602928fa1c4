"""Compiling tool code: the policy pre-check, then RestrictedPython.

``compile_tool`` and ``compile_call`` return code objects ready to ``exec`` against
:meth:`sandbox.guards.Environment.new_globals`, or raise PolicyViolation /
SourceSyntaxError with line numbers.
"""

from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass
from types import CodeType
from typing import Any, ClassVar

from RestrictedPython.transformer import IOPERATOR_TO_STR, RestrictingNodeTransformer

from sandbox import policy
from sandbox.errors import PolicyViolation, SourceSyntaxError, Violation
from sandbox.policy import Allowlist

_LINE = re.compile(r"^Line (\d+): (.*)$", re.DOTALL)


class ToolTransformer(RestrictingNodeTransformer):
    """RestrictedPython's transformer with two additions ordinary tools need.

    * Augmented assignment to items and attributes (``counts[w] += 1``,
      ``self.total += x``) is rewritten into guarded helper calls instead of refused.
    * Annotated assignments (``x: int = 0``) are allowed, as typed tools need.
    * ``eval(...)`` may be called: in the sandbox it is :func:`sandbox.expressions.evaluate`,
      which computes literal expressions and compiles nothing.
    * A few more special methods may be defined in classes (see allowlist.toml).
    """

    extra_magic: ClassVar[frozenset[str]] = frozenset()

    def check_name(self, node: Any, name: str | None, allow_magic_methods: bool = False) -> None:
        if allow_magic_methods and name in self.extra_magic and node.col_offset != 0:
            return
        super().check_name(node, name, allow_magic_methods)

    def visit_Call(self, node: ast.Call) -> Any:
        """RestrictedPython refuses every ``eval(...)`` (CPython's would run text unchecked);
        the sandbox's ``eval`` builtin compiles nothing, so the call is transformed as any
        other call would be."""
        func = node.func
        if not (isinstance(func, ast.Name) and func.id == "eval"):
            return super().visit_Call(node)
        func.id = "sandbox_eval"  # not a name RestrictedPython refuses; restored after
        try:
            return super().visit_Call(node)
        finally:
            func.id = "eval"

    def visit_AugAssign(self, node: ast.AugAssign) -> Any:
        target = node.target
        if isinstance(target, ast.Attribute):
            if target.attr.startswith("_"):
                self.error(
                    node,
                    f'"{target.attr}" is an invalid attribute name because it starts with "_".',
                )
                return node
            args = [self.visit(target.value), ast.Constant(target.attr)]
            helper = "_inplace_attr_"
        elif isinstance(target, ast.Subscript):
            args = [self.visit(target.value), self._slice_expr(target.slice)]
            helper = "_inplace_item_"
        else:
            return super().visit_AugAssign(node)
        call = ast.Call(
            func=ast.Name(helper, ast.Load()),
            args=[*args, ast.Constant(IOPERATOR_TO_STR[type(node.op)]), self.visit(node.value)],
            keywords=[],
        )
        new = ast.Expr(value=call)
        ast.copy_location(new, node)
        return ast.fix_missing_locations(new)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> Any:
        """Annotated assignments (``total: int = 0``, dataclass fields) are plain
        assignments with an annotation; every part goes through the usual checks."""
        return self.node_contents_visit(node)

    def _slice_expr(self, node: ast.expr) -> ast.expr:
        if isinstance(node, ast.Slice):
            parts = [
                self.visit(p) if p is not None else ast.Constant(None)
                for p in (node.lower, node.upper, node.step)
            ]
            return ast.Call(func=ast.Name("slice", ast.Load()), args=parts, keywords=[])
        return self.visit(node)


def _transformer_for(allowlist: Allowlist) -> type[ToolTransformer]:
    return type(
        "BoundToolTransformer", (ToolTransformer,), {"extra_magic": allowlist.magic_methods}
    )


@dataclass(frozen=True)
class CompiledCall:
    """Call code compiled either as one expression or as statements setting ``ans``."""

    code: CodeType
    is_expression: bool


def _compile(
    tree: ast.Module | ast.Expression, mode: str, filename: str, allowlist: Allowlist, origin: str
) -> CodeType:
    """RestrictedPython's transformation, then ``compile`` with ``dont_inherit=True``.

    RestrictedPython's own compile helpers leave ``dont_inherit`` at its default, so
    tool code would inherit ``from __future__ import annotations`` from their module
    and get string annotations, which dataclasses cannot resolve.
    """
    errors: list[str] = []
    transformer = _transformer_for(allowlist)(errors, [], {})
    transformer.visit(tree)
    if errors:
        raise _restricted_errors(errors, origin)
    try:
        return compile(tree, filename, mode, dont_inherit=True)
    except SyntaxError as exc:
        # Errors only the compiler finds, not the parser: 'return' outside a function,
        # 'break' outside a loop, duplicate arguments, a global after an assignment.
        raise SourceSyntaxError(exc.msg or "invalid syntax", exc.lineno or 0, origin) from None
    except (MemoryError, RecursionError, ValueError) as exc:
        raise SourceSyntaxError(f"cannot compile: {type(exc).__name__}", 0, origin) from None


def _restricted_errors(errors: Any, origin: str) -> PolicyViolation:
    violations = []
    for error in errors:
        match = _LINE.match(error)
        if match:
            violations.append(Violation(int(match.group(1)), match.group(2), "restricted"))
        else:
            violations.append(Violation(0, error, "restricted"))
    return PolicyViolation(violations, origin)


class _StarImports(ast.NodeTransformer):
    """``from M import *`` of an allowed module, as the import of the names the code uses
    that ``M`` exports (its ``__all__``, else its names not starting with ``_``): the
    import the model would have written by hand, which the policy then checks like any
    other (a denied name is refused by name). It binds no private name and nothing the
    code does not use; with nothing used it imports nothing. A star import of a module
    not allowed, or a relative one, stays for the policy to refuse."""

    def __init__(self, allowlist: Allowlist, used: set[str]) -> None:
        self.allowlist = allowlist
        self.used = used

    def visit_ImportFrom(self, node: ast.ImportFrom) -> ast.stmt:
        star = [alias.name for alias in node.names] == ["*"]
        if not star or node.level or node.module not in self.allowlist.modules:
            return node
        module = sys.modules.get(node.module)  # the template imported every allowed module
        if module is None:
            return node
        names = sorted(self.used & policy.exported_names(module))
        if not names:
            return ast.copy_location(ast.Pass(), node)
        node.names = [ast.copy_location(ast.alias(name=name), node) for name in names]
        return node


def _named_star_imports(tree: ast.Module, allowlist: Allowlist) -> ast.Module:
    nodes = list(ast.walk(tree))  # iterative: a deep tree is the policy's to refuse
    stars = any(
        isinstance(node, ast.ImportFrom) and any(alias.name == "*" for alias in node.names)
        for node in nodes
    )
    if not stars or policy.max_depth(tree) > policy.MAX_AST_DEPTH:
        return tree
    used = {node.id for node in nodes if isinstance(node, ast.Name)}
    return ast.fix_missing_locations(_StarImports(allowlist, used).visit(tree))


def compile_tool(source: str, allowlist: Allowlist) -> CodeType:
    """Check and compile a tool module."""
    tree = _named_star_imports(policy.parse(source, "tool"), allowlist)
    policy.check(tree, allowlist, "tool")
    return _compile(tree, "exec", "<tool>", allowlist, "tool")


def compile_call(source: str, allowlist: Allowlist) -> CompiledCall:
    """Check and compile call code: one expression, or statements that set ``ans``."""
    tree = _named_star_imports(policy.parse(source, "call"), allowlist)
    policy.check(tree, allowlist, "call")
    if len(tree.body) == 1 and isinstance(tree.body[0], ast.Expr):
        expression = ast.Expression(body=tree.body[0].value)
        return CompiledCall(_compile(expression, "eval", "<call>", allowlist, "call"), True)
    return CompiledCall(_compile(tree, "exec", "<call>", allowlist, "call"), False)
