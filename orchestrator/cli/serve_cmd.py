"""``latm serve``: the public gRPC API (orchestrator, sandbox pools and registry)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.errors import LatmError

if TYPE_CHECKING:
    from orchestrator.config import Settings


def register(commands: Any) -> None:
    parser = commands.add_parser("serve", help="serve the gRPC API until SIGTERM")
    parser.add_argument(
        "--listen",
        default=None,
        metavar="HOST:PORT|unix:PATH",
        help="where to listen (default LATM_LISTEN, 127.0.0.1:50051)",
    )
    parser.add_argument(
        "--config", type=Path, default=None, metavar="FILE", help="TOML config file"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from orchestrator.api.observability import setup_logging
    from orchestrator.api.server import serve

    def main(settings: Settings) -> Coroutine[Any, Any, int]:
        setup_logging(settings)
        return serve(settings, args.listen)

    return run_with_settings(args, "serve", main)


def run_with_settings(
    args: argparse.Namespace, command: str, main: Callable[[Settings], Coroutine[Any, Any, int]]
) -> int:
    """Run ``main`` with the settings (``--config`` first), reporting a bad setting or a
    refusal on stderr with exit status 2."""
    if args.config is not None:
        os.environ["LATM_CONFIG_FILE"] = str(args.config)
    from orchestrator.config import Settings

    try:
        return asyncio.run(main(Settings()))
    except (LatmError, ValueError) as exc:
        print(f"latm {command}: {exc}", file=sys.stderr)
        return 2
