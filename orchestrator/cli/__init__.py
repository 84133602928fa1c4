"""The ``latm`` command line."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from orchestrator.cli import (
    bench_cmd,
    demo,
    exec_cmd,
    image_cmd,
    make_cmd,
    mcp_cmd,
    models_cmd,
    repair_cmd,
    serve_cmd,
    tenants_cmd,
    tools_cmd,
    usage_cmd,
)
from orchestrator.cli._parser import LatmParser
from orchestrator.cli._remote import RemoteSetupError, resolve
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
    repair_cmd.register(commands)
    bench_cmd.register(commands)
    serve_cmd.register(commands)
    mcp_cmd.register(commands)
    tenants_cmd.register(commands)
    usage_cmd.register(commands)
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
    if "server" in vars(args):  # a command that can run on a server
        args.remote = _remote(args)
    sys.exit(args.run(args))


def _remote(args: argparse.Namespace) -> object:
    """The server the command talks to (None: it runs here); exits 2 when that cannot be
    done safely (a credentials file others can read, plaintext beyond loopback)."""
    try:
        return resolve(args, os.environ)
    except RemoteSetupError as exc:
        named = [args.command, getattr(args, f"{args.command}_command", None)]
        print(f"latm {' '.join(filter(None, named))}: {exc}", file=sys.stderr)
        sys.exit(2)


__all__ = ["build_parser", "main"]
