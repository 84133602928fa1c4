"""The ``latm`` command line."""

from __future__ import annotations

import logging
import sys

from orchestrator.cli import (
    bench_cmd,
    demo,
    exec_cmd,
    image_cmd,
    make_cmd,
    mcp_cmd,
    models_cmd,
    serve_cmd,
    tenants_cmd,
    tools_cmd,
)
from orchestrator.cli._parser import LatmParser
from orchestrator.secrets import install_log_redaction


def build_parser() -> LatmParser:
    parser = LatmParser(prog="latm", description="LLMs as Tool Makers platform")
    commands = parser.commands
    exec_cmd.register(commands)
    demo.register(commands)
    image_cmd.register(commands)
    models_cmd.register(commands)
    make_cmd.register(commands)
    tools_cmd.register(commands)
    bench_cmd.register(commands)
    serve_cmd.register(commands)
    mcp_cmd.register(commands)
    tenants_cmd.register(commands)
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    install_log_redaction()
    sys.exit(args.run(args))


__all__ = ["build_parser", "main"]
