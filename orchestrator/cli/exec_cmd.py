"""``latm exec``: run code in a sandbox and print one JSON object (DESIGN.md contract)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from orchestrator.config import Settings
from orchestrator.errors import InvalidRequest, LatmError
from orchestrator.sandboxes import ErrorInfo, ExecRequest, ExecResult, Status, create_backend

USAGE_ERROR = 2
CONTAINER_OVERHEAD_MB = 256


def register(commands: Any) -> None:
    parser = commands.add_parser("exec", help="run a tool module and call code in a sandbox")
    parser.add_argument("--source", required=True, metavar="FILE", help="tool module (Python)")
    parser.add_argument(
        "--call", required=True, metavar="CODE", help="statements setting `ans`, or one expression"
    )
    parser.add_argument(
        "--backend",
        choices=["process", "docker"],
        default=None,
        help="sandbox backend (default: LATM_BACKEND or process)",
    )
    parser.add_argument(
        "--runtime",
        choices=["runc", "runsc"],
        default=None,
        help="container runtime (docker backend)",
    )
    parser.add_argument("--timeout-ms", type=int, default=0, help="wall-clock limit")
    parser.add_argument("--memory-mb", type=int, default=0, help="memory limit")
    parser.take_tenant("cli", hidden=True)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        source = Path(args.source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        print(f"latm exec: cannot read {args.source}: {exc}", file=sys.stderr)
        return USAGE_ERROR
    if args.timeout_ms < 0 or args.memory_mb < 0:
        print("latm exec: limits must not be negative", file=sys.stderr)
        return USAGE_ERROR
    try:
        request = ExecRequest(
            source=source, call=args.call, timeout_ms=args.timeout_ms, memory_mb=args.memory_mb
        )
    except ValidationError as exc:
        print(f"latm exec: {exc.errors()[0]['msg']}", file=sys.stderr)
        return USAGE_ERROR
    settings = Settings()
    limits = settings.docker.limits
    # The container must hold the server as well as a worker at the call's memory limit.
    if args.memory_mb and limits.memory_mb < args.memory_mb + CONTAINER_OVERHEAD_MB:
        limits = limits.model_copy(update={"memory_mb": args.memory_mb + CONTAINER_OVERHEAD_MB})
    # One call: no spare container is worth starting.
    pool = settings.docker.pool.model_copy(update={"min_idle": 0})
    docker = settings.docker.model_copy(update={"limits": limits, "pool": pool})
    settings = settings.model_copy(update={"docker": docker})
    try:
        result = asyncio.run(
            _execute(args.backend or settings.backend, args.runtime, settings, args.tenant, request)
        )
    except InvalidRequest as exc:
        print(f"latm exec: {exc}", file=sys.stderr)
        return USAGE_ERROR
    print(result.to_json())
    return 0 if result.status is Status.OK else 1


async def _execute(
    backend_name: str, runtime: str | None, settings: Settings, tenant: str, request: ExecRequest
) -> ExecResult:
    try:
        backend = create_backend(backend_name, settings, runtime)
    except InvalidRequest:
        raise
    except LatmError as exc:
        return _unavailable(exc, backend_name)
    async with backend:
        try:
            return await backend.execute(tenant, request)
        except InvalidRequest:
            raise
        except LatmError as exc:
            return _unavailable(exc, backend.isolation[0])


def _unavailable(exc: LatmError, isolation: str) -> ExecResult:
    return ExecResult(
        status=Status.CRASHED,
        isolation=isolation,
        error=ErrorInfo(type=type(exc).__name__, message=str(exc)),
    )
