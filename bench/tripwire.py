"""What the audit-hook tripwire costs a call (sandbox/tripwire.py).

A worker arms the tripwire once per call, then runs the tool module and the call
code; every audit event they raise goes through the hook. This measures, in forked
children of one warm process (as workers are forks of the template):

* ``install_us``: installing the dormant hook in a fresh fork (a spare worker does it
  while it waits for its job, off the call's path); ``arm_us``: arming it with the
  job's code objects, on the call's path;
* per call, with and without the hook armed, two tools compiled as the sandbox
  compiles them: ``plain`` (word sorting: two ``exec`` events, the module and the
  call) and ``generating`` (defines a dataclass and a namedtuple on every call:
  ``compile``/``exec`` events from the standard library's code generators, each
  judged by the caller's frame).

Armed and unarmed children alternate, round after round, so machine noise falls on
both; medians and their ratio are reported. Writes JSON.

    .venv/bin/python bench/tripwire.py            # full run
    .venv/bin/python bench/tripwire.py --quick    # a few seconds
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import write_report  # noqa: E402 - after the path set-up
from sandbox.guards import Environment  # noqa: E402
from sandbox.policy import default_allowlist  # noqa: E402
from sandbox.restricted import compile_call, compile_tool  # noqa: E402

DEFAULT_OUT = ROOT / "bench" / "results" / "tripwire.json"
TOOLS = {
    "plain": (
        "def sort_words(text):\n    return ' '.join(sorted(text.split()))\n",
        "ans = sort_words('pear apple fig kiwi banana cherry')",
    ),
    "generating": (
        "import collections\nimport dataclasses\n\n"
        "@dataclasses.dataclass(frozen=True)\nclass Item:\n    name: str\n    rank: int\n\n"
        "Pair = collections.namedtuple('Pair', 'left right')\n\n"
        "def rank(words):\n"
        "    items = [Item(w, len(w)) for w in words]\n"
        "    return [Pair(i.name, i.rank) for i in sorted(items, key=lambda i: i.rank)]\n",
        "ans = rank(['pear', 'apple', 'fig'])",
    ),
}


def _in_child(measure: Any) -> float:
    """Run ``measure()`` in a forked child and return the float it reports."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        try:
            os.write(write_end, json.dumps(measure()).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    data = b""
    while chunk := os.read(read_end, 4096):
        data += chunk
    os.close(read_end)
    os.waitpid(pid, 0)
    return float(json.loads(data))


def _calls_us(env: Environment, tool: str, armed: bool, calls: int) -> float:
    """Median microseconds of one tool module plus call, in this (forked) process."""
    allowlist = env.allowlist
    tool_code = compile_tool(tool[0], allowlist)
    call = compile_call(tool[1], allowlist)
    if armed:
        env.tripwire.install(lambda event: os._exit(3))((tool_code, call.code))
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        namespace = env.new_globals()
        exec(tool_code, namespace)
        exec(call.code, namespace)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e6


def _install_us(env: Environment) -> float:
    """Installing the dormant hook: paid by a spare worker while it waits for a job."""
    started = time.perf_counter()
    env.tripwire.install(lambda event: os._exit(3))
    return (time.perf_counter() - started) * 1e6


def _arm_us(env: Environment) -> float:
    """Arming the installed hook with the job's code: paid on the call's path."""
    arm = env.tripwire.install(lambda event: os._exit(3))
    started = time.perf_counter()
    arm((None,))
    return (time.perf_counter() - started) * 1e6


def measure(rounds: int, calls: int) -> dict[str, Any]:
    env = Environment(default_allowlist())
    results: dict[str, Any] = {
        name: round(statistics.median(_in_child(lambda f=f: f(env)) for _ in range(rounds * 4)), 2)
        for name, f in (("install_us", _install_us), ("arm_us", _arm_us))
    }
    for name, tool in TOOLS.items():
        armed, bare = [], []
        for _ in range(rounds):
            armed.append(_in_child(lambda tool=tool: _calls_us(env, tool, True, calls)))
            bare.append(_in_child(lambda tool=tool: _calls_us(env, tool, False, calls)))
        armed_us, bare_us = statistics.median(armed), statistics.median(bare)
        results[name] = {
            "armed_us": round(armed_us, 2),
            "unarmed_us": round(bare_us, 2),
            "added_us": round(armed_us - bare_us, 2),
            "ratio": round(armed_us / bare_us, 3),
        }
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a few rounds, for tests")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    rounds, calls = (3, 200) if args.quick else (15, 2000)
    report = {
        "benchmark": "tripwire",
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
        "rounds": rounds,
        "calls_per_round": calls,
        "results": measure(rounds, calls),
    }
    write_report(report, args.out)
    print(json.dumps(report["results"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
