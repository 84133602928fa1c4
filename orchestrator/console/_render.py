"""Untrusted text made safe to show: tool source highlighted by Pygments (which escapes it),
diffs between versions by :class:`difflib.HtmlDiff` (which escapes each line), JSON shown
as text. Everything else goes through Jinja2's autoescaping."""

from __future__ import annotations

import difflib
import json
from typing import Any

from markupsafe import Markup
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

_FORMATTER = HtmlFormatter(cssclass="source", linenos="table", wrapcode=True)


def highlighted(source: str) -> Markup:
    """``source`` as highlighted HTML; Pygments escapes every token."""
    return Markup(highlight(source, PythonLexer(), _FORMATTER))  # noqa: S704 - escaped by Pygments


def pygments_css() -> str:
    """The highlighting's stylesheet, served as a static file (no inline styles)."""
    return str(_FORMATTER.get_style_defs(".source"))


def diff_table(old: str, new: str, old_label: str, new_label: str) -> Markup:
    """A side-by-side diff of two sources; HtmlDiff escapes ``&``, ``<`` and ``>``."""
    table = difflib.HtmlDiff(tabsize=4, wrapcolumn=90).make_table(
        old.splitlines(), new.splitlines(), old_label, new_label, context=True, numlines=3
    )
    return Markup(table)  # noqa: S704 - HtmlDiff escapes each line; labels are ours


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True)
