"""The AST pre-check: the first, most readable layer of the policy.

Its messages go back to the maker model, so each names the line, the construct and
what to do instead ("line 3: import of 'os' is not allowed; allowed: bisect, ...").
RestrictedPython runs after it and enforces the same rules again at the bytecode
level; this pass exists for precise feedback and for a few rules RestrictedPython
does not have (module allow-list, three-argument ``type``, nesting depth).
"""

from __future__ import annotations

import ast
import hashlib
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from types import ModuleType

from sandbox.errors import PolicyViolation, SourceSyntaxError, Violation

MAX_SOURCE_BYTES = 512 * 1024
MAX_AST_DEPTH = 100

# Builtins that do not exist in the sandbox, with what to use instead.
FORBIDDEN_BUILTINS: dict[str, str] = {
    "exec": "write the logic as code",
    "compile": "write the logic as code",
    "open": "tools get their input as arguments and return values; there are no files",
    "input": "tools get their input as arguments",
    "globals": "pass values as arguments",
    "locals": "pass values as arguments",
    "vars": "read attributes by name",
    "dir": "read attributes by name",
    "help": "there is no interactive help",
    "breakpoint": "there is no debugger",
    "exit": "return a value instead",
    "quit": "return a value instead",
    "memoryview": "use bytes or bytearray",
    "__import__": "use an import statement",
    "__build_class__": "use a class statement",
}

ASYNC_NODES = (ast.AsyncFunctionDef, ast.AsyncFor, ast.AsyncWith, ast.Await)


@dataclass(frozen=True)
class Allowlist:
    """What tool code may import and which special methods its classes may define."""

    modules: dict[str, frozenset[str]] = field(default_factory=dict)  # module -> denied names
    magic_methods: frozenset[str] = frozenset()
    # Imported by allowed modules' own C code, never by tool code (see allowlist.toml).
    internal: frozenset[str] = frozenset()

    @property
    def module_names(self) -> list[str]:
        return sorted(self.modules)

    def with_modules(self, extra: list[str]) -> Allowlist:
        """Return a copy that also allows ``extra`` (an operator's choice, never a tenant's)."""
        modules = dict(self.modules)
        for name in extra:
            modules.setdefault(name, frozenset())
        return Allowlist(modules=modules, magic_methods=self.magic_methods, internal=self.internal)


@cache
def default_allowlist() -> Allowlist:
    """The allow-list shipped in ``allowlist.toml``."""
    text = resources.files("sandbox").joinpath("allowlist.toml").read_text(encoding="utf-8")
    data = tomllib.loads(text)
    modules = {name: frozenset(spec.get("deny", [])) for name, spec in data["modules"].items()}
    magic = frozenset(data.get("magic_methods", {}).get("allowed", []))
    internal = frozenset(data.get("internal", {}).get("modules", []))
    return Allowlist(modules=modules, magic_methods=magic, internal=internal)


def parse(source: str, origin: str = "tool") -> ast.Module:
    """Parse source, turning every parser failure into a SourceSyntaxError."""
    if len(source.encode("utf-8", "surrogatepass")) > MAX_SOURCE_BYTES:
        raise PolicyViolation(
            [Violation(0, f"source is larger than {MAX_SOURCE_BYTES} bytes", "size")], origin
        )
    try:
        return ast.parse(source, filename=f"<{origin}>")
    except SyntaxError as exc:
        raise SourceSyntaxError(exc.msg or "invalid syntax", exc.lineno or 0, origin) from None
    except (MemoryError, RecursionError, ValueError) as exc:
        # ValueError: null bytes; the others: pathological nesting.
        raise SourceSyntaxError(f"cannot parse: {type(exc).__name__}", 0, origin) from None


def check(tree: ast.Module, allowlist: Allowlist, origin: str = "tool") -> None:
    """Raise PolicyViolation listing every finding in ``tree`` (in line order)."""
    depth = max_depth(tree)
    if depth > MAX_AST_DEPTH:
        raise PolicyViolation(
            [
                Violation(
                    0, f"code is nested {depth} levels deep; the limit is {MAX_AST_DEPTH}", "depth"
                )
            ],
            origin,
        )
    bound = _bound_names(tree)
    findings = sorted(set(_Checker(allowlist, bound).run(tree)), key=lambda v: v.line)
    if findings:
        raise PolicyViolation(findings, origin)


def exported_names(module: ModuleType) -> set[str]:
    """The names ``from module import *`` binds in CPython (its ``__all__``, else its names
    not starting with ``_``), private ones left out either way."""
    exported = getattr(module, "__all__", None)
    if isinstance(exported, list | tuple) and all(isinstance(n, str) for n in exported):
        return {name for name in exported if not name.startswith("_")}
    return {name for name in vars(module) if not name.startswith("_")}


