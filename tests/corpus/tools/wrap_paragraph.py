"""Wrap and indent a paragraph with textwrap."""
import textwrap


def wrap_paragraph(text, width=30, indent="  "):
    """Return the wrapped lines, each prefixed with indent, and a shortened preview."""
    lines = textwrap.wrap(text, width=width)
    block = textwrap.indent("\n".join(lines), indent)
    preview = textwrap.shorten(text, width=width, placeholder="...")
    return {"lines": block.split("\n"), "preview": preview}
