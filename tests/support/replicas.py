"""Several ``latm serve`` processes on one PostgreSQL database, each on its own loopback
port, started, signalled and restarted by the test (by pid). Their logs go to files in
the test's folder (a pipe would fill and stall a busy server) and are printed when a
test fails."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.nginx import free_port

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 90.0


@dataclass
class Replica:
    """One ``latm serve``: its port, its process (None once stopped) and its log files."""

    index: int
    port: int
    folder: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def stdout(self) -> Path:
        return self.folder / f"stdout.{self.starts}"

    @property
    def stderr(self) -> Path:
        return self.folder / f"stderr.{self.starts}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_records(self) -> Iterator[dict[str, Any]]:
        """The JSON log records of every start of this replica, in order."""
        for start in range(1, self.starts + 1):
            path = self.folder / f"stderr.{start}"
            for line in path.read_text(errors="replace").splitlines() if path.exists() else ():
                if line.startswith("{"):
                    yield json.loads(line)


@dataclass
class Replicas:
    """``count`` replicas of ``latm serve`` sharing ``database_url``."""

    folder: Path
    database_url: str
    count: int
    settings: dict[str, str] = field(default_factory=dict)
    members: list[Replica] = field(init=False)

    def __post_init__(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        script = self.folder / "models.json"
        script.write_text("[]")
        self.env = {
            **os.environ,
            "LATM_DATABASE_URL": self.database_url,
            "LATM_BACKEND": "process",
            "LATM_PROCESS_ISOLATION": os.environ.get("LATM_PROCESS_ISOLATION", "auto"),
            "LATM_USER_MODEL": f"scripted:{script}",
            "LATM_MAKER_MODEL": f"scripted:{script}",
            "LATM_LOG_FORMAT": "json",
            **self.settings,
        }
        self.members = []
        for index in range(self.count):
            folder = self.folder / f"replica{index}"
            folder.mkdir(exist_ok=True)
            self.members.append(Replica(index, free_port(), folder))

    def __getitem__(self, index: int) -> Replica:
        return self.members[index]

    @property
    def addresses(self) -> list[str]:
        return [member.address for member in self.members]

    def start(self, *indexes: int) -> None:
        """Start the replicas ``indexes`` (all by default) at once; return when each serves."""
        chosen = [self.members[i] for i in indexes or range(self.count)]
        for member in chosen:
            member.starts += 1
            with member.stdout.open("wb") as out, member.stderr.open("wb") as err:
                member.process = subprocess.Popen(
                    [sys.executable, "-m", "orchestrator.cli", "serve", "--listen", member.address],
                    env=self.env,
                    cwd=ROOT,
                    stdout=out,
                    stderr=err,
                )
        for member in chosen:
            self._wait_serving(member)

    def _wait_serving(self, member: Replica) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while "latm: serving on" not in member.stdout.read_text(errors="replace"):
            process = member.process
            assert process is not None
            if process.poll() is not None or time.monotonic() > deadline:
                self.kill(member.index)
                tail = member.stderr.read_text(errors="replace")[-3000:]
                pytest.fail(f"replica {member.index} did not start:\n{tail}")
            time.sleep(0.05)

    def ensure_running(self) -> None:
        """Start again every replica that an earlier test stopped."""
        stopped = [member.index for member in self.members if not member.running]
        if stopped:
            self.start(*stopped)

    def signal(self, index: int, signum: signal.Signals) -> None:
        process = self.members[index].process
        assert process is not None
        process.send_signal(signum)

    def kill(self, index: int) -> None:
        """SIGKILL replica ``index`` and reap it."""
        process = self.members[index].process
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=30)

    def wait(self, index: int, timeout_s: float) -> int:
        """The exit status of replica ``index`` once it ends."""
        process = self.members[index].process
        assert process is not None
        return process.wait(timeout=timeout_s)

    def stop_all(self) -> None:
        """SIGTERM every replica, then SIGKILL those still running after a while."""
        running = [m for m in self.members if m.running]
        for member in running:
            assert member.process is not None
            member.process.send_signal(signal.SIGTERM)
        for member in running:
            assert member.process is not None
            try:
                member.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                member.process.kill()
                member.process.wait(timeout=30)

    def log_tails(self) -> str:
        return "\n".join(
            f"--- replica {m.index} (start {m.starts}) stderr tail:\n"
            + (m.stderr.read_text(errors="replace")[-3000:] if m.stderr.exists() else "")
            for m in self.members
        )
