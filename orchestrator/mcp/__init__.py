"""MCP (Model Context Protocol) servers of each tenant's tools, over the public API's
service: Streamable HTTP at ``/mcp`` beside ``latm serve``'s gRPC listener, and stdio
(``latm mcp --tenant T``) for desktop agents. Needs the ``mcp`` extra."""

from __future__ import annotations

__all__ = ["require_mcp"]


def require_mcp() -> None:
    """Raise an error naming the extra to install when the MCP SDK is missing."""
    try:
        import mcp  # noqa: F401
    except ImportError:
        from orchestrator.errors import InvalidRequest

        raise InvalidRequest("MCP needs the official SDK: pip install 'latm[mcp]'") from None
