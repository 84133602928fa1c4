"""Compiling tool code: the policy pre-check, then RestrictedPython.

``compile_tool`` and ``compile_call`` return code objects ready to ``exec`` against
:meth:`sandbox.guards.Environment.new_globals`, or raise PolicyViolation /
SourceSyntaxError with line numbers.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from types import CodeType
from typing import Any, ClassVar

from RestrictedPython import compile_restricted_eval, compile_restricted_exec
from RestrictedPython.transformer import IOPERATOR_TO_STR, RestrictingNodeTransformer

from sandbox import policy
from sandbox.errors import PolicyViolation, Violation
from sandbox.policy import Allowlist

_LINE = re.compile(r"^Line (\d+): (.*)$", re.DOTALL)


class ToolTransformer(RestrictingNodeTransformer):
    """RestrictedPython's transformer with two additions ordinary tools need.

    * Augmented assignment to items and attributes (``counts[w] += 1``,
      ``self.total += x``) is rewritten into guarded helper calls instead of refused.
    * A few more special methods may be defined in classes (see allowlist.toml).
    """

    extra_magic: ClassVar[frozenset[str]] = frozenset()

    def check_name(self, node: Any, name: str | None, allow_magic_methods: bool = False) -> None:
        if allow_magic_methods and name in self.extra_magic and node.col_offset != 0:
            return
        super().check_name(node, name, allow_magic_methods)

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


def _restricted_errors(errors: Any, origin: str) -> PolicyViolation:
    violations = []
    for error in errors:
        match = _LINE.match(error)
        if match:
            violations.append(Violation(int(match.group(1)), match.group(2), "restricted"))
        else:
            violations.append(Violation(0, error, "restricted"))
    return PolicyViolation(violations, origin)


def compile_tool(source: str, allowlist: Allowlist) -> CodeType:
    """Check and compile a tool module."""
    tree = policy.parse(source, "tool")
    policy.check(tree, allowlist, "tool")
    result = compile_restricted_exec(tree, "<tool>", policy=_transformer_for(allowlist))
    if result.errors or result.code is None:
        raise _restricted_errors(result.errors, "tool")
    return result.code


def compile_call(source: str, allowlist: Allowlist) -> CompiledCall:
    """Check and compile call code: one expression, or statements that set ``ans``."""
    tree = policy.parse(source, "call")
    policy.check(tree, allowlist, "call")
    transformer = _transformer_for(allowlist)
    if len(tree.body) == 1 and isinstance(tree.body[0], ast.Expr):
        expression = ast.Expression(body=tree.body[0].value)
        result = compile_restricted_eval(expression, "<call>", policy=transformer)
        is_expression = True
    else:
        result = compile_restricted_exec(tree, "<call>", policy=transformer)
        is_expression = False
    if result.errors or result.code is None:
        raise _restricted_errors(result.errors, "call")
    return CompiledCall(result.code, is_expression)
