"""Soak: many concurrent clients mixing legitimate and hostile calls over loopback for a
bounded time; every outcome classified, then leaks and memory growth checked.

``latm serve`` runs as a subprocess (docker backend, runc, by default) with a temporary
SQLite registry and a canary secret in its environment. Several tenants (one with tight
rate and concurrency quotas) import the same tools through ``ImportTool``: a few
legitimate ones and ~130 hostile ones (the red-team suite's escape and exhaustion payloads,
see :mod:`bench._soak_tools`). N clients (each its own channel, a tenant each) then pick
calls at random (seeded) until the time is up: legitimate calls whose answers are checked,
reads, escapes, resource exhaustion, and hostile requests (bad keys, another tenant's tool,
limits above quota, oversized and malformed requests, deadlines, cancellations); each
outcome is classified as an expected success, an expected refusal by kind, or unexpected
(:mod:`bench._soak_calls`).

The run: a warm-up (every call once per tenant, then the mix), a settle, the measured
mix (``--seconds``), a settle, then SIGTERM. Pass criteria: no unexpected outcome; no
container of this server left after it stops, none beyond its pools once settled; no
process it started alive after it stops; after settling, no more child processes, no more
processes in any container and no more open file descriptors than after the warm-up (the
registry's SQLite files apart: they follow the load, within its connection pool's bound);
resident memory growth from after the warm-up to the end at most 10% (read from the trend
of the samples, see :func:`rss_trend_growth_pct`); exit status 0; no ERROR from its own
code in its log. Writes ``bench/results/soak.json`` (with the memory and descriptor
series), prints a table, exits 1 when a criterion fails.

    .venv/bin/python bench/soak.py                    # 10 minutes, 16 clients
    .venv/bin/python bench/soak.py --quick            # ~30 s measured, for CI
    .venv/bin/python bench/soak.py --runtime runsc    # or --backend process, --listen unix
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import secrets
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import growth_pct, write_report  # noqa: E402 - after the path set-up
from bench._server import Server, create_tenant, descendants, run_in_workdir  # noqa: E402
from bench._soak_calls import (  # noqa: E402
    CANARY,
    CATEGORIES,
    HOG,
    HOG_QUOTAS,
    MAX_MEMORY_MB,
    MAX_TIMEOUT_MS,
    WEIGHTS,
    Outcome,
    Probe,
    Session,
    probes,
)
from bench._soak_tools import REFUSED_AT_IMPORT, hostile_tools, tool_cards  # noqa: E402
from bench._watch import Watch, log_summary, outlived, series_summary  # noqa: E402
from bench.sandbox_latency import machine_info, percentile  # noqa: E402
from orchestrator.errors import InvalidRequest  # noqa: E402

DEFAULT_OUT = ROOT / "bench" / "results" / "soak.json"
TENANTS = ("alpha", "beta", "gamma")
TIGHT = "tight"  # low rate and concurrency quotas: many of its calls are refused
TARGET_RSS_GROWTH_PCT = 10.0
# While the hostile tenant pushes every limit, the other tenants' legitimate calls (which
# share two cores with ~130 hostile tools' escapes and exhaustion) stay within these.
LEGIT_P50_MS_MAX = 500.0
LEGIT_P99_MS_MAX = 15000.0  # the tail is other tenants' exhaustion payloads (5 s timeouts)
EXIT_GRACE_S = 10.0  # how long the server's processes may outlive it
# The registry's SQLite files: the database and its WAL per connection of SQLAlchemy's
# pool (5, and 10 more under load; the registry keeps those defaults) and one shared memory
# file. Within that bound they follow the load; beyond it they would be a leak.
REGISTRY_FDS_MAX = 2 * (5 + 10) + 1


# ------------------------------------------------------------------------ the tally


class Tally:
    """Outcomes by phase, category and kind; latencies; the first unexpected ones."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str, str]] = Counter()
        self.latencies_ms: dict[str, list[float]] = {c: [] for c in CATEGORIES}
        self.unexpected: list[dict[str, Any]] = []

    def add(self, phase: str, probe: Probe, tenant: str, outcome: Outcome, ms: float) -> None:
        self.counts[phase, probe.category, outcome.kind] += 1
        if phase == "measured":
            self.latencies_ms[probe.category].append(ms)
        if outcome.unexpected and len(self.unexpected) < 30:
            self.unexpected.append(
                {"phase": phase, "probe": f"{probe.category}:{probe.name}", "tenant": tenant,
                 "kind": outcome.kind, "detail": outcome.detail}
            )  # fmt: skip

    def kinds(self, phase: str | None = None) -> Counter[str]:
        found: Counter[str] = Counter()
        for (p, _, kind), n in self.counts.items():
            if phase in (None, p):
                found[kind] += n
        return found

    def progress(self, sample: dict[str, Any]) -> str:
        kinds = self.kinds()
        unexpected = sum(n for k, n in kinds.items() if k.startswith("unexpected:"))
        return (
            f"soak: {sample['t_s']:.0f} s, {sum(kinds.values())} calls, {unexpected} unexpected,"
            f" server RSS {sample['rss_kb'] / 1024:.1f} MB, {sample['fds']} fds, "
            f"{sample['containers']} containers"
        )

    def summary(self, measured_s: float) -> dict[str, Any]:
        kinds = self.kinds()
        unexpected = {k: n for k, n in kinds.items() if k.startswith("unexpected:")}
        measured = sum(self.kinds("measured").values())
        by_category: dict[str, Any] = {}
        for category in CATEGORIES:
            ms = self.latencies_ms[category]
            outcomes = Counter({k: n for (_, c, k), n in self.counts.items() if c == category})
            by_category[category] = {
                "calls": sum(outcomes.values()),
                "outcomes": dict(outcomes.most_common()),
                "measured_p50_ms": round(percentile(ms, 50), 2),
                "measured_p99_ms": round(percentile(ms, 99), 2),
                "measured_max_ms": round(max(ms), 2) if ms else None,
            }
        return {
            "total": sum(kinds.values()),
            "warmup": sum(self.kinds("warmup").values()),
            "measured": measured,
            "measured_calls_per_s": round(measured / measured_s, 2) if measured_s else 0.0,
            "expected_success": kinds["ok"],
            "refused_by_kind": {
                k: n for k, n in kinds.most_common() if k != "ok" and k not in unexpected
            },
            "unexpected": sum(unexpected.values()),
            "unexpected_by_kind": unexpected,
            "unexpected_examples": self.unexpected,
            "by_category": by_category,
        }


