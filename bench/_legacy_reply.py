"""The maker-reply reader as it was before ``orchestrator.latm.replies`` (frozen here so that
``bench/maker_format.py`` can compare the two): the first block that defines a function is
the tool, later blocks are calls, and a tool block ending in top-level ``ans =`` or
``print(`` lines is split there."""

from __future__ import annotations

import re
from dataclasses import dataclass

from orchestrator.latm.code import code_blocks

_DEF = re.compile(r"^def[ \t]+([A-Za-z][A-Za-z0-9_]*)[ \t]*\((.*?)\)[ \t]*(->[^:]*)?:", re.M | re.S)
_CALL_LINE = re.compile(r"^(ans\s*=|print\s*\()", re.M)
_ANS_LINE = re.compile(r"^ans\s*=")


@dataclass(frozen=True)
class Proposal:
    """A maker's reply split into the tool module and the calls that follow it."""

    source: str | None
    calls: list[str]


def split_proposal(reply: str) -> Proposal:
    """The first block that defines a function is the tool; later blocks are calls.

    A tool block that ends in top-level ``ans = ...`` lines (a model that put everything in
    one block) is split there.
    """
    blocks = code_blocks(reply)
    for index, block in enumerate(blocks):
        if _DEF.search(block):
            tool, trailing = _split_trailing_calls(block)
            return Proposal(tool, trailing + [b.strip() for b in blocks[index + 1 :]])
    return Proposal(None, [block.strip() for block in blocks])


def _split_trailing_calls(block: str) -> tuple[str, list[str]]:
    """Top-level code after the tool becomes calls: each ``ans = ...`` line starts one, and
    the lines after it (a ``print``, say) belong to it; comments are dropped."""
    match = next((m for m in _CALL_LINE.finditer(block) if m.start() > 0), None)
    if match is None:
        return block.strip("\n") + "\n", []
    tool, rest = block[: match.start()], block[match.start() :]
    calls: list[list[str]] = []
    for line in rest.splitlines():
        text = line.rstrip()
        if not text.strip() or text.lstrip().startswith("#"):
            continue
        if _ANS_LINE.match(text) or not calls:
            calls.append([text])
        else:
            calls[-1].append(text)
    return tool.strip("\n") + "\n", ["\n".join(call) for call in calls]
