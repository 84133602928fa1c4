"""The docker backend side by side with a bare ``docker run`` and with llm-sandbox.

One trivial tool (``double(x)``) and one image (``latm-sandbox:VERSION``), in one run:

* bare ``docker run --rm IMAGE true`` (runc and runsc): the engine's own floor;
* cold start (runc, runsc): container create -> first call answered;
* warm calls (runc, runsc): p50/p99 from a pooled container, one caller;
* concurrency (runc, runsc): calls per second with 8 callers over a warm pool;
* llm-sandbox (Docker backend), same image and tool: a new session per run (its
  fastest setting, ``skip_environment_setup``), and pooled sessions.

Prints a table and writes JSON (``bench/results/docker_sandbox.json``).

    .venv/bin/python bench/docker_sandbox.py            # full run, a few minutes
    .venv/bin/python bench/docker_sandbox.py --quick    # fewer rounds
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.sandbox_latency import (  # noqa: E402 - after the path set-up above
    TOOL_SOURCE,
    machine_info,
    percentile,
    run_concurrent_async,
    run_serial_async,
)
from orchestrator.images import sandbox_image_tag  # noqa: E402
from orchestrator.sandboxes import ExecRequest  # noqa: E402
from orchestrator.sandboxes.docker import (  # noqa: E402
    DockerBackend,
    DockerOptions,
    DockerSandbox,
    Runtime,
)
from orchestrator.sandboxes.pool import PoolConfig  # noqa: E402

DEFAULT_OUT = ROOT / "bench" / "results" / "docker_sandbox.json"
TENANT = "bench"
CONCURRENCY = 8
PACE_S = 0.05  # think time between calls in the paced series
# The targets.
TARGET_WARM_P50_MS = {"runc": 5.0, "runsc": 15.0}
TARGET_COLD_OVER_BARE_MS = 150.0
TARGET_SPEEDUP_OVER_LLM_SANDBOX_POOL = 20.0
LLM_SANDBOX_CODE = TOOL_SOURCE + "print(double(21))\n"


def _ms(values_s: list[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values_s]
    return {
        "n": len(ms),
        "p50_ms": round(statistics.median(ms), 3),
        "p99_ms": round(percentile(ms, 99), 3),
        "min_ms": round(min(ms), 3),
        "max_ms": round(max(ms), 3),
    }


def bare_docker_run(image: str, runtime: str, rounds: int) -> dict[str, float]:
    """``docker run --rm IMAGE true``: create, start, wait, remove."""
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        subprocess.run(
            ["docker", "run", "--rm", "--runtime", runtime, "--network", "none",
             "--entrypoint", "true", image],
            check=True, capture_output=True,
        )  # fmt: skip
        times.append(time.perf_counter() - started)
    return _ms(times)


async def cold_start(runtime: Runtime, rounds: int) -> dict[str, float]:
    """Container create -> first call answered, each in a fresh container."""
    times = []
    async with DockerBackend(
        DockerOptions(runtime=runtime, pool=PoolConfig(min_idle=0, max_size=1))
    ) as backend:
        for i in range(rounds):
            started = time.perf_counter()
            sandbox = await backend.acquire(TENANT)
            result = await sandbox.execute(
                ExecRequest(source=TOOL_SOURCE, call="double(x)", args={"x": i})
            )
            times.append(time.perf_counter() - started)
            assert result.value == 2 * i, result
            await backend.release(sandbox, faulted=True)  # destroyed: the next one is cold
    return _ms(times)


async def warm_calls(runtime: Runtime, calls: int, total_concurrent: int) -> dict[str, Any]:
    """Pooled containers: one caller, then 8 callers over a pool of 4."""
    options = DockerOptions(
        runtime=runtime,
        pool=PoolConfig(min_idle=4, max_size=4, max_uses=1_000_000),
    )
    async with DockerBackend(options) as backend:

        async def call(i: int) -> tuple[Any, str, float]:
            result = await backend.execute(
                TENANT, ExecRequest(source=TOOL_SOURCE, call="double(x)", args={"x": i})
            )
            problem = "" if result.status.value == "ok" else f"{result.status}: {result.error}"
            return result.value, problem, result.usage.wall_ms

        pool = backend.pool(TENANT)
        while pool.idle < 4:  # every container started and idle before timing
            await asyncio.sleep(0.05)
        await run_serial_async(call, 20)  # warm-up: the tool compiled in each container
        await run_concurrent_async(call, 40, CONCURRENCY)
        await asyncio.sleep(0.5)
        serial, worker = await run_serial_async(call, calls, 1000)
        concurrent, _ = await run_concurrent_async(call, total_concurrent, CONCURRENCY, 5000)
        paced = []
        for i in range(calls // 3):  # a caller that thinks between calls, as a model does
            await asyncio.sleep(PACE_S)
            started = time.perf_counter()
            value, problem, _ = await call(i)
            paced.append(time.perf_counter() - started)
            assert value == 2 * i, problem
    return {
        "serial": serial.__dict__,
        "concurrent": concurrent.__dict__,
        "paced": _ms(paced),
        "worker_wall_p50_ms": round(statistics.median(worker), 3),
    }


async def fault_run(runtime: Runtime) -> dict[str, Any]:
    """Kill a container in the middle of a call: how fast the caller hears, and the next call."""
    async with DockerBackend(
        DockerOptions(runtime=runtime, pool=PoolConfig(min_idle=1, max_size=2))
    ) as backend:
        await backend.execute(TENANT, ExecRequest(source=TOOL_SOURCE, call="double(1)"))
        sandbox = await backend.acquire(TENANT)
        assert isinstance(sandbox, DockerSandbox)
        call = asyncio.ensure_future(
            sandbox.execute(ExecRequest(source="", call="while True:\n    pass", timeout_ms=20_000))
        )
        await asyncio.sleep(0.5)
        killed = time.perf_counter()
        await asyncio.to_thread(sandbox.container.kill, "SIGKILL")
        result = await call
        heard_ms = (time.perf_counter() - killed) * 1000
        await backend.release(sandbox, result.status.is_fault)
        following = await backend.execute(TENANT, ExecRequest(source=TOOL_SOURCE, call="double(2)"))
        next_ms = (time.perf_counter() - killed) * 1000
        pool = backend.pool(TENANT)
        return {
            "status": result.status.value,
            "error": result.error.message if result.error else "",
            "result_after_kill_ms": round(heard_ms, 1),
            "call_deadline_ms": 20_000,
            "next_call_status": following.status.value,
            "next_call_value": following.value,
            "next_call_done_after_kill_ms": round(next_ms, 1),
            "killed_container_destroyed": pool.stats.reasons.get("fault", 0) == 1,
        }


def llm_sandbox_runs(image: str, rounds: int, pooled_rounds: int) -> dict[str, Any]:
    """llm-sandbox on the same image: a new session per run, and pooled sessions."""
    try:
        from llm_sandbox import SandboxSession
        from llm_sandbox.pool import PoolConfig as LlmPoolConfig
        from llm_sandbox.pool import create_pool_manager
    except ImportError:
        return {"skipped": "llm-sandbox is not installed (pip install 'latm[bench]')"}
    logging.getLogger("llm_sandbox").setLevel(logging.ERROR)
    fresh = []
    for _ in range(rounds):
        started = time.perf_counter()
        with SandboxSession(
            lang="python", image=image, skip_environment_setup=True, keep_template=True
        ) as session:
            result = session.run(LLM_SANDBOX_CODE)
        fresh.append(time.perf_counter() - started)
        assert result.stdout.strip() == "42", result
    # Its pool prepares each container once (a venv; pip cannot be upgraded offline).
    pool = create_pool_manager(
        config=LlmPoolConfig(max_pool_size=2, min_pool_size=1), lang="python", image=image
    )
    pooled = []
    with pool:
        for i in range(pooled_rounds + 2):
            started = time.perf_counter()
            with SandboxSession(pool=pool, lang="python") as session:
                result = session.run(LLM_SANDBOX_CODE)
            if i >= 2:  # the first runs include the pool's own set-up
                pooled.append(time.perf_counter() - started)
            assert result.stdout.strip() == "42", result
    return {"new_session": _ms(fresh), "pooled": _ms(pooled)}


def build_report(results: dict[str, Any], started: dt.datetime, image: str) -> dict[str, Any]:
    targets: dict[str, Any] = {}
    for runtime in ("runc", "runsc"):
        warm = results[runtime]["warm"]["serial"]["p50_ms"]
        cold = results[runtime]["cold_start"]["p50_ms"]
        bare = results[runtime]["bare_docker_run"]["p50_ms"]
        paced = results[runtime]["warm"]["paced"]["p50_ms"]
        targets[runtime] = {
            "warm_p50_ms": warm,
            "warm_paced_p50_ms": paced,
            "warm_paced_p50_met": paced <= TARGET_WARM_P50_MS[runtime],
            "warm_p50_target_ms": TARGET_WARM_P50_MS[runtime],
            "warm_p50_met": warm <= TARGET_WARM_P50_MS[runtime],
            "cold_minus_bare_ms": round(cold - bare, 1),
            "cold_minus_bare_target_ms": TARGET_COLD_OVER_BARE_MS,
            "cold_met": cold - bare <= TARGET_COLD_OVER_BARE_MS,
        }
        llm = results.get("llm_sandbox", {})
        if "pooled" in llm:
            speedup = llm["pooled"]["p50_ms"] / warm
            targets[runtime]["speedup_over_llm_sandbox_pool"] = round(speedup, 1)
            targets[runtime]["speedup_target"] = TARGET_SPEEDUP_OVER_LLM_SANDBOX_POOL
            targets[runtime]["speedup_met"] = speedup >= TARGET_SPEEDUP_OVER_LLM_SANDBOX_POOL
    return {
        "benchmark": "docker_sandbox",
        "started_at": started.isoformat(timespec="seconds"),
        "image": image,
        "tool": TOOL_SOURCE,
        "machine": machine_info(),
        "results": results,
        "targets": targets,
    }


def print_report(console: Console, report: dict[str, Any], out: Path) -> None:
    results = report["results"]
    table = Table(title=f"docker backend vs peers ({report['image']})")
    for column in ("measure", "runc", "runsc"):
        table.add_column(column, justify="right" if column != "measure" else "left")

    def row(label: str, getter: Any) -> None:
        table.add_row(label, *(getter(results[r]) for r in ("runc", "runsc")))

    row("bare docker run --rm true p50 ms", lambda r: f"{r['bare_docker_run']['p50_ms']:.0f}")
    row("cold start -> first answer p50 ms", lambda r: f"{r['cold_start']['p50_ms']:.0f}")
    row("warm call p50 ms", lambda r: f"{r['warm']['serial']['p50_ms']:.2f}")
    row("warm call p99 ms", lambda r: f"{r['warm']['serial']['p99_ms']:.2f}")
    row(
        f"warm call p50 ms, {PACE_S * 1000:.0f} ms between calls",
        lambda r: f"{r['warm']['paced']['p50_ms']:.2f}",
    )
    row(
        f"calls/s, {CONCURRENCY} callers",
        lambda r: f"{r['warm']['concurrent']['calls_per_s']:.0f}",
    )
    row(
        "container killed mid-call: result after",
        lambda r: f"{r['fault_run']['status']} {r['fault_run']['result_after_kill_ms']:.0f} ms",
    )
    row(
        "  next call answered after the kill",
        lambda r: (
            f"{r['fault_run']['next_call_status']} "
            f"{r['fault_run']['next_call_done_after_kill_ms']:.0f} ms"
        ),
    )
    console.print(table)
    llm = results.get("llm_sandbox", {})
    if "pooled" in llm:
        console.print(
            f"llm-sandbox, same image: new session per run p50 "
            f"{llm['new_session']['p50_ms']:.0f} ms; pooled session run p50 "
            f"{llm['pooled']['p50_ms']:.0f} ms"
        )
    else:
        console.print(f"llm-sandbox: {llm.get('skipped', 'not measured')}")
    for runtime, target in report["targets"].items():
        console.print(f"{runtime}: {json.dumps(target)}")
    console.print(f"written: {out}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke test)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON output")
    parser.add_argument("--no-llm-sandbox", action="store_true", help="skip llm-sandbox")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console(width=120)
    started = dt.datetime.now(dt.UTC)
    image = sandbox_image_tag()
    cold_rounds, bare_rounds = (3, 3) if args.quick else (9, 9)
    calls, concurrent_calls = (40, 80) if args.quick else (300, 400)
    results: dict[str, Any] = {}
    for runtime in (Runtime.RUNC, Runtime.RUNSC):
        console.print(f"running: {runtime} (bare docker run, cold start, warm calls)")
        results[runtime.value] = {
            "bare_docker_run": bare_docker_run(image, runtime.value, bare_rounds),
            "cold_start": asyncio.run(cold_start(runtime, cold_rounds)),
            "warm": asyncio.run(warm_calls(runtime, calls, concurrent_calls)),
            "fault_run": asyncio.run(fault_run(runtime)),
        }
    if not args.no_llm_sandbox:
        console.print("running: llm-sandbox (new session per run, then pooled)")
        results["llm_sandbox"] = llm_sandbox_runs(
            image, 3 if args.quick else 5, 10 if args.quick else 30
        )
    report = build_report(results, started, image)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print_report(console, report, args.out)
    failures = sum(
        results[r]["warm"][k]["failures"]
        for r in ("runc", "runsc")
        for k in ("serial", "concurrent")
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