# ------------------------------------------------------------------------- clients


async def drive(
    session: Session, rng: random.Random, plan: list[Probe] | None, stop_at: float,
    tally: Tally, phase: str,
) -> None:  # fmt: skip
    """Run ``plan`` in order, or (without one) calls drawn from the mix until ``stop_at``."""
    by_category = probes()
    mix = ["limits"] if session.tenant == HOG else [c for c in CATEGORIES if WEIGHTS[c]]
    weights = [WEIGHTS[c] or 1 for c in mix]
    steps = iter(plan) if plan is not None else None
    while time.monotonic() < stop_at:
        if steps is not None:
            probe = next(steps, None)
            if probe is None:
                return
        else:
            probe = rng.choice(by_category[rng.choices(mix, weights)[0]])
        began = time.perf_counter()
        outcome = await probe.run(session, rng)
        tally.add(phase, probe, session.tenant, outcome, (time.perf_counter() - began) * 1000)
        if outcome.retry_after_s:  # a polite client honours the server's hint
            await asyncio.sleep(min(outcome.retry_after_s, 1.0))


def tour(sessions: list[Session]) -> dict[int, list[Probe]]:
    """Every probe once per tenant (legit and API ones a few times), shared out among
    that tenant's clients: the warm-up reaches every path before memory is measured."""
    every = [p for c, found in probes().items() if c != "limits" for p in found]
    every += [p for p in every if p.category in ("legit", "api", "read")] * 3
    plans: dict[int, list[Probe]] = {}
    for tenant in {s.tenant for s in sessions}:
        mine = [n for n, s in enumerate(sessions) if s.tenant == tenant]
        plan = probes()["limits"] * 4 if tenant == HOG else every
        for k, n in enumerate(mine):
            plans[n] = plan[k :: len(mine)]
    return plans


async def phase(
    sessions: list[Session], seed: int, seconds: float, tally: Tally, name: str,
    plans: dict[int, list[Probe]] | None = None,
) -> float:  # fmt: skip
    """Every client at once, until the plans are done or ``seconds`` are up."""
    began = time.monotonic()
    await asyncio.gather(
        *(
            drive(s, random.Random(f"{seed}/{name}/{n}"), plans[n] if plans else None,
                  began + seconds, tally, name)
            for n, s in enumerate(sessions)
        )
    )  # fmt: skip
    return time.monotonic() - began


