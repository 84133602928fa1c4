"""Where a name a tool forgot to import lives: the import the maker adds, or a hint.

Small models use ``Optional``, ``Counter`` or ``sqrt`` without the import; the sandbox's
``NameError`` says only that the name is not defined, and a 1.5B maker often writes the same
function again. When an allowed module (``sandbox/allowlist.toml``) exports the name (its
``__all__``, else its public names, minus the names the allow-list denies), the hint says
which import brings it; the maker adds that line to a proposed tool's text itself and runs
it again in the sandbox. This reads the standard library's own modules, in the orchestrator;
nothing of the model's runs here.
"""

from __future__ import annotations

import importlib
import re
from functools import cache

from sandbox.policy import Allowlist, default_allowlist, exported_names

_UNDEFINED = re.compile(r"NameError: name '([A-Za-z_][A-Za-z0-9_]*)' is not defined")


def import_lines(error: str) -> tuple[str, list[str]] | None:
    """For a NameError of a name an allowed module provides: the name, and the import lines
    that bring it (the module itself first, then the first allowed module exporting it);
    None otherwise."""
    match = _UNDEFINED.search(error)
    if match is None:
        return None
    name = match.group(1)
    lines = [f"import {name}"] if name in _allowlist().modules else []
    if (module := exporters().get(name)) is not None:
        lines.append(f"from {module} import {name}")
    return (name, lines) if lines else None


def import_hint(error: str) -> str:
    """`` (`X` is in M: add `from M import X` ...)`` for a NameError of a name an allowed
    module exports (or ``import X`` for an allowed module itself); empty otherwise."""
    found = import_lines(error)
    if found is None:
        return ""
    name, (line, *_) = found
    if line == f"import {name}":
        return f" (`{name}` is a module: add `{line}` at the top)"
    return f" (`{name}` is in {line.split()[1]}: add `{line}` at the top)"


@cache
def _allowlist() -> Allowlist:
    return default_allowlist()


@cache
def exporters() -> dict[str, str]:
    """Each name an allowed module exports, and the first such module (allow-list order,
    modules named in it before their submodules)."""
    allowlist = _allowlist()
    found: dict[str, str] = {}
    for module_name, denied in allowlist.modules.items():
        try:
            module = importlib.import_module(module_name)
        except ImportError:  # an allowed module this interpreter lacks: no hint from it
            continue
        for name in exported_names(module) - denied:
            found.setdefault(name, module_name)
    return found
