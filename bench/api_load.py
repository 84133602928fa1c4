"""Load on the public gRPC API: N concurrent clients calling ``ExecuteTool`` for a fixed time.

One trivial tool (``add(a, b)``) on the docker backend (runc), in one run:

* ``api``: ``latm serve`` as a subprocess on loopback TCP (a temporary SQLite registry, one
  tenant with quotas well above the load), driven by N clients (each its own
  :class:`~orchestrator.client.AsyncClient` and channel) spread over a few client processes,
  so the load generator does not share the server's event loop;
* ``direct``: the same call straight through :meth:`DockerBackend.execute` in this process
  (no API layer), with the same pool settings and the same number of concurrent callers.

The two alternate round by round (the machine is shared: medians over rounds are quoted),
so the API's overhead shows as a ratio. Also reported: the server's RSS (``VmRSS`` of the
``latm serve`` process only; its containers are not counted) after warm-up and after the load,
and the server's CPU time per call. Prints a summary and writes JSON
(``bench/results/api_load.json``).

    .venv/bin/python bench/api_load.py                      # 16 clients, 3 rounds of 30 s
    .venv/bin/python bench/api_load.py --quick              # a few seconds, for tests
    .venv/bin/python bench/api_load.py --profile-out s.prof # the server under cProfile
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import multiprocessing as mp
import os
import statistics
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import growth_pct, write_report  # noqa: E402 - after the path set-up
from bench._server import Server, create_tenant, run_in_workdir  # noqa: E402
from bench.sandbox_latency import machine_info, percentile  # noqa: E402
from tests.support.cards import card_json  # noqa: E402

if TYPE_CHECKING:
    from orchestrator.client import AsyncClient

DEFAULT_OUT = ROOT / "bench" / "results" / "api_load.json"
TENANT = "bench"
TOOL = "add"
TOOL_SOURCE = "def add(a, b):\n    return a + b\n"
# The requirement's targets.
TARGET_CALLS_PER_S = 300.0
TARGET_P99_MS = 50.0
TARGET_RSS_GROWTH_PCT = 10.0
TARGET_CORES = 2

# Each round runs these, in this order: back to back (the peak rate), then paced at
# ``--rate`` calls/s (latency at the target load); through the API and straight to the backend.
SERIES = ("api", "direct", "api_paced", "direct_paced")

# One call: (value or None, error kind or "") for arguments (a, b).
Call = Callable[[int, int], Awaitable[tuple[Any, str]]]


# --------------------------------------------------------------------------- series


@dataclass
class Series:
    """The calls of one timed round: latencies and errors by kind."""

    latencies_ms: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    first_errors: list[str] = field(default_factory=list)
    wall_s: float = 0.0

    def merge(self, other: Series) -> None:
        self.latencies_ms += other.latencies_ms
        self.errors.update(other.errors)
        self.first_errors += other.first_errors[: max(0, 5 - len(self.first_errors))]
        self.wall_s = max(self.wall_s, other.wall_s)

    def summary(self) -> dict[str, Any]:
        ms = self.latencies_ms
        calls = len(ms)
        return {
            "calls": calls,
            "wall_s": round(self.wall_s, 3),
            "calls_per_s": round(calls / self.wall_s, 1) if self.wall_s else 0.0,
            "p50_ms": round(percentile(ms, 50), 3),
            "p95_ms": round(percentile(ms, 95), 3),
            "p99_ms": round(percentile(ms, 99), 3),
            "max_ms": round(max(ms), 3) if ms else float("nan"),
            "mean_ms": round(sum(ms) / calls, 3) if calls else float("nan"),
            "errors": sum(self.errors.values()),
            "errors_by_kind": dict(self.errors),
            "first_errors": self.first_errors,
        }


async def drive(
    call: Call,
    clients: int,
    start_at: float,
    stop_at: float,
    first: int = 0,
    pace: tuple[float, int] | None = None,
) -> Series:
    """``clients`` callers (numbered from ``first``) from ``start_at`` until ``stop_at``;
    caller ``k``'s i-th call is ``add(i, k)``.

    Without ``pace`` each caller calls back to back (a closed loop: the peak rate).
    With ``pace = (rate, all_clients)`` the callers of every client process together
    offer ``rate`` calls/s on a fixed schedule: caller ``k`` calls at ``start_at + k / rate
    + i * all_clients / rate``, and a call's latency counts from its scheduled time, so a
    call that starts late because the one before was slow counts its wait too.
    """
    series = Series()

    async def caller(k: int) -> None:
        await asyncio.sleep(max(0.0, start_at - time.monotonic()))
        i = 0
        while time.monotonic() < stop_at:
            i += 1
            began = time.perf_counter()
            if pace is not None:
                rate, all_clients = pace
                scheduled = start_at + k / rate + (i - 1) * all_clients / rate
                if scheduled >= stop_at:
                    break
                wait = scheduled - time.monotonic()
                began -= time.monotonic() - scheduled  # the same instant on the other clock
                if wait > 0:
                    await asyncio.sleep(wait)
            value, problem = await call(i, k)
            series.latencies_ms.append((time.perf_counter() - began) * 1000)
            if not problem and value != i + k:
                problem = "wrong_value"
            if problem:
                series.errors[problem] += 1
                if len(series.first_errors) < 5:
                    series.first_errors.append(f"add({i}, {k}): {problem}")

    await asyncio.gather(*(caller(k) for k in range(first, first + clients)))
    # Paced, the rate is the calls started on schedule within the window, over the window:
    # a caller that falls behind starts fewer, and the wait of one that starts late is in
    # its latency. (Over the window and the last calls' drain, a rate kept exactly would
    # read a little below the one offered.)
    series.wall_s = (stop_at if pace else time.monotonic()) - start_at
    return series


# ------------------------------------------------------------- the API's clients


@dataclass(frozen=True)
class ClientShare:
    """One client process's part of a round: ``clients`` callers, numbered from
    ``offset``, against ``target``; and what it shares with the parent (queues, the
    start event and the round's time window)."""

    target: str
    key: str
    clients: int
    offset: int
    pace: tuple[float, int] | None
    ready: Any
    go: Any
    window: Any
    out: Any


def executing(client: AsyncClient) -> Call:
    """A caller of ``add(i, k)`` through ``client``'s ``ExecuteTool``."""
    from orchestrator.errors import LatmError

    async def call(i: int, k: int) -> tuple[Any, str]:
        try:
            result = await client.execute_tool(TOOL, {"a": i, "b": k})
        except LatmError as exc:
            return None, type(exc).__name__
        return result.value, "" if result.ok else f"status_{result.status}"

    return call


async def _client_process(share: ClientShare) -> dict[str, Any]:
    from orchestrator.client import AsyncClient

    clients, offset = share.clients, share.offset
    connections = [AsyncClient(share.target, share.key, timeout_s=30.0) for _ in range(clients)]

    calls = [executing(c) for c in connections]

    async def call(i: int, k: int) -> tuple[Any, str]:
        return await calls[k - offset](i, k)

    try:
        # Connect every channel and make one call each before the clock starts.
        await asyncio.gather(*(calls[n](0, offset + n) for n in range(clients)))
        share.ready.put(os.getpid())
        await asyncio.to_thread(share.go.wait)
        start_at, stop_at = share.window[0], share.window[1]
        series = await drive(call, clients, start_at, stop_at, first=offset, pace=share.pace)
    finally:
        await asyncio.gather(*(c.close() for c in connections))
    return {
        "latencies_ms": series.latencies_ms,
        "errors": dict(series.errors),
        "first_errors": series.first_errors,
        "wall_s": series.wall_s,
    }


def client_process_main(share: ClientShare) -> None:
    """A client process: ``share.clients`` concurrent callers on one event loop."""
    try:
        share.out.put(asyncio.run(_client_process(share)))
    except BaseException as exc:  # reported to the parent, which fails the run
        share.ready.put(-1)
        share.out.put({"crash": f"{type(exc).__name__}: {exc}"})


def api_round(
    target: str, key: str, clients: int, procs: int, seconds: float, rate: float | None = None
) -> Series:
    """One timed round of ``clients`` callers spread over ``procs`` client processes:
    back to back, or together offering ``rate`` calls/s."""
    pace = (rate, clients) if rate else None
    ctx = mp.get_context("spawn")  # grpc does not survive a fork of a process using it
    ready, out, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    window = ctx.Array("d", 2)
    shares = [clients // procs + (1 if n < clients % procs else 0) for n in range(procs)]
    offsets = [sum(shares[:n]) for n in range(procs)]
    workers = [
        ctx.Process(
            target=client_process_main,
            args=(ClientShare(target, key, share, offset, pace, ready, go, window, out),),
            daemon=True,
        )
        for share, offset in zip(shares, offsets, strict=True)
        if share
    ]
    for worker in workers:
        worker.start()
    try:
        for _ in workers:
            if ready.get(timeout=120) == -1:
                raise RuntimeError(f"a client process failed: {out.get(timeout=5)}")
        start_at = time.monotonic() + 0.2
        window[0], window[1] = start_at, start_at + seconds
        go.set()
        series = Series()
        for _ in workers:
            part = out.get(timeout=seconds + 120)
            if "crash" in part:
                raise RuntimeError(f"a client process failed: {part['crash']}")
            series.merge(
                Series(part["latencies_ms"], Counter(part["errors"]), part["first_errors"],
                       part["wall_s"])
            )  # fmt: skip
        return series
    finally:
        for worker in workers:
            worker.join(timeout=10)
            if worker.is_alive():
                worker.kill()


# ------------------------------------------------------------------- the server


def tool_card() -> str:
    demo = ("2 + 3?", "ans = add(2, 3)", "5")
    return card_json(TOOL_SOURCE, TOOL, *demo, description="Add two numbers.", maker="bench")


def server_settings(args: argparse.Namespace, db: Path) -> dict[str, str]:
    """The ``LATM_*`` environment of the server under test (recorded in the report)."""
    return {
        "LATM_DATABASE_URL": f"sqlite:///{db}",
        "LATM_BACKEND": "docker",
        "LATM_DOCKER_RUNTIME": "runc",
        "LATM_POOL_MIN_IDLE": str(args.pool_size),
        "LATM_POOL_MAX_SIZE": str(args.pool_size),
        "LATM_POOL_MAX_USES": str(args.pool_max_uses),
        "LATM_LOG_LEVEL": args.log_level,
        "LATM_QUOTA_REQUESTS_PER_MINUTE": "10000000",
        "LATM_QUOTA_CONCURRENT_EXECUTIONS": str(max(64, 4 * args.clients)),
    }


def tenant_quotas(clients: int) -> dict[str, int]:
    return {"requests_per_minute": 10_000_000, "concurrent_executions": max(64, 4 * clients)}


async def import_tool(target: str, key: str) -> None:
    from orchestrator.client import AsyncClient

    async with AsyncClient(target, key) as client:
        await client.import_tool(tool_card())
        result = await client.execute_tool(TOOL, {"a": 2, "b": 3})
        if result.value != 2 + 3:
            raise RuntimeError(f"the tool answered {result!r}")


# ------------------------------------------------------------- the direct baseline


class Direct:
    """:meth:`DockerBackend.execute` in this process, same pool settings as the server."""

    def __init__(self, args: argparse.Namespace) -> None:
        from orchestrator.sandboxes.docker import DockerBackend, DockerOptions, Runtime
        from orchestrator.sandboxes.pool import PoolConfig

        size = args.pool_size
        pool = PoolConfig(min_idle=size, max_size=size, max_uses=args.pool_max_uses)
        self.backend = DockerBackend(DockerOptions(runtime=Runtime.RUNC, pool=pool))

    async def call(self, i: int, k: int) -> tuple[Any, str]:
        from orchestrator.errors import LatmError
        from orchestrator.sandboxes import ExecRequest

        request = ExecRequest(source=TOOL_SOURCE, entrypoint=TOOL, args={"a": i, "b": k})
        try:
            result = await self.backend.execute(TENANT, request)
        except LatmError as exc:
            return None, type(exc).__name__
        ok = result.status.value == "ok"
        return result.value, "" if ok else f"status_{result.status.value}"

    async def warm(self, clients: int, seconds: float) -> None:
        pool = self.backend.pool(TENANT)
        while pool.idle < pool.config.min_idle:
            await asyncio.sleep(0.05)
        start = time.monotonic()
        await drive(self.call, clients, start, start + seconds)

    async def round(self, clients: int, seconds: float, rate: float | None = None) -> Series:
        start = time.monotonic() + 0.2
        pace = (rate, clients) if rate else None
        return await drive(self.call, clients, start, start + seconds, pace=pace)


# --------------------------------------------------------------------------- the run


def cpu_busy_s() -> float:
    """Machine-wide busy CPU seconds so far (all cores), from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")


ENGINE_COMMANDS = ("dockerd", "containerd", "containerd-shim", "containerd-shim-runc-v2", "runc")


def cpu_by_group(server_pid: int) -> dict[str, float]:
    """CPU seconds so far (own and reaped children's) by the part of the system they serve.

    ``load generator`` is this process and its reaped client processes (the direct baseline's
    caller runs here too); ``containers`` are every process in a Docker cgroup, with the
    forked per-call workers their parents reaped; ``other`` (filled in by :func:`measured`)
    is everything else busy on the machine: the kernel, other users' jobs.
    """
    tick = os.sysconf("SC_CLK_TCK")
    groups = dict.fromkeys(("server", "load generator", "containers", "docker engine"), 0.0)
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cgroup = (entry / "cgroup").read_text()
        except OSError:
            continue
        comm = stat[stat.find("(") + 1 : stat.rfind(")")]
        fields = stat[stat.rfind(")") + 2 :].split()
        pid, ppid = int(entry.name), int(fields[1])
        used = sum(int(v) for v in fields[11:15]) / tick  # utime stime cutime cstime
        if pid == server_pid:
            groups["server"] += used
        elif pid == me or (ppid == me and comm.startswith("python")):
            groups["load generator"] += used
        elif "docker" in cgroup and comm not in ENGINE_COMMANDS:
            groups["containers"] += used
        elif comm in ENGINE_COMMANDS or comm.startswith("containerd-shim"):
            groups["docker engine"] += used
    return groups


def measured(
    series: Series, busy_s: float, groups_before: dict[str, float], groups_after: dict[str, float]
) -> dict[str, Any]:
    summary = series.summary()
    calls = max(1, summary["calls"])
    summary["machine_cpu_busy_pct"] = round(100 * busy_s / series.wall_s / TARGET_CORES, 1)
    summary["machine_cpu_ms_per_call"] = round(1000 * busy_s / calls, 3)
    spent = {k: max(0.0, groups_after[k] - groups_before[k]) for k in groups_before}
    spent["other"] = max(0.0, busy_s - sum(spent.values()))
    summary["cpu_ms_per_call_by_group"] = {k: round(1000 * v / calls, 3) for k, v in spent.items()}
    return summary


async def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    env = {**os.environ, **server_settings(args, workdir / "registry.db")}
    key = create_tenant(env, TENANT, tenant_quotas(args.clients))
    profile_out = args.profile_out.resolve() if args.profile_out else None
    server = Server(env, workdir / "server.log", profile_out)
    direct = Direct(args)
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in SERIES}
    try:
        await import_tool(server.address, key)
        rss_start = server.rss_kb()
        await asyncio.to_thread(
            api_round, server.address, key, args.clients, args.procs, args.warmup
        )
        await direct.warm(args.clients, args.warmup)
        await asyncio.sleep(1.0)
        rss_before = server.rss_kb()
        for _ in range(args.rounds):
            for name in SERIES:
                rate = args.rate if name.endswith("_paced") else None
                busy, groups = cpu_busy_s(), cpu_by_group(server.pid)
                if name.startswith("api"):
                    series = await asyncio.to_thread(
                        api_round,
                        server.address,
                        key,
                        args.clients,
                        args.procs,
                        args.seconds,
                        rate,
                    )
                else:
                    series = await direct.round(args.clients, args.seconds, rate)
                spent = cpu_busy_s() - busy
                rounds[name].append(measured(series, spent, groups, cpu_by_group(server.pid)))
        rss_after = server.rss_kb()
        await asyncio.sleep(2.0)
        rss_settled = server.rss_kb()
        pool_stats = direct.backend.pool(TENANT).stats
    finally:
        await direct.backend.close()
        exit_code = server.stop()
    log_lines = (workdir / "server.log").read_text(errors="replace").count("\n")
    return {
        "address": server.address,
        "server_settings": server_settings(args, Path("REGISTRY")),
        "server_exit_code": exit_code,
        "server_log_lines": log_lines,
        **{f"{name}_rounds": rounds[name] for name in SERIES},
        "direct_pool_stats": {
            "created": pool_stats.created,
            "destroyed": pool_stats.destroyed,
            "reasons": pool_stats.reasons,
        },
        "server_rss": {
            "note": "VmRSS of the latm serve process only; its containers are not counted",
            "at_start_kb": rss_start,
            "before_load_kb": rss_before,
            "after_load_kb": rss_after,
            "after_load_settled_2s_kb": rss_settled,
            "growth_pct": growth_pct(rss_before, rss_after),
        },
    }


def median_of(rounds: list[dict[str, Any]], key: str) -> float:
    return round(statistics.median(r[key] for r in rounds), 3)


def build_report(args: argparse.Namespace, result: dict[str, Any]) -> dict[str, Any]:
    keys = ("calls_per_s", "p50_ms", "p95_ms", "p99_ms", "max_ms", "machine_cpu_ms_per_call")
    medians: dict[str, dict[str, Any]] = {}
    for name in SERIES:
        rounds = result[f"{name}_rounds"]
        medians[name] = {k: median_of(rounds, k) for k in keys}
        medians[name]["cpu_ms_per_call_by_group"] = {
            group: round(statistics.median(r["cpu_ms_per_call_by_group"][group] for r in rounds), 3)
            for group in rounds[0]["cpu_ms_per_call_by_group"]
        }
    api, direct, paced = medians["api"], medians["direct"], medians["api_paced"]
    errors = {name: sum(r["errors"] for r in result[f"{name}_rounds"]) for name in SERIES}
    growth = result["server_rss"]["growth_pct"]
    return {
        "benchmark": "api_load",
        "started_at": args.started_at,
        "tool": TOOL_SOURCE,
        "config": {
            "clients": args.clients,
            "client_processes": args.procs,
            "paced_rate_calls_per_s": args.rate,
            "seconds": args.seconds,
            "warmup_s": args.warmup,
            "rounds": args.rounds,
            "quick": args.quick,
            "backend": "docker",
            "runtime": "runc",
            "transport": "loopback TCP, plaintext",
            "pool": {
                "min_idle": args.pool_size,
                "max_size": args.pool_size,
                "max_uses": args.pool_max_uses,
            },
            "server_log_level": args.log_level,
            "profiled": bool(args.profile_out),
        },
        "machine": machine_info(),
        "medians": medians,
        "errors": errors,
        "api_over_direct": {
            "calls_per_s": round(api["calls_per_s"] / direct["calls_per_s"], 3),
            "p50": round(api["p50_ms"] / direct["p50_ms"], 3),
            "p99": round(api["p99_ms"] / direct["p99_ms"], 3),
            "machine_cpu_per_call": round(
                api["machine_cpu_ms_per_call"] / direct["machine_cpu_ms_per_call"], 3
            ),
        },
        **result,
        "targets": {
            "calls_per_s": TARGET_CALLS_PER_S,
            "p99_ms": TARGET_P99_MS,
            "rss_growth_pct": TARGET_RSS_GROWTH_PCT,
            "how": (
                "calls/s: the API's peak (back to back) and the rate it kept when offered "
                f"{args.rate:g} calls/s; p99: the API's at that offered rate"
            ),
            "calls_per_s_met": api["calls_per_s"] >= TARGET_CALLS_PER_S
            and paced["calls_per_s"] >= TARGET_CALLS_PER_S,
            "p99_met": paced["p99_ms"] <= TARGET_P99_MS,
            "rss_growth_met": growth <= TARGET_RSS_GROWTH_PCT,
            "no_errors": not any(errors.values()),
        },
    }


def print_summary(report: dict[str, Any], out: Path) -> None:
    config = report["config"]
    print(
        f"api_load: {config['clients']} clients (back to back, then offering "
        f"{config['paced_rate_calls_per_s']:g} calls/s), "
        f"{config['rounds']} x {config['seconds']} s, "
        f"docker+runc, pool {config['pool']['max_size']} (max_uses {config['pool']['max_uses']})"
    )
    for name in SERIES:
        m = report["medians"][name]
        print(
            f"  {name:<12} {m['calls_per_s']:>7.1f} calls/s  p50 {m['p50_ms']:.2f} ms  "
            f"p95 {m['p95_ms']:.2f}  p99 {m['p99_ms']:.2f}  max {m['max_ms']:.1f}  "
            f"errors {report['errors'][name]}  cpu/call {m['machine_cpu_ms_per_call']:.2f} ms"
        )
        groups = m["cpu_ms_per_call_by_group"]
        print("          cpu ms/call: " + ", ".join(f"{k} {v:.2f}" for k, v in groups.items()))
    ratio, rss = report["api_over_direct"], report["server_rss"]
    print(
        f"  api/direct: calls/s x{ratio['calls_per_s']}, p50 x{ratio['p50']}, "
        f"p99 x{ratio['p99']}; server RSS {rss['before_load_kb'] / 1024:.1f} -> "
        f"{rss['after_load_kb'] / 1024:.1f} MB ({rss['growth_pct']:+.1f}%)"
    )
    met = {k: v for k, v in report["targets"].items() if k.endswith("_met") or k == "no_errors"}
    print(f"  targets: {met}")
    print(f"  wrote {out}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--clients", type=int, default=8, help="concurrent callers")
    parser.add_argument("--procs", type=int, default=2, help="client processes")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of a round")
    parser.add_argument("--warmup", type=float, default=5.0, help="warm-up seconds")
    parser.add_argument("--rounds", type=int, default=3, help="api/direct rounds, alternating")
    parser.add_argument(
        "--rate",
        type=float,
        default=TARGET_CALLS_PER_S,
        help="calls/s the paced rounds offer (all clients together)",
    )
    parser.add_argument("--pool-size", type=int, default=4, help="containers, all kept warm")
    parser.add_argument(
        "--pool-max-uses", type=int, default=1_000_000, help="calls before a container is replaced"
    )
    parser.add_argument("--log-level", default="INFO", help="the server's LATM_LOG_LEVEL")
    parser.add_argument("--profile-out", type=Path, default=None, help="cProfile the server")
    parser.add_argument("--quick", action="store_true", help="a few seconds, for tests")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.warmup, args.rounds = 2.0, 1.0, 1
    args.procs = max(1, min(args.procs, args.clients))
    args.started_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = run_in_workdir("latm-api-load-", lambda workdir: run(args, workdir))
    report = build_report(args, result)
    write_report(report, args.out)
    print_summary(report, args.out)
    return 0 if not any(report["errors"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