# ------------------------------------------------------------------- the server side


def server_settings(args: argparse.Namespace, workdir: Path) -> dict[str, str]:
    """The ``LATM_*`` environment of the server under test (recorded in the report)."""
    return {
        "LATM_DATABASE_URL": f"sqlite:///{workdir / 'registry.db'}",
        "LATM_BACKEND": args.backend,
        "LATM_DOCKER_RUNTIME": args.runtime,
        "LATM_POOL_MIN_IDLE": str(args.pool_size),
        "LATM_POOL_MAX_SIZE": str(args.pool_size),
        "LATM_LOG_LEVEL": args.log_level,
        "LATM_API_KEY_CACHE_S": "5",
        # The soak measures the sandbox and the API. A user check would ask the local model
        # each of ~130 imported tools' cases, one at a time on two cores: up to a minute
        # per import once four tenants queue, which is the model's latency, not the API's.
        "LATM_USER_CHECK": "false",
    }


def tenant_quotas(tenant: str) -> dict[str, int]:
    limits = {"max_timeout_ms": MAX_TIMEOUT_MS, "max_memory_mb": MAX_MEMORY_MB}
    if tenant == TIGHT:
        return {"requests_per_minute": 600, "concurrent_executions": 2, **limits}
    if tenant == HOG:
        limits |= HOG_QUOTAS
    return {"requests_per_minute": 10_000_000, "concurrent_executions": 64, **limits}


