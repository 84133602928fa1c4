"""``latm mcp --tenant T``: one tenant's tools as an MCP server over stdio."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.config import Settings


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "mcp", help="serve a tenant's tools to a desktop agent over MCP (stdio)"
    )
    parser.add_argument("--tenant", required=True, help="the tenant whose tools to serve")
    parser.add_argument(
        "--config", type=Path, default=None, metavar="FILE", help="TOML config file"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from orchestrator.cli.serve_cmd import run_with_settings

    return run_with_settings(args, "mcp", lambda settings: _serve(settings, args.tenant))


async def _serve(settings: Settings, tenant: str) -> int:
    from orchestrator.mcp import require_mcp

    require_mcp()
    from orchestrator.api.server import open_engine
    from orchestrator.mcp.stdio import serve_stdio

    engine = open_engine(settings)
    try:
        await serve_stdio(settings, engine, tenant)
    finally:
        await engine.aclose()
        await engine.backend.close()
        engine.registry.close()
    return 0
