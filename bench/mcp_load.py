"""MCP ``tools/call`` next to gRPC ``ExecuteTool``: the same tool on the same server, in one run.

One ``latm serve`` subprocess (a temporary SQLite registry, one tenant with quotas well
above the load, the docker backend under runc by default) serves both the gRPC API and MCP
over Streamable HTTP (``LATM_HTTP_LISTEN``) on loopback. For each number of concurrent
clients (``--clients``, 1 and 8 by default) the two transports alternate round by round,
each client calling ``add(a, b)`` back to back for ``--seconds``:

* ``grpc``: each client its own :class:`~orchestrator.client.AsyncClient` and channel,
  calling ``ExecuteTool``;
* ``mcp``: each client its own session of the official Python SDK's ``Client`` over
  ``streamable_http_client`` with a bearer key, calling ``tools/call``.

Both load generators run in this one process (so they cost the machine alike, and that
cost is reported: the load generator's CPU per call). Medians over rounds are quoted, with
the ratio MCP / gRPC. Writes JSON (``bench/results/mcp_load.json``).

    .venv/bin/python bench/mcp_load.py                     # 1 and 8 clients, 3 rounds of 15 s
    .venv/bin/python bench/mcp_load.py --quick             # a few seconds, for tests
    .venv/bin/python bench/mcp_load.py --backend process   # the process backend instead
    .venv/bin/python bench/mcp_load.py --profile-out s.prof  # the server under cProfile
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import os
import statistics
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import write_report  # noqa: E402 - after the path set-up
from bench._server import Server, create_tenant, run_in_workdir  # noqa: E402
from bench.api_load import (  # noqa: E402
    TOOL,
    Call,
    Series,
    drive,
    executing,
    import_tool,
    tenant_quotas,
)
from bench.sandbox_latency import machine_info  # noqa: E402

DEFAULT_OUT = ROOT / "bench" / "results" / "mcp_load.json"
TENANT = "bench"
TRANSPORTS = ("grpc", "mcp")
MCP_READY = "latm: serving MCP on "
KEYS = ("calls_per_s", "p50_ms", "p95_ms", "p99_ms", "max_ms")


def server_settings(args: argparse.Namespace, workdir: Path) -> dict[str, str]:
    """The ``LATM_*`` environment of the server under test (recorded in the report)."""
    idle = workdir / "no-model.json"  # scripted models: none is loaded, none is asked
    settings = {
        "LATM_DATABASE_URL": f"sqlite:///{workdir / 'registry.db'}",
        "LATM_BACKEND": args.backend,
        "LATM_HTTP_LISTEN": "127.0.0.1:0",
        "LATM_USER_MODEL": f"scripted:{idle}",
        "LATM_MAKER_MODEL": f"scripted:{idle}",
        "LATM_LOG_LEVEL": args.log_level,
        "LATM_QUOTA_REQUESTS_PER_MINUTE": "10000000",
        "LATM_QUOTA_CONCURRENT_EXECUTIONS": str(max(64, 4 * max(args.clients))),
    }
    if args.backend == "docker":
        settings |= {
            "LATM_DOCKER_RUNTIME": "runc",
            "LATM_POOL_MIN_IDLE": str(args.pool_size),
            "LATM_POOL_MAX_SIZE": str(args.pool_size),
            "LATM_POOL_MAX_USES": "1000000",
        }
    return settings


def mcp_url(server: Server) -> str:
    """The ``/mcp`` URL ``latm serve`` prints on the line after its gRPC address."""
    assert server.process.stdout is not None
    line = server.process.stdout.readline()
    if not line.startswith(MCP_READY):
        raise RuntimeError(f"latm serve did not report its MCP endpoint: {line!r}")
    return line.removeprefix(MCP_READY).strip()


# ------------------------------------------------------------------- the clients


@contextlib.asynccontextmanager
async def grpc_callers(target: str, key: str, clients: int) -> AsyncIterator[list[Call]]:
    from orchestrator.client import AsyncClient

    connections = [AsyncClient(target, key, timeout_s=30.0) for _ in range(clients)]
    try:
        yield [executing(c) for c in connections]
    finally:
        await asyncio.gather(*(c.close() for c in connections))


@contextlib.asynccontextmanager
async def mcp_callers(url: str, key: str, clients: int) -> AsyncIterator[list[Call]]:
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    def caller_for(client: Client) -> Call:
        async def call(i: int, k: int) -> tuple[Any, str]:
            try:
                result = await client.call_tool(TOOL, {"a": i, "b": k})
            except Exception as exc:  # any failure of a call is counted
                return None, type(exc).__name__
            if result.is_error:
                return None, "tool_error"
            return (result.structured_content or {}).get("result"), ""

        return call

    async with contextlib.AsyncExitStack() as stack:
        callers = []
        for _ in range(clients):
            http = await stack.enter_async_context(
                httpx2.AsyncClient(
                    headers={"Authorization": f"Bearer {key}"}, timeout=httpx2.Timeout(30.0)
                )
            )
            client = await stack.enter_async_context(
                Client(streamable_http_client(url, http_client=http))
            )
            callers.append(caller_for(client))
        yield callers


def callers_of(transport: str, args: argparse.Namespace, clients: int) -> Any:
    if transport == "grpc":
        return grpc_callers(args.target, args.key, clients)
    return mcp_callers(args.url, args.key, clients)


# ------------------------------------------------------------------- the run


def cpu_s(pid: int) -> float:
    """CPU seconds ``pid`` has used (user + system, its own threads)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rfind(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def timed_round(
    transport: str, args: argparse.Namespace, clients: int, server_pid: int
) -> dict[str, Any]:
    """Open ``clients`` connections, one call each, then ``args.seconds`` back to back."""
    async with callers_of(transport, args, clients) as callers:
        await asyncio.gather(*(callers[k](0, k) for k in range(clients)))  # connect, warm

        async def call(i: int, k: int) -> tuple[Any, str]:
            return await callers[k](i, k)

        server_before, me_before = cpu_s(server_pid), time.process_time()
        start = time.monotonic() + 0.1
        series: Series = await drive(call, clients, start, start + args.seconds)
        server_spent, me_spent = cpu_s(server_pid) - server_before, time.process_time() - me_before
    summary = series.summary()
    calls = max(1, summary["calls"])
    summary["server_cpu_ms_per_call"] = round(1000 * server_spent / calls, 3)
    summary["load_generator_cpu_ms_per_call"] = round(1000 * me_spent / calls, 3)
    return summary


async def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    (workdir / "no-model.json").write_text("[]")
    env = {**os.environ, **server_settings(args, workdir)}
    args.key = create_tenant(env, TENANT, tenant_quotas(max(args.clients)))
    profile_out = args.profile_out.resolve() if args.profile_out else None
    server = Server(env, workdir / "server.log", profile_out)
    rounds: dict[str, list[dict[str, Any]]] = {
        f"{transport}_c{clients}": [] for clients in args.clients for transport in TRANSPORTS
    }
    try:
        args.url, args.target = mcp_url(server), server.address
        await import_tool(args.target, args.key)
        for clients in args.clients:  # warm-up: the sandboxes, the caches, both paths
            for transport in TRANSPORTS:
                async with callers_of(transport, args, clients) as callers:
                    start = time.monotonic()
                    await drive(lambda i, k: callers[k](i, k), clients, start, start + args.warmup)
        for n in range(args.rounds):
            for clients in args.clients:
                order = TRANSPORTS if n % 2 == 0 else TRANSPORTS[::-1]
                for transport in order:
                    measured = await timed_round(transport, args, clients, server.pid)
                    rounds[f"{transport}_c{clients}"].append(measured)
    finally:
        exit_code = server.stop()
    return {
        "server_settings": server_settings(args, Path("WORKDIR")),
        "server_exit_code": exit_code,
        "rounds": rounds,
    }


def build_report(args: argparse.Namespace, result: dict[str, Any]) -> dict[str, Any]:
    medians: dict[str, dict[str, float]] = {}
    for name, rounds in result["rounds"].items():
        keys = (*KEYS, "server_cpu_ms_per_call", "load_generator_cpu_ms_per_call")
        medians[name] = {k: round(statistics.median(r[k] for r in rounds), 3) for k in keys}
    ratios = {}
    for clients in args.clients:
        grpc, mcp = medians[f"grpc_c{clients}"], medians[f"mcp_c{clients}"]
        ratios[f"c{clients}"] = {
            "calls_per_s": round(mcp["calls_per_s"] / grpc["calls_per_s"], 3),
            "p50": round(mcp["p50_ms"] / grpc["p50_ms"], 3),
            "p99": round(mcp["p99_ms"] / grpc["p99_ms"], 3),
            "server_cpu_per_call": round(
                mcp["server_cpu_ms_per_call"] / grpc["server_cpu_ms_per_call"], 3
            ),
        }
    errors = {name: sum(r["errors"] for r in rounds) for name, rounds in result["rounds"].items()}
    return {
        "benchmark": "mcp_load",
        "started_at": args.started_at,
        "tool": "add(a, b)",
        "config": {
            "clients": args.clients,
            "seconds": args.seconds,
            "warmup_s": args.warmup,
            "rounds": args.rounds,
            "quick": args.quick,
            "backend": args.backend,
            "runtime": "runc" if args.backend == "docker" else None,
            "pool_size": args.pool_size if args.backend == "docker" else None,
            "transport": "loopback TCP, plaintext; gRPC and MCP (Streamable HTTP) on one server",
            "mcp_client": "the official Python SDK's Client over streamable_http_client",
            "load_generator": "this one process, one event loop, for both transports",
            "server_log_level": args.log_level,
            "profiled": bool(args.profile_out),
        },
        "machine": machine_info(),
        "medians": medians,
        "mcp_over_grpc": ratios,
        "errors": errors,
        **result,
    }


def print_summary(report: dict[str, Any], out: Path) -> None:
    config = report["config"]
    print(
        f"mcp_load: clients {config['clients']}, {config['rounds']} x {config['seconds']} s, "
        f"backend {config['backend']}"
    )
    for name, m in report["medians"].items():
        print(
            f"  {name:<8} {m['calls_per_s']:>7.1f} calls/s  p50 {m['p50_ms']:.2f} ms  "
            f"p99 {m['p99_ms']:.2f}  errors {report['errors'][name]}  server cpu/call "
            f"{m['server_cpu_ms_per_call']:.2f} ms  client cpu/call "
            f"{m['load_generator_cpu_ms_per_call']:.2f} ms"
        )
    for level, ratio in report["mcp_over_grpc"].items():
        print(f"  mcp/grpc {level}: {ratio}")
    print(f"  wrote {out}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--clients", type=int, nargs="+", default=[1, 8], help="concurrent clients, each level"
    )
    parser.add_argument("--seconds", type=float, default=15.0, help="length of a round")
    parser.add_argument("--warmup", type=float, default=3.0, help="warm-up seconds per series")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the transports alternate")
    parser.add_argument("--backend", choices=("docker", "process"), default="docker")
    parser.add_argument("--pool-size", type=int, default=4, help="warm containers (docker)")
    parser.add_argument("--log-level", default="INFO", help="the server's LATM_LOG_LEVEL")
    parser.add_argument("--profile-out", type=Path, default=None, help="cProfile the server")
    parser.add_argument("--quick", action="store_true", help="a few seconds, for tests")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.warmup, args.rounds = 1.5, 0.5, 1
    args.started_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = run_in_workdir("latm-mcp-load-", lambda workdir: run(args, workdir))
    report = build_report(args, result)
    write_report(report, args.out)
    print_summary(report, args.out)
    return 0 if not any(report["errors"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
