"""What the server under test holds over time: memory, file descriptors, threads, the
processes it started and its containers (docker's owner label), sampled from ``/proc`` and
the Docker engine; and its log, summarised by level."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench._server import descendants, fd_kinds, open_fds, proc_status, still_running

SERIES_POINTS = 120  # at most this many points of a series go into a report


class Watch:
    """Samples the server over time: memory, descriptors, threads, children, containers."""

    def __init__(self, pid: int, owner: str | None, database: str = "registry.db") -> None:
        self.pid = pid
        self.owner = owner  # the docker owner label of the server's containers
        self.database = database  # the registry's SQLite file: its descriptors apart
        self.samples: list[dict[str, Any]] = []
        self.began = time.monotonic()

    def containers(self) -> list[Any]:
        if self.owner is None:
            return []
        import docker

        from orchestrator.sandboxes.docker import LABEL_OWNER

        return list(
            docker.from_env().containers.list(
                all=True, filters={"label": f"{LABEL_OWNER}={self.owner}"}, ignore_removed=True
            )
        )

    def sample(self, inside: bool = False) -> dict[str, Any]:
        """The figures now; ``inside`` adds the most processes in any one container and
        the server's file descriptors by kind."""
        status = proc_status(self.pid)
        containers = self.containers()
        found: dict[str, Any] = {
            "t_s": round(time.monotonic() - self.began, 1),
            "rss_kb": status.get("VmRSS", 0),
            "fds": open_fds(self.pid),
            "threads": status.get("Threads", 0),
            "children": len(descendants(self.pid)),
            "containers": len(containers),
        }
        if inside:
            found["processes_per_container"] = max(
                (len(c.top().get("Processes") or []) for c in containers), default=0
            )
            found["fd_kinds"] = fd_kinds(self.pid, (self.database,))
        return found

    async def run(self, every_s: float, progress: Callable[[dict[str, Any]], str]) -> None:
        """Sample every ``every_s``; about once a minute print ``progress(last sample)``
        on stderr."""
        said = time.monotonic()
        while True:
            self.samples.append(await asyncio.to_thread(self.sample))
            if time.monotonic() - said >= 60:
                said = time.monotonic()
                print(progress(self.samples[-1]), file=sys.stderr, flush=True)
            await asyncio.sleep(every_s)

    async def settled(self, seconds: float, containers: int) -> dict[str, Any]:
        """After ``seconds`` of quiet and the pools refilled: the least of three samples
        of each figure (a transient does not count; a leak stays)."""
        await asyncio.sleep(seconds)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if len(await asyncio.to_thread(self.containers)) >= containers:
                break
            await asyncio.sleep(0.5)
        taken = []
        for _ in range(3):
            taken.append(await asyncio.to_thread(self.sample, True))
            await asyncio.sleep(0.5)
        inside = ("processes_per_container", "fd_kinds")
        self.samples += [{k: v for k, v in t.items() if k not in inside} for t in taken]
        least = min(taken, key=lambda t: t["fds"])  # its fd kinds go with the least fds
        return {k: least["fd_kinds"] if k == "fd_kinds" else min(t[k] for t in taken)
                for k in taken[0] if k != "t_s"}  # fmt: skip


async def outlived(
    processes: list[tuple[int, str, str]], grace_s: float
) -> tuple[list[tuple[int, str, str]], float]:
    """Those of ``processes`` still running ``grace_s`` after the server exited (a sandbox
    killed with its parent takes a moment to go), and how long the others took."""
    began = time.monotonic()
    left = still_running(processes)
    while left and time.monotonic() - began < grace_s:
        await asyncio.sleep(0.1)
        left = still_running(left)
    return left, round(time.monotonic() - began, 2)


def series_summary(samples: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """A series' range, its least-squares trend (per minute, and its fitted value at the
    first and the last sample) and at most ``SERIES_POINTS`` of its points."""
    values = [s[key] for s in samples]
    times = [s["t_s"] for s in samples]
    if not values:
        return {}
    n = len(values)
    mean_t, mean_v = sum(times) / n, sum(values) / n
    spread = sum((t - mean_t) ** 2 for t in times)
    moment = sum((t - mean_t) * (v - mean_v) for t, v in zip(times, values, strict=True))
    slope = moment / spread if spread else 0.0
    step = max(1, n // SERIES_POINTS)
    return {
        "samples": n,
        "min": min(values),
        "max": max(values),
        "mean": round(mean_v, 1),
        "first": values[0],
        "last": values[-1],
        "slope_per_min": round(60 * slope, 2),
        "fit_first": round(mean_v + slope * (times[0] - mean_t), 1),
        "fit_last": round(mean_v + slope * (times[-1] - mean_t), 1),
        "series": [[times[i], values[i]] for i in range(0, n, step)],
    }


def log_summary(path: Path, keep: int = 5) -> dict[str, Any]:
    """Lines by level; errors of the server's own code (not gRPC's core, which logs at
    ERROR when a status cannot be sent to a client that has just gone away); the distinct
    messages above INFO; and the first ``keep`` of those records in full."""
    levels: Counter[str] = Counter()
    notable: Counter[str] = Counter()
    records: list[str] = []
    own_errors = 0
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
            level = str(record.get("level", "?"))
        except (ValueError, AttributeError):
            record, level = {"message": line[:200]}, "NOT_JSON"
        levels[level] += 1
        if level in ("INFO", "DEBUG"):
            continue
        logger = str(record.get("logger", ""))
        if level == "NOT_JSON" or (
            level in ("ERROR", "CRITICAL") and not logger.startswith("grpc")
        ):
            own_errors += 1
        notable[f"{level} {logger}: {str(record.get('message', ''))[:160]}"] += 1
        if len(records) < keep:
            records.append(line[:3000])
    return {
        "lines_by_level": dict(levels),
        "own_errors": own_errors,
        "notable": dict(notable.most_common(15)),
        "notable_records": records,
    }