def client_tenants(tenants: list[str], clients: int) -> list[str]:
    """The tenant of each client: one in eight (at least one) for the tight tenant, whose
    calls are mostly refused at once, one for the hostile tenant that pushes every limit,
    and the others shared out round robin."""
    tight = max(1, clients // 8)
    ordinary = [t for t in tenants if t not in (TIGHT, HOG)]
    spread = [ordinary[n % len(ordinary)] for n in range(clients - tight - 1)]
    return [*spread, *[TIGHT] * tight, HOG]


async def import_tools(sessions: list[Session]) -> None:
    """Each tenant imports every tool once (its first client does it)."""
    firsts = {s.tenant: s for s in reversed(sessions) if s.tenant != HOG}  # it makes its own

    async def one(session: Session) -> None:
        for name, card in tool_cards(session.tenant, session.tokens[session.tenant]).items():
            for attempt in range(50):  # the tight tenant's rate quota refuses some
                try:
                    await session.client.import_tool(card)
                    break
                except InvalidRequest:
                    if name not in hostile_tools():
                        raise
                    REFUSED_AT_IMPORT.add(name)  # its demos could not even run
                    break
                except Exception as exc:
                    if attempt == 49 or "quota" not in str(exc):
                        raise
                    await asyncio.sleep(0.2)

    await asyncio.gather(*(one(s) for s in firsts.values()))


# --------------------------------------------------------------------------- the run


async def exercise(
    args: argparse.Namespace, sessions: list[Session], tally: Tally, watch: Watch, pools: int
) -> dict[str, Any]:
    """The warm-up, a settle, the measured mix (sampled), a settle: how long each phase
    took and the server as it stood after each settle."""
    warm = await phase(sessions, args.seed, 3600, tally, "warmup", tour(sessions))
    warm += await phase(sessions, args.seed, max(0.0, args.warmup - warm), tally, "warmup")
    baseline = await watch.settled(args.settle, pools)
    sampler = asyncio.ensure_future(watch.run(args.sample, tally.progress))
    try:
        measured_s = await phase(sessions, args.seed, args.seconds, tally, "measured")
    finally:
        sampler.cancel()
    end = await watch.settled(args.settle, pools)
    return {
        "warmup_s": round(warm, 1),
        "measured_s": round(measured_s, 1),
        "baseline": baseline,
        "end": end,
    }


async def soak(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    settings = server_settings(args, workdir)
    env = {**os.environ, **settings, "OPENAI_API_KEY": CANARY}
    tenants = [*TENANTS[: args.tenants], TIGHT, HOG]
    keys = {t: create_tenant(env, t, tenant_quotas(t)) for t in tenants}
    tokens = {t: f"token-{t}-{secrets.token_hex(6)}" for t in tenants}
    listen = f"unix:{workdir / 'api.sock'}" if args.listen == "unix" else "127.0.0.1:0"
    server = Server(env, workdir / "server.log", listen=listen)
    owner = None
    if args.backend == "docker":
        from orchestrator.sandboxes.docker import owner_id

        owner = owner_id(server.pid)
    watch = Watch(server.pid, owner)
    pools = len(tenants) * args.pool_size if owner else 0
    tally = Tally()
    sessions: list[Session] = []
    try:
        sessions = [
            Session(server.address, t, keys[t], tokens, tight=t == TIGHT)
            for t in client_tenants(tenants, args.clients)
        ]
        await import_tools(sessions)
        ran = await exercise(args, sessions, tally, watch, pools)
        running = descendants(server.pid)
    finally:
        await asyncio.gather(*(s.close() for s in sessions))
        exit_code = server.stop()
    left_processes, gone_in_s = await outlived(running, EXIT_GRACE_S)
    left_containers = len(await asyncio.to_thread(watch.containers))
    return {
        "address": server.address,
        "server_settings": {**settings, "LATM_DATABASE_URL": "sqlite:///REGISTRY"},
        "tenants": {t: tenant_quotas(t) for t in tenants},
        **ran,
        "calls": tally.summary(ran["measured_s"]),
        "pool_containers": pools,
        "peak": {k: max(s[k] for s in watch.samples) for k in ("containers", "children", "fds")},
        "left_after_stop": {
            "containers": left_containers,
            "processes": [f"{pid} {name}" for pid, _, name in left_processes],
            "processes_gone_in_s": gone_in_s,
        },
        "rss_kb": series_summary(watch.samples, "rss_kb"),
        "fds": series_summary(watch.samples, "fds"),
        # The two settled readings, for the record.
        "rss_settled_growth_pct": growth_pct(ran["baseline"]["rss_kb"], ran["end"]["rss_kb"]),
        "server_exit_code": exit_code,
        "server_log": log_summary(workdir / "server.log"),
    }


def registry_fds(sample: dict[str, Any]) -> int:
    return sum(n for k, n in sample["fd_kinds"].items() if k.startswith("file:registry.db"))


def other_fds(sample: dict[str, Any]) -> int:
    """Descriptors other than the registry's SQLite files, whose number follows the load:
    each pooled connection holds the database and its WAL, and SQLite keeps a closed
    connection's file open while another holds a lock on it."""
    return int(sample["fds"]) - registry_fds(sample)


def rss_trend_growth_pct(rss: dict[str, Any]) -> float:
    """Growth of the server's resident memory over the samples from the baseline to the
    end, read from their least-squares trend. A single reading swings by up to ±8% with
    where the allocator stands after the last large request (the mix sends up to 8 MB),
    so two readings can differ by more than the limit with no leak; a leak raises every
    reading and so the trend, which the ~30 samples of even ``--quick`` pin down to
    about ±2%."""
    return growth_pct(rss["fit_first"], rss["fit_last"])


TIMED = {"others_legit_p50_ms", "others_legit_p99_ms"}


def criteria(result: dict[str, Any], *, quick: bool) -> dict[str, dict[str, Any]]:
    """Each pass criterion: the value found, its limit, whether it holds, and whether it
    decides the run. The latency criteria decide only a full run: ``--quick`` measures ~30 s
    on whatever else the machine is doing (a CI runner's two cores run the test suite
    beside it), so its medians are recorded, not gated; leaks and wrong outcomes gate both."""
    base, end, calls = result["baseline"], result["end"], result["calls"]
    found = {
        "unexpected_outcomes": calls["unexpected"],
        "categories_never_called": sum(1 for c in calls["by_category"].values() if not c["calls"]),
        "containers_left_after_stop": result["left_after_stop"]["containers"],
        "containers_beyond_pools_at_end": max(0, end["containers"] - result["pool_containers"]),
        "processes_left_after_stop": len(result["left_after_stop"]["processes"]),
        "child_process_growth": end["children"] - base["children"],
        "sandbox_process_growth": end["processes_per_container"] - base["processes_per_container"],
        "fd_growth": other_fds(end) - other_fds(base),
        "registry_fds": registry_fds(end),
        "rss_growth_pct": rss_trend_growth_pct(result["rss_kb"]),
        "others_legit_p50_ms": calls["by_category"]["legit"]["measured_p50_ms"],
        "others_legit_p99_ms": calls["by_category"]["legit"]["measured_p99_ms"],
        "server_exit_code": result["server_exit_code"],
        "server_log_errors": result["server_log"]["own_errors"],
    }
    limits = {
        "rss_growth_pct": TARGET_RSS_GROWTH_PCT,
        "registry_fds": REGISTRY_FDS_MAX,
        "others_legit_p50_ms": LEGIT_P50_MS_MAX,
        "others_legit_p99_ms": LEGIT_P99_MS_MAX,
    }
    return {
        name: {
            "value": value,
            "limit": limits.get(name, 0),
            "passed": value <= limits.get(name, 0),
            "gates": not (quick and name in TIMED),
        }
        for name, value in found.items()
    }


def build_report(args: argparse.Namespace, result: dict[str, Any]) -> dict[str, Any]:
    checks = criteria(result, quick=args.quick)
    found = probes()
    return {
        "benchmark": "soak",
        "started_at": args.started_at,
        "passed": all(c["passed"] for c in checks.values() if c["gates"]),
        "criteria": checks,
        # Hostile tools the platform would not publish: their demos cannot run.
        "hostile_tools_refused_at_import": sorted(REFUSED_AT_IMPORT),
        "config": {
            "seconds": args.seconds,
            "warmup_s": args.warmup,
            "clients": args.clients,
            "tenants": args.tenants + 2,
            "seed": args.seed,
            "backend": args.backend,
            "runtime": args.runtime if args.backend == "docker" else None,
            "transport": "unix socket" if args.listen == "unix" else "loopback TCP, plaintext",
            "pool_size": args.pool_size,
            "sample_s": args.sample,
            "settle_s": args.settle,
            "quick": args.quick,
            "weights": WEIGHTS,
            "probes": {c: len(found[c]) for c in CATEGORIES},
        },
        "machine": machine_info(),
        **result,
    }


def print_summary(report: dict[str, Any], out: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    config, calls = report["config"], report["calls"]
    console = Console()
    console.print(
        f"soak: {config['clients']} clients, {config['tenants']} tenants, "
        f"{report['measured_s']} s measured after {report['warmup_s']} s warm-up, "
        f"{config['backend']}{'+' + config['runtime'] if config['runtime'] else ''}; "
        f"{calls['total']} calls ({calls['measured_calls_per_s']}/s measured), "
        f"{calls['unexpected']} unexpected"
    )
    table = Table("category", "calls", "p50 ms", "p99 ms", "outcomes")
    for name, c in calls["by_category"].items():
        outcomes = ", ".join(f"{k} {n}" for k, n in c["outcomes"].items())
        table.add_row(name, str(c["calls"]), str(c["measured_p50_ms"]),
                      str(c["measured_p99_ms"]), outcomes)  # fmt: skip
    console.print(table)
    checks = Table("criterion", "value", "limit", "passed")
    for name, c in report["criteria"].items():
        verdict = ("yes" if c["passed"] else "NO") + ("" if c["gates"] else " (recorded)")
        checks.add_row(name, str(c["value"]), str(c["limit"]), verdict)
    console.print(checks)
    for example in calls["unexpected_examples"][:10]:
        console.print(f"  unexpected: {example}")
    console.print(f"{'PASSED' if report['passed'] else 'FAILED'}; wrote {out}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=600.0, help="measured time")
    parser.add_argument("--warmup", type=float, default=120.0, help="warm-up seconds (at least)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients")
    parser.add_argument("--tenants", type=int, default=3, choices=(1, 2, 3),
                        help="ordinary tenants (plus a tight-quota and a hostile one)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=0, help="seed of the call mix")
    parser.add_argument("--backend", choices=("docker", "process"), default="docker")
    parser.add_argument("--runtime", choices=("runc", "runsc"), default="runc")
    parser.add_argument("--listen", choices=("tcp", "unix"), default="tcp")
    parser.add_argument("--pool-size", type=int, default=3, help="containers per tenant")
    parser.add_argument("--sample", type=float, default=5.0, help="seconds between samples")
    parser.add_argument("--settle", type=float, default=5.0, help="quiet seconds before a check")
    parser.add_argument("--log-level", default="INFO", help="the server's LATM_LOG_LEVEL")
    parser.add_argument("--quick", action="store_true", help="~30 s measured, for CI")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if args.clients < args.tenants + 2:
        parser.error(f"--clients must be at least {args.tenants + 2}: one per tenant")
    if args.quick:
        args.seconds, args.warmup, args.sample, args.settle = 30.0, 40.0, 1.0, 3.0
    args.started_at = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    result = run_in_workdir("latm-soak-", lambda workdir: soak(args, workdir))
    report = build_report(args, result)
    write_report(report, args.out)
    print_summary(report, args.out)
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