def max_depth(tree: ast.AST) -> int:
    """Nesting depth, computed without recursion (deep trees are the attack)."""
    deepest = 0
    stack: list[tuple[ast.AST, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest


def _bound_names(tree: ast.AST) -> set[str]:
    """Names the code itself binds: a tool may define its own ``compile`` function."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.alias):
            names.add((node.asname or node.name).split(".")[0])
    return names


class _Checker:
    def __init__(self, allowlist: Allowlist, bound: set[str]) -> None:
        self.allowlist = allowlist
        self.bound = bound
        self.allowed_text = ", ".join(allowlist.module_names)

    def run(self, tree: ast.AST) -> Iterator[Violation]:
        for node in ast.walk(tree):
            yield from self._visit(node)

    def _visit(self, node: ast.AST) -> Iterator[Violation]:  # noqa: PLR0912 - one rule per branch
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield from self._import(line, alias.name)
        elif isinstance(node, ast.ImportFrom):
            yield from self._import_from(line, node)
        elif isinstance(node, ast.Name):
            yield from self._name(line, node.id)
        elif isinstance(node, ast.Attribute) and _private(node.attr):
            yield Violation(
                line,
                f"attribute '{node.attr}' is not allowed: names starting "
                "with '_' are private to the sandbox",
                "private-name",
            )
        elif isinstance(node, ast.FunctionDef):
            yield from self._function(node)
        elif isinstance(node, ast.ClassDef) and _private(node.name):
            yield _private_violation(line, node.name)
        elif isinstance(node, ast.arg) and _private(node.arg):
            yield _private_violation(line, node.arg)
        elif isinstance(node, ast.Call):
            yield from self._call(line, node)
        elif isinstance(node, ASYNC_NODES):
            yield Violation(line, "async code is not supported; write plain functions", "async")
        elif isinstance(node, ast.TryStar):
            yield Violation(line, "'except*' is not allowed; use a plain 'except'", "try-star")
        elif isinstance(node, ast.Match):
            yield Violation(line, "'match' statements are not allowed; use if/elif", "match")
        elif isinstance(node, ast.Nonlocal):
            yield Violation(
                line, "'nonlocal' is not allowed; return values or use a class", "nonlocal"
            )
        elif isinstance(node, ast.ExceptHandler) and node.name and _private(node.name):
            yield _private_violation(line, node.name)

    def _import(self, line: int, module: str) -> Iterator[Violation]:
        if module not in self.allowlist.modules:
            yield Violation(
                line, f"import of '{module}' is not allowed; allowed: {self.allowed_text}", "import"
            )

    def _import_from(self, line: int, node: ast.ImportFrom) -> Iterator[Violation]:
        if node.level:
            yield Violation(line, "relative imports are not allowed", "import")
            return
        module = node.module or ""
        if module not in self.allowlist.modules:
            yield from self._import(line, module)
            return
        denied = self.allowlist.modules[module]
        for alias in node.names:
            if alias.name == "*":
                yield Violation(
                    line,
                    f"'from {module} import *' is not allowed; import the names you use",
                    "import",
                )
            elif _private(alias.name) or alias.name in denied:
                yield Violation(
                    line, f"'{module}.{alias.name}' is not available in the sandbox", "import"
                )

    def _name(self, line: int, name: str) -> Iterator[Violation]:
        if name in FORBIDDEN_BUILTINS and name not in self.bound:
            yield Violation(
                line,
                f"'{name}' is not available in the sandbox; {FORBIDDEN_BUILTINS[name]}",
                "builtin",
            )
        elif _private(name):
            yield _private_violation(line, name)

    def _function(self, node: ast.FunctionDef) -> Iterator[Violation]:
        if not _private(node.name):
            return
        is_method = node.col_offset != 0
        allowed = self.allowlist.magic_methods | {
            "__init__",
            "__contains__",
            "__lt__",
            "__le__",
            "__eq__",
            "__ne__",
            "__gt__",
            "__ge__",
        }
        if not (is_method and node.name in allowed):
            yield Violation(
                node.lineno,
                f"function name '{node.name}' is not allowed; special "
                f"methods allowed in classes: {', '.join(sorted(allowed))}",
                "private-name",
            )

    def _call(self, line: int, node: ast.Call) -> Iterator[Violation]:
        func = node.func
        if not isinstance(func, ast.Name) or func.id in self.bound:
            return
        if func.id == "type" and len(node.args) + len(node.keywords) > 1:
            yield Violation(
                line,
                "type() with three arguments (class creation) is not "
                "allowed; use a class statement",
                "type-3",
            )
        elif func.id in {"getattr", "hasattr", "setattr", "delattr"} and len(node.args) >= 2:
            name = node.args[1]
            if (
                isinstance(name, ast.Constant)
                and isinstance(name.value, str)
                and _private(name.value)
            ):
                yield Violation(
                    line,
                    f"{func.id}() of '{name.value}' is not allowed: names "
                    "starting with '_' are private to the sandbox",
                    "private-name",
                )


def _private(name: str) -> bool:
    return name.startswith("_") and name != "_"


def _private_violation(line: int, name: str) -> Violation:
    return Violation(
        line,
        f"name '{name}' is not allowed: names starting with '_' are private to the sandbox",
        "private-name",
    )


def source_id(source: str) -> str:
    """A tool's id: the sha256 of its source (the server and the template agree on it)."""
    return hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()
