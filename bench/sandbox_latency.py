"""Warm call latency and throughput of the process sandbox backend, against its peers.

Runs one trivial tool (``double(x)``) through:

* ``sandbox``: the process backend (sandbox server child process, under bubblewrap
  where available, gRPC on a Unix socket, a fresh forked worker per call);
* ``in-process``: calling the same Python function directly (the floor);
* ``python -c``: a fresh ``python -c`` subprocess per call;
* ``smolagents``: smolagents' ``LocalPythonExecutor`` (an AST interpreter, no isolation).

For each: p50/p99 latency and calls per second, serially and with N concurrent
callers (asyncio tasks for the sandbox, a thread pool for the others). Also the
sandbox server's idle memory. Prints a table and writes JSON.

    .venv/bin/python bench/sandbox_latency.py            # full run
    .venv/bin/python bench/sandbox_latency.py --quick    # a few seconds, for tests
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import write_report  # noqa: E402 - after the path set-up

TOOL_SOURCE = "def double(x):\n    return x * 2\n"
CALL = "double(x)"
TENANT = "bench"
DEFAULT_OUT = ROOT / "bench" / "results" / "sandbox_latency.json"

# The targets.
TARGET_P50_MS = 3.0
TARGET_CALLS_PER_S = 400.0
TARGET_IDLE_RSS_MB = 60.0
TARGET_CORES = 2

# One subprocess per call: the tool, then the call on an argument from argv.
PYTHON_C_CODE = TOOL_SOURCE + "import sys\nprint(double(int(sys.argv[1])))\n"


def double(x: int) -> int:
    return x * 2


# --------------------------------------------------------------------------- stats


@dataclass
class Stats:
    """Latencies of one measured series of calls."""

    calls: int
    concurrency: int
    wall_s: float
    calls_per_s: float
    p50_ms: float
    p99_ms: float
    mean_ms: float
    min_ms: float
    max_ms: float
    failures: int
    first_failure: str = ""


@dataclass
class PeerResult:
    name: str
    description: str
    serial: Stats | None = None
    concurrent: Stats | None = None
    skipped: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def failures(self) -> int:
        return sum(s.failures for s in (self.serial, self.concurrent) if s is not None)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100), linear interpolation between closest ranks."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    low = int(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def summarize(
    latencies_s: list[float], wall_s: float, concurrency: int, failures: list[str]
) -> Stats:
    ms = [v * 1000.0 for v in latencies_s]
    calls = len(ms)
    return Stats(
        calls=calls,
        concurrency=concurrency,
        wall_s=round(wall_s, 4),
        calls_per_s=round(calls / wall_s, 1) if wall_s > 0 else float("inf"),
        p50_ms=round(percentile(ms, 50), 6),
        p99_ms=round(percentile(ms, 99), 6),
        mean_ms=round(sum(ms) / calls, 6) if calls else float("nan"),
        min_ms=round(min(ms), 6) if ms else float("nan"),
        max_ms=round(max(ms), 6) if ms else float("nan"),
        failures=len(failures),
        first_failure=failures[0] if failures else "",
    )


# ------------------------------------------------------------ synchronous peers


SyncCall = Callable[[int], Any]


def _timed_calls(fn: SyncCall, indices: range) -> tuple[list[float], list[str]]:
    """Call ``fn`` on each index, timing each call and checking its value."""
    latencies: list[float] = []
    failures: list[str] = []
    for i in indices:
        t0 = time.perf_counter()
        try:
            value = fn(i)
        except Exception as exc:
            value = exc
        latencies.append(time.perf_counter() - t0)
        if value != 2 * i:
            failures.append(f"double({i}) gave {value!r}")
    return latencies, failures


def run_serial_sync(fn: SyncCall, calls: int, start: int = 0) -> Stats:
    began = time.perf_counter()
    latencies, failures = _timed_calls(fn, range(start, start + calls))
    return summarize(latencies, time.perf_counter() - began, 1, failures)


def run_concurrent_sync(fn: SyncCall, total: int, concurrency: int, start: int = 0) -> Stats:
    """``total`` calls shared by ``concurrency`` threads, each timing its own calls."""
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()

    def worker(k: int) -> None:
        mine, bad = _timed_calls(fn, range(start + k, start + total, concurrency))
        with lock:
            latencies.extend(mine)
            failures.extend(bad)

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        began = time.perf_counter()
        for future in [pool.submit(worker, k) for k in range(concurrency)]:
            future.result()
        wall = time.perf_counter() - began
    return summarize(latencies, wall, concurrency, failures)


def bench_in_process(args: argparse.Namespace) -> PeerResult:
    result = PeerResult("in-process", "direct call of the Python function (the floor)")
    for i in range(args.warmup):
        double(i)
    result.serial = run_serial_sync(double, args.calls)
    result.concurrent = run_concurrent_sync(double, args.concurrent_calls, args.concurrency)
    return result


def python_c_call(i: int) -> int:
    done = subprocess.run(
        [sys.executable, "-c", PYTHON_C_CODE, str(i)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return int(done.stdout.strip())


def bench_python_c(args: argparse.Namespace) -> PeerResult:
    result = PeerResult(
        "python -c",
        f"a fresh `{Path(sys.executable).name} -c` subprocess per call (no isolation)",
    )
    for i in range(min(args.warmup, 5)):
        python_c_call(i)
    result.serial = run_serial_sync(python_c_call, args.subprocess_calls)
    result.concurrent = run_concurrent_sync(python_c_call, args.subprocess_calls, args.concurrency)
    return result


def bench_smolagents(args: argparse.Namespace) -> PeerResult:
    result = PeerResult(
        "smolagents",
        "smolagents LocalPythonExecutor, default settings (AST interpreter, in-process)",
    )
    try:
        import smolagents
        from smolagents.local_python_executor import LocalPythonExecutor
    except ImportError as exc:
        result.skipped = f"smolagents is not installed ({exc}); pip install smolagents"
        return result
    result.extra["version"] = getattr(smolagents, "__version__", "unknown")

    def make_executor() -> Any:
        executor = LocalPythonExecutor(additional_authorized_imports=[])
        executor.send_tools({})
        executor(TOOL_SOURCE)  # define the tool once, as the sandbox caches it
        return executor

    local = threading.local()

    def call(i: int) -> Any:
        # One executor per thread: an executor's state (variables) is not thread-safe.
        executor = getattr(local, "executor", None)
        if executor is None:
            executor = local.executor = make_executor()
        executor.send_variables({"x": i})
        return executor(CALL).output

    try:
        for i in range(args.warmup):
            call(i)
    except Exception as exc:
        result.skipped = f"LocalPythonExecutor failed: {type(exc).__name__}: {exc}"
        return result
    result.extra["timeout_seconds"] = local.executor.timeout_seconds
    result.serial = run_serial_sync(call, args.calls)
    result.concurrent = run_concurrent_sync(call, args.concurrent_calls, args.concurrency)
    return result


# ---------------------------------------------------------------- sandbox peer


AsyncCall = Callable[[int], Awaitable[tuple[Any, str, float]]]


async def _timed_calls_async(
    fn: AsyncCall,
    indices: range,
    latencies: list[float],
    worker_ms: list[float],
    failures: list[str],
) -> None:
    """Await ``fn`` on each index, recording latency, worker wall time and wrong values.
    Concurrent callers share the lists: they run on one event loop."""
    for i in indices:
        t0 = time.perf_counter()
        value, problem, wall_ms = await fn(i)
        latencies.append(time.perf_counter() - t0)
        worker_ms.append(wall_ms)
        if problem or value != 2 * i:
            failures.append(problem or f"double({i}) gave {value!r}")


async def run_serial_async(fn: AsyncCall, calls: int, start: int = 0) -> tuple[Stats, list[float]]:
    latencies: list[float] = []
    worker_ms: list[float] = []
    failures: list[str] = []
    began = time.perf_counter()
    await _timed_calls_async(fn, range(start, start + calls), latencies, worker_ms, failures)
    return summarize(latencies, time.perf_counter() - began, 1, failures), worker_ms


async def run_concurrent_async(
    fn: AsyncCall, total: int, concurrency: int, start: int = 0
) -> tuple[Stats, list[float]]:
    latencies: list[float] = []
    worker_ms: list[float] = []
    failures: list[str] = []
    began = time.perf_counter()
    await asyncio.gather(
        *(
            _timed_calls_async(
                fn, range(start + k, start + total, concurrency), latencies, worker_ms, failures
            )
            for k in range(concurrency)
        )
    )
    wall = time.perf_counter() - began
    return summarize(latencies, wall, concurrency, failures), worker_ms


def _read_proc(pid: int, name: str) -> str:
    try:
        return Path(f"/proc/{pid}/{name}").read_text(errors="replace")
    except OSError:
        return ""


def _ppid_map() -> dict[int, int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        stat = _read_proc(int(entry.name), "stat")
        if not stat:
            continue
        # Fields after the command name, which is in parentheses and may hold spaces.
        rest = stat[stat.rfind(")") + 2 :].split()
        if len(rest) > 1:
            parents[int(entry.name)] = int(rest[1])
    return parents


def _kb_field(text: str, key: str) -> int:
    for line in text.splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def process_tree_memory(root: int) -> dict[str, Any]:
    """VmRSS (and PSS, which shares copy-on-write pages fairly) of ``root`` and descendants."""
    parents = _ppid_map()
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    order: list[tuple[int, int]] = []  # (pid, depth)
    stack = [(root, 0)]
    while stack:
        pid, depth = stack.pop()
        order.append((pid, depth))
        stack.extend((c, depth + 1) for c in sorted(children.get(pid, []), reverse=True))
    processes: list[dict[str, Any]] = []
    for pid, depth in order:
        status = _read_proc(pid, "status")
        if not status:
            continue
        cmdline = _read_proc(pid, "cmdline").replace("\0", " ").strip()
        processes.append(
            {
                "pid": pid,
                "depth": depth,
                "cmdline": cmdline[:160],
                "rss_kb": _kb_field(status, "VmRSS"),
                "pss_kb": _kb_field(_read_proc(pid, "smaps_rollup"), "Pss"),
            }
        )
    servers = [p for p in processes if " -m sandbox" in p["cmdline"]]
    server = servers[0] if servers else None
    rss_kb = sum(p["rss_kb"] for p in processes)
    pss_kb = sum(p["pss_kb"] for p in processes)
    return {
        "root_pid": root,
        "processes": processes,
        "total_rss_mb": round(rss_kb / 1024, 1),
        "total_pss_mb": round(pss_kb / 1024, 1) if pss_kb else None,
        "server_pid": server["pid"] if server else None,
        "server_rss_mb": round(server["rss_kb"] / 1024, 1) if server else None,
        "server_pss_mb": round(server["pss_kb"] / 1024, 1) if server and server["pss_kb"] else None,
    }


async def bench_sandbox_async(args: argparse.Namespace) -> PeerResult:
    from orchestrator.sandboxes import ExecRequest, Status
    from orchestrator.sandboxes.process import ProcessBackend

    backend = ProcessBackend(isolation=args.isolation)
    label = backend.isolation[0]
    result = PeerResult(
        "sandbox",
        f"process backend ({label}): gRPC on a Unix socket, a fresh forked worker per call",
    )
    result.extra["isolation"] = label
    try:
        t0 = time.perf_counter()
        await backend.acquire(TENANT)
        result.extra["server_start_ms"] = round((time.perf_counter() - t0) * 1000, 1)

        async def call(i: int) -> tuple[Any, str, float]:
            reply = await backend.execute(
                TENANT, ExecRequest(source=TOOL_SOURCE, call=CALL, args={"x": i})
            )
            if reply.status is not Status.OK:
                problem = f"double({i}): {reply.status.value}"
                if reply.error is not None:
                    problem += f" {reply.error.type}: {reply.error.message}"
                return None, problem, reply.usage.wall_ms
            return reply.value, "", reply.usage.wall_ms

        # Warm-up: the first call loads (and caches) the tool; a concurrent burst
        # gets the spare workers going.
        t0 = time.perf_counter()
        first, problem, _ = await call(0)
        result.extra["first_call_ms"] = round((time.perf_counter() - t0) * 1000, 2)
        if problem or first != 0:
            result.extra["first_call_problem"] = problem or f"double(0) gave {first!r}"
        await run_serial_async(call, args.warmup)
        await run_concurrent_async(call, 2 * args.concurrency, args.concurrency)

        await asyncio.sleep(args.idle_s)  # idle: let spare workers be re-forked
        pid = backend.server_pid(TENANT)
        if pid is not None:
            result.extra["idle_memory"] = process_tree_memory(pid)

        result.serial, serial_worker = await run_serial_async(call, args.calls)
        result.concurrent, conc_worker = await run_concurrent_async(
            call, args.concurrent_calls, args.concurrency
        )
        result.extra["worker_wall_ms_p50_serial"] = round(percentile(serial_worker, 50), 3)
        result.extra["worker_wall_ms_p50_concurrent"] = round(percentile(conc_worker, 50), 3)
        if pid is not None:
            await asyncio.sleep(args.idle_s)
            after = process_tree_memory(pid)
            result.extra["after_load_memory"] = {
                k: after[k] for k in ("total_rss_mb", "total_pss_mb", "server_rss_mb")
            }
    finally:
        await backend.close()
    return result


# ------------------------------------------------------------------ reporting


def machine_info() -> dict[str, Any]:
    cpu_model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": os.cpu_count(),
        "nproc_usable": len(os.sched_getaffinity(0)),
        "loadavg_at_end": [round(v, 2) for v in os.getloadavg()],
        "cpu_model": cpu_model,
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "platform": platform.platform(),
    }


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return round(a / b, 2)


def build_report(
    args: argparse.Namespace, peers: list[PeerResult], started: dt.datetime
) -> dict[str, Any]:
    by_name = {p.name: p for p in peers}

    def get(name: str, series: str, metric: str) -> float | None:
        peer = by_name.get(name)
        stats = getattr(peer, series, None) if peer else None
        return getattr(stats, metric) if stats is not None else None

    sandbox = by_name["sandbox"]
    idle = sandbox.extra.get("idle_memory", {})
    p50 = get("sandbox", "serial", "p50_ms")
    cps = get("sandbox", "concurrent", "calls_per_s")
    tree_pss = idle.get("total_pss_mb")
    info = machine_info()
    targets = {
        "warm_p50_ms": {
            "target": f"<= {TARGET_P50_MS}",
            "measured": p50,
            "pass": p50 is not None and p50 <= TARGET_P50_MS,
            "note": "sandbox serial p50, end to end (client, gRPC, fork of a worker)",
        },
        "calls_per_s_concurrent": {
            "target": f">= {TARGET_CALLS_PER_S} with {args.concurrency} callers "
            f"on {TARGET_CORES} cores",
            "measured": cps,
            "pass": cps is not None and cps >= TARGET_CALLS_PER_S,
            "note": f"measured on {info['nproc_usable']} usable cores"
            + ("" if info["nproc_usable"] == TARGET_CORES else " (not the target's 2)"),
        },
        "idle_rss_mb": {
            "target": f"<= {TARGET_IDLE_RSS_MB}",
            "measured": tree_pss,
            "pass": tree_pss is not None and tree_pss <= TARGET_IDLE_RSS_MB,
            "note": "whole server tree (wrapper, server, template, spares), PSS so that "
            "copy-on-write pages shared by forked processes count once; see idle_memory "
            "for the plain RSS sum and the server process alone",
            "also": {
                "tree_rss_sum_mb": idle.get("total_rss_mb"),
                "tree_rss_sum_pass": idle.get("total_rss_mb") is not None
                and idle["total_rss_mb"] <= TARGET_IDLE_RSS_MB,
                "server_process_rss_mb": idle.get("server_rss_mb"),
                "server_process_rss_pass": idle.get("server_rss_mb") is not None
                and idle["server_rss_mb"] <= TARGET_IDLE_RSS_MB,
            },
        },
    }
    s50 = get("sandbox", "serial", "p50_ms")
    ratios = {
        "sandbox_p50_over_in_process_p50": ratio(s50, get("in-process", "serial", "p50_ms")),
        "sandbox_p50_over_smolagents_p50": ratio(s50, get("smolagents", "serial", "p50_ms")),
        "python_c_p50_over_sandbox_p50": ratio(get("python -c", "serial", "p50_ms"), s50),
        "sandbox_cps_over_python_c_cps_concurrent": ratio(
            cps, get("python -c", "concurrent", "calls_per_s")
        ),
        "smolagents_cps_over_sandbox_cps_concurrent": ratio(
            get("smolagents", "concurrent", "calls_per_s"), cps
        ),
        "in_process_cps_over_sandbox_cps_concurrent": ratio(
            get("in-process", "concurrent", "calls_per_s"), cps
        ),
    }
    return {
        "benchmark": "sandbox_latency",
        "timestamp": started.isoformat(timespec="seconds"),
        "duration_s": round((dt.datetime.now(dt.UTC) - started).total_seconds(), 1),
        "machine": info,
        "isolation": sandbox.extra.get("isolation"),
        "tool": {"source": TOOL_SOURCE, "call": CALL, "args": "{'x': i}"},
        "settings": {
            "quick": args.quick,
            "warmup": args.warmup,
            "calls": args.calls,
            "concurrent_calls": args.concurrent_calls,
            "concurrency": args.concurrency,
            "subprocess_calls": args.subprocess_calls,
        },
        "peers": {p.name: asdict(p) for p in peers},
        "failures": sum(p.failures for p in peers),
        "ratios": ratios,
        "targets": targets,
    }


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _fmt_ms(value: float | None) -> str:
    """Milliseconds to three significant digits (the in-process floor is ~0.0001 ms)."""
    return "-" if value is None else f"{value:.3g}"


def print_report(console: Console, report: dict[str, Any], out: Path) -> None:
    machine = report["machine"]
    console.print(
        f"[bold]sandbox latency[/bold]  isolation={report['isolation']}  "
        f"cores={machine['nproc_usable']}  cpu={machine['cpu_model'] or '?'}  "
        f"python={machine['python']}"
    )
    table = Table(show_lines=False)
    for column in ("peer", "calls", "p50 ms", "p99 ms", "calls/s"):
        table.add_column(column, justify="left" if column == "peer" else "right")
    conc = report["settings"]["concurrency"]
    for column in (f"p50 ms x{conc}", f"p99 ms x{conc}", f"calls/s x{conc}", "failures"):
        table.add_column(column, justify="right")
    for name, peer in report["peers"].items():
        if peer["skipped"]:
            table.add_row(name, "skipped", peer["skipped"][:60])
            continue
        serial, concurrent = peer["serial"], peer["concurrent"]
        table.add_row(
            name,
            str(serial["calls"]),
            _fmt_ms(serial["p50_ms"]),
            _fmt_ms(serial["p99_ms"]),
            _fmt(serial["calls_per_s"], 0),
            _fmt_ms(concurrent["p50_ms"]),
            _fmt_ms(concurrent["p99_ms"]),
            _fmt(concurrent["calls_per_s"], 0),
            str(serial["failures"] + concurrent["failures"]),
        )
    console.print(table)

    sandbox = report["peers"]["sandbox"]["extra"]
    idle = sandbox.get("idle_memory")
    if idle:
        mem = Table(title="sandbox server tree, idle after warm-up")
        for column in ("pid", "RSS MB", "PSS MB", "command"):
            mem.add_column(column, justify="left" if column == "command" else "right")
        for proc in idle["processes"]:
            mem.add_row(
                str(proc["pid"]),
                f"{proc['rss_kb'] / 1024:.1f}",
                f"{proc['pss_kb'] / 1024:.1f}" if proc["pss_kb"] else "-",
                "  " * proc["depth"] + proc["cmdline"][:70],
            )
        mem.add_row("total", _fmt(idle["total_rss_mb"], 1), _fmt(idle["total_pss_mb"], 1), "")
        console.print(mem)
    console.print(
        f"server start {sandbox.get('server_start_ms', '-')} ms; first call "
        f"{sandbox.get('first_call_ms', '-')} ms; worker wall p50 "
        f"{sandbox.get('worker_wall_ms_p50_serial', '-')} ms"
    )
    ratios = ", ".join(f"{k}={v}" for k, v in report["ratios"].items() if v is not None)
    console.print(f"ratios: {ratios}")
    for name, target in report["targets"].items():
        mark = "[green]PASS[/green]" if target["pass"] else "[red]FAIL[/red]"
        console.print(f"{mark} {name}: {target['measured']} (target {target['target']})")
    if report["failures"]:
        console.print(f"[red]{report['failures']} call(s) returned a wrong result or failed[/red]")
    console.print(f"wrote {out}")


# ------------------------------------------------------------------------ main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=None, help="serial calls (default 500)")
    parser.add_argument(
        "--concurrent-calls",
        type=int,
        default=None,
        help="total calls shared by the concurrent callers (default 1000)",
    )
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent callers")
    parser.add_argument(
        "--subprocess-calls",
        type=int,
        default=None,
        help="calls for the python -c peer, serial and concurrent (default 50)",
    )
    parser.add_argument("--warmup", type=int, default=None, help="warm-up calls (default 50)")
    parser.add_argument(
        "--isolation",
        default="auto",
        choices=["auto", "bwrap", "unshare", "none"],
        help="process backend isolation",
    )
    parser.add_argument("--quick", action="store_true", help="a small run (a few seconds)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON output path")
    args = parser.parse_args(argv)
    defaults = (
        {"calls": 50, "concurrent_calls": 80, "subprocess_calls": 8, "warmup": 10}
        if args.quick
        else {"calls": 500, "concurrent_calls": 1000, "subprocess_calls": 50, "warmup": 50}
    )
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.idle_s = 0.3 if args.quick else 1.0
    for key in ("calls", "concurrent_calls", "subprocess_calls", "concurrency"):
        if getattr(args, key) < 1:
            parser.error(f"--{key.replace('_', '-')} must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console()
    if not console.is_terminal:
        console = Console(width=132)  # files and pipes: keep the tables on one line each
    started = dt.datetime.now(dt.UTC)
    peers: list[PeerResult] = []
    # Plain progress lines, no spinner: a spinner's thread would compete for the GIL.
    console.print("running: sandbox (process backend)")
    peers.append(asyncio.run(bench_sandbox_async(args)))
    for label, bench in (
        ("in-process", bench_in_process),
        ("python -c", bench_python_c),
        ("smolagents", bench_smolagents),
    ):
        console.print(f"running: {label}")
        peers.append(bench(args))
    report = build_report(args, peers, started)
    write_report(report, args.out)
    print_report(console, report, args.out)
    return 1 if report["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
