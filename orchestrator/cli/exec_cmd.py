"""``latm exec``: run code in a sandbox and print one JSON object (DESIGN.md contract).

Locally it runs a source file and call code (``--source FILE --call CODE``); with
``--server`` it calls a tool of the tenant's by name (``TOOL --args JSON``), in the server's
sandbox, and prints the same object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from orchestrator.cli._parser import CommandParser
from orchestrator.config import Settings
from orchestrator.errors import InvalidRequest, LatmError
from orchestrator.sandboxes import ErrorInfo, ExecRequest, ExecResult, Status, create_backend

USAGE_ERROR = 2
CONTAINER_OVERHEAD_MB = 256
LOCAL_ONLY = ("source", "call", "backend", "runtime")
REMOTE_ONLY = ("tool", "arguments", "version")
MIXED = {
    True: "not with --server, which calls a tool by name: latm exec TOOL --args JSON",
    False: "only with --server (or LATM_SERVER): a tool on a server, called by name",
}


def register(commands: Any) -> None:
    parser = commands.add_parser("exec", help="run a tool module and call code in a sandbox")
    parser.add_argument("--source", metavar="FILE", help="tool module (Python), locally")
    parser.add_argument(
        "--call",
        metavar="CODE",
        help="statements setting `ans`, or one expression (locally)",
    )
    parser.add_argument("tool", nargs="?", help="with --server: the tenant's tool to call")
    parser.add_argument(
        "--args", dest="arguments", metavar="JSON", help="with --server: the keyword arguments"
    )
    parser.add_argument(
        "--version", type=int, default=None, help="with --server: the tool's version (latest)"
    )
    parser.add_argument(
        "--backend",
        choices=["process", "docker", "kubernetes"],
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
    parser.take_remote()
    parser.set_defaults(run=checked(parser))


def checked(parser: CommandParser) -> Callable[[argparse.Namespace], int]:
    """``run``, or ``run_remote`` with ``--server``, once the flags fit the mode (else the
    parser's usage error)."""

    def dispatch(args: argparse.Namespace) -> int:
        remote = getattr(args, "remote", None) is not None
        wrong = [name for name in (LOCAL_ONLY if remote else REMOTE_ONLY) if vars(args)[name]]
        if wrong:
            parser.error(f"{_flags(wrong)}: {MIXED[remote]}")
        if remote:
            if not args.tool:
                parser.error("the following arguments are required: TOOL (with --server)")
            return run_remote(args)
        missing = [name for name in ("source", "call") if vars(args)[name] is None]
        if missing:
            parser.error(f"the following arguments are required: {_flags(missing)}")
        return run(args)

    return dispatch


def _flags(names: list[str]) -> str:
    shown = {"tool": "TOOL", "arguments": "--args"}
    return ", ".join(shown.get(name, f"--{name}") for name in names)


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


def run_remote(args: argparse.Namespace) -> int:
    """Call a tool of the key's tenant on the server; print the contract's JSON object."""
    if args.timeout_ms < 0 or args.memory_mb < 0 or (args.version or 0) < 0:
        print("latm exec: limits and versions must not be negative", file=sys.stderr)
        return USAGE_ERROR
    try:
        arguments = json.loads(args.arguments) if args.arguments else {}
    except json.JSONDecodeError as exc:
        print(f"latm exec: --args is not JSON: {exc}", file=sys.stderr)
        return USAGE_ERROR
    if not isinstance(arguments, dict):
        print("latm exec: --args must be a JSON object of keyword arguments", file=sys.stderr)
        return USAGE_ERROR
    try:
        result = asyncio.run(_execute_remote(args, arguments))
    except LatmError as exc:
        print(f"latm exec: {exc}", file=sys.stderr)
        return USAGE_ERROR if isinstance(exc, InvalidRequest) else 1
    print(result.to_json())
    return 0 if result.status is Status.OK else 1


async def _execute_remote(args: argparse.Namespace, arguments: dict[str, Any]) -> ExecResult:
    from orchestrator.cli._remote_session import RemoteSession

    async with RemoteSession.open(args.remote, args) as session:
        return await session.execute(
            args.tool, arguments, args.version or 0, args.timeout_ms, args.memory_mb
        )
