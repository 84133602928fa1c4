"""One tenant's burst against another tenant's single call, at the shared local model.

The embedded model (llama.cpp's server, one completion at a time) is shared by every
tenant of a deployment. Tenant A sends a burst of ``--burst`` completions at once; just
after, tenant B sends one. B's latency is measured two ways, side by side in one run,
alternating, ``--runs`` times each:

* ``fair``: the platform's :class:`~orchestrator.models.admission.FairQueue` (one slot,
  tenants take turns): B waits for at most the call running and one of A's;
* ``fifo``: the queue given as many slots as calls, so the calls reach llama.cpp's server
  at once and it serves them in arrival order: B waits for A's whole burst.

Every completion is the same short request (temperature 0, ``--max-tokens``). Writes
``bench/results/fair_model.json`` with the medians and their ratio.

    .venv/bin/python bench/fair_model.py                  # qwen2.5-coder-0.5b, burst 6
    .venv/bin/python bench/fair_model.py --quick --out /tmp/fair.json  # SmolLM2, for CI
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import write_report  # noqa: E402 - after the path set-up
from bench.sandbox_latency import machine_info  # noqa: E402
from orchestrator.config import Settings  # noqa: E402
from orchestrator.models import open_model  # noqa: E402
from orchestrator.models.admission import FairQueue  # noqa: E402
from orchestrator.models.base import ChatParams, Message  # noqa: E402
from orchestrator.models.ledger import usage_scope  # noqa: E402
from orchestrator.models.local import LocalModel  # noqa: E402

DEFAULT_OUT = ROOT / "bench" / "results" / "fair_model.json"
PROMPT = [Message(role="user", content="Name three fruits, comma-separated.")]


async def timed(model: LocalModel, tenant: str, params: ChatParams) -> float:
    started = time.perf_counter()
    with usage_scope(tenant=tenant):
        await model.complete(PROMPT, params)
    return time.perf_counter() - started


async def trial(model: LocalModel, mode: str, burst: int, params: ChatParams) -> dict[str, Any]:
    """A's burst, then B's one call; the seconds B and A's last call took."""
    model.queue = FairQueue(model.spec, slots=1 if mode == "fair" else burst + 1)
    burst_calls = [asyncio.create_task(timed(model, "a", params)) for _ in range(burst)]
    await asyncio.sleep(0.05)  # A's calls are queued (or sent) first
    b_s = await timed(model, "b", params)
    a_s = await asyncio.gather(*burst_calls)
    return {"mode": mode, "b_s": round(b_s, 3), "a_last_s": round(max(a_s), 3)}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    model = open_model(f"local:{args.model}", Settings())
    assert isinstance(model, LocalModel)
    params = ChatParams(max_tokens=args.max_tokens, temperature=0.0)
    try:
        single = [await timed(model, "b", params) for _ in range(3)][1:]  # the first loads
        trials = []
        for n in range(args.runs):
            for mode in ("fifo", "fair") if n % 2 == 0 else ("fair", "fifo"):
                trials.append(await trial(model, mode, args.burst, params))
                print(trials[-1], flush=True)
    finally:
        await model.aclose()
    b = {m: statistics.median(t["b_s"] for t in trials if t["mode"] == m) for m in ("fifo", "fair")}
    return {
        "single_call_s": round(statistics.median(single), 3),
        "trials": trials,
        "median_b_s": {m: round(v, 3) for m, v in b.items()},
        "fifo_over_fair": round(b["fifo"] / b["fair"], 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--model", default="qwen2.5-coder-0.5b")
    parser.add_argument("--burst", type=int, default=6, help="tenant A's calls at once")
    parser.add_argument("--runs", type=int, default=3, help="trials of each mode")
    parser.add_argument("--max-tokens", type=int, default=24)
    parser.add_argument("--quick", action="store_true", help="SmolLM2, one trial each, for CI")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if args.quick:
        args.model, args.burst, args.runs, args.max_tokens = "smollm2-135m", 3, 1, 8
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    result = asyncio.run(run(args))
    report = {
        "benchmark": "fair_model",
        "started_at": started,
        "config": {"model": args.model, "burst": args.burst, "runs": args.runs,
                   "max_tokens": args.max_tokens, "quick": args.quick},
        "machine": machine_info(),
        **result,
    }  # fmt: skip
    write_report(report, args.out)
    print(
        f"B's one call behind A's burst of {args.burst}: fifo {result['median_b_s']['fifo']} s, "
        f"fair {result['median_b_s']['fair']} s (x{result['fifo_over_fair']}); "
        f"a lone call {result['single_call_s']} s; wrote {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
