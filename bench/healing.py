"""How fast a sandbox heals when its server, template or zygote stops answering.

For each backend flavour and each serving process: a call spins in the sandbox, the
process is stopped (SIGSTOP, from outside the sandbox, with the
security suite's own helper), and the bench times how long the
call in flight takes to be answered (``crashed``) and how long the next call takes
(served by a new server, template or container). Writes JSON.

    .venv/bin/python bench/healing.py [--flavours process-bwrap docker-runc docker-runsc]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import write_report  # noqa: E402 - after the path set-up
from orchestrator.sandboxes import ExecRequest  # noqa: E402
from tests.support.backends import make_backend  # noqa: E402
from tests.support.serving import SPIN, stop_serving_process  # noqa: E402

DEFAULT_OUT = ROOT / "bench" / "results" / "healing.json"
ROLES = ("server", "template", "zygote")
FLAVOURS = ("process-bwrap", "docker-runc", "docker-runsc")


async def heal_once(flavour: str, role: str) -> dict[str, Any]:
    backend = make_backend(flavour)
    tenant = f"heal-{role}"
    try:
        await backend.execute(tenant, ExecRequest(source="", call="ans = 1"))
        sandbox = await backend.acquire(tenant)
        spin = ExecRequest(source="", call=SPIN, timeout_ms=40_000, cpu_ms=40_000)
        call = asyncio.ensure_future(sandbox.execute(spin))
        await asyncio.sleep(0.5)
        stop_serving_process(backend, sandbox, role)
        stopped = time.monotonic()
        result = await call
        answered_s = time.monotonic() - stopped
        await backend.release(sandbox, faulted=True)
        started = time.monotonic()
        after = await backend.execute(
            tenant, ExecRequest(source="import math\n", call="ans = math.pi")
        )
        return {
            "in_flight_status": result.status.value,
            "in_flight_answered_s": round(answered_s, 2),
            "next_status": after.status.value,
            "next_call_s": round(time.monotonic() - started, 3),
        }
    finally:
        await backend.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--flavours", nargs="+", default=list(FLAVOURS), choices=FLAVOURS)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    results = {
        flavour: {role: asyncio.run(heal_once(flavour, role)) for role in ROLES}
        for flavour in args.flavours
    }
    report = {
        "benchmark": "healing",
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "results": results,
    }
    write_report(report, args.out)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
