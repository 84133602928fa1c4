"""``latm serve``: the public gRPC API (orchestrator, sandbox pools and registry)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from orchestrator.errors import LatmError


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
    if args.config is not None:
        os.environ["LATM_CONFIG_FILE"] = str(args.config)
    from orchestrator.api.observability import setup_logging
    from orchestrator.api.server import serve
    from orchestrator.config import Settings

    try:
        settings = Settings()
        setup_logging(settings)
        return asyncio.run(serve(settings, args.listen))
    except (LatmError, ValueError) as exc:
        print(f"latm serve: {exc}", file=sys.stderr)
        return 2
