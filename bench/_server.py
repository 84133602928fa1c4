"""The API server under test, for the benchmarks that drive the public gRPC API.

``latm serve`` as a subprocess, its tenants (made with ``latm tenants create``), and what
``/proc`` says about the server process: resident memory, open file descriptors, threads
and the processes it started. (Tool cards come from :mod:`tests.support.cards`.)
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SERVE_TIMEOUT_S = 60.0


def run_in_workdir(
    prefix: str, run: Callable[[Path], Coroutine[Any, Any, dict[str, Any]]]
) -> dict[str, Any]:
    """``run(workdir)`` in a temporary folder, where the server writes ``server.log``;
    when it fails, the log's tail goes to stderr before the error."""
    with tempfile.TemporaryDirectory(prefix=prefix) as workdir:
        try:
            return asyncio.run(run(Path(workdir)))
        except Exception:
            with contextlib.suppress(OSError):
                print((Path(workdir) / "server.log").read_text()[-3000:], file=sys.stderr)
            raise


def create_tenant(env: Mapping[str, str], name: str, quotas: Mapping[str, int]) -> str:
    """Create tenant ``name`` with quota overrides through the CLI; returns its API key."""
    flags = [f"--{key.replace('_', '-')}={value}" for key, value in quotas.items()]
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "tenants", "create", name, *flags],
        cwd=ROOT, env=dict(env), capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return done.stdout.strip().splitlines()[-1]


class Server:
    """``latm serve`` in a subprocess, its stderr (the logs) in a file."""

    def __init__(
        self,
        env: Mapping[str, str],
        log_path: Path,
        profile_out: Path | None = None,
        listen: str = "127.0.0.1:0",
    ) -> None:
        command = [sys.executable, "-m", "orchestrator.cli", "serve", "--listen", listen]
        if profile_out is not None:
            command[1:1] = ["-m", "cProfile", "-o", str(profile_out)]
        self.log = log_path.open("wb")
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=dict(env), stdout=subprocess.PIPE, stderr=self.log, text=True
        )
        self.address = self._wait_ready()

    def _wait_ready(self) -> str:
        assert self.process.stdout is not None
        began = time.monotonic()
        for line in self.process.stdout:  # blocks on a line; the server prints it once ready
            if line.startswith("latm: serving on "):
                return line.split("serving on ", 1)[1].strip()
            if time.monotonic() - began > SERVE_TIMEOUT_S:
                break
        self.stop()
        raise RuntimeError(f"latm serve did not start; see {self.log.name}")

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss_kb(self) -> int:
        return proc_status(self.pid).get("VmRSS", 0)

    def stop(self) -> int:
        """SIGTERM (a graceful drain), then SIGKILL after a minute; the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()
        return self.process.returncode


# ------------------------------------------------------------------- /proc, no psutil


def proc_status(pid: int) -> dict[str, int]:
    """The numeric fields of ``/proc/PID/status`` (kB for memory), empty once it is gone."""
    values: dict[str, int] = {}
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return values
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        first = rest.split()[:1]
        if first and first[0].isdigit():
            values[key] = int(first[0])
    return values


def open_fds(pid: int) -> int:
    """How many file descriptors ``pid`` holds open (-1 once it is gone)."""
    try:
        return sum(1 for _ in Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return -1


def fd_kinds(pid: int, named: tuple[str, ...] = ()) -> dict[str, int]:
    """``pid``'s open file descriptors by kind: socket, pipe, eventfd, eventpoll, file, and
    ``file:NAME`` for files whose name starts with one of ``named``."""
    kinds: dict[str, int] = {}
    try:
        links = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return kinds
    for link in links:
        try:
            target = os.readlink(link)
        except OSError:
            continue
        if target.startswith("/"):  # a path; else socket:[inode], pipe:[inode] ...
            name = Path(target).name
            kind = f"file:{name}" if name.startswith(named) else "file"
        else:
            kind, _, rest = target.partition(":")
            kind = rest.strip("[]") if kind == "anon_inode" else kind
        kinds[kind] = kinds.get(kind, 0) + 1
    return dict(sorted(kinds.items()))


def start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot ('' once it is gone), which
    tells a process apart from a later one that reuses its pid."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def descendants(pid: int) -> list[tuple[int, str, str]]:
    """Every process below ``pid``, zombies included: (pid, start time, command name)."""
    children: dict[int, list[tuple[int, str, str]]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name = stat[stat.find("(") + 1 : stat.rfind(")")]
        fields = stat[stat.rfind(")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append((int(entry.name), fields[19], name))
    found: list[tuple[int, str, str]] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child[0])
    return found


def still_running(processes: list[tuple[int, str, str]]) -> list[tuple[int, str, str]]:
    """Those of ``processes`` that still exist (same pid and start time)."""
    return [p for p in processes if start_time(p[0]) == p[1]]
