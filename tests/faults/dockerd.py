"""A private Docker engine, so a test may kill and restart it.

The machine's own engine serves other test runs at the same time: restarting it would break
them. :class:`PrivateEngine` runs a second ``dockerd`` with everything of its own (data root,
exec root, pid file, API socket and the containerd it starts below its exec root), no bridge
and no iptables rules, so nothing it does reaches the main engine. Only processes it started
are ever signalled, by pid.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO, Any

import docker


class PrivateEngine:
    """A ``dockerd`` below a fresh folder in ``/tmp`` (short: it holds Unix sockets)."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="latm-dockerd-"))
        self.url = f"unix://{self.folder}/docker.sock"
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] = (self.folder / "dockerd.log").open("ab")
        runtimes: dict[str, Any] = {}
        if shutil.which("runsc"):  # as the main engine registers it (scripts/docker_engine.sh)
            runtimes["runsc"] = {
                "path": shutil.which("runsc"),
                "runtimeArgs": ["--network=none", "--host-uds=open"],
            }
        (self.folder / "daemon.json").write_text(json.dumps({"runtimes": runtimes}))

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def client(self, timeout_s: int = 30) -> docker.DockerClient:
        return docker.DockerClient(base_url=self.url, timeout=timeout_s)

    def start(self, timeout_s: float = 60.0) -> None:
        """Start ``dockerd``; return once its API answers."""
        root = self.folder
        self.process = subprocess.Popen(
            [
                "dockerd",
                f"--config-file={root / 'daemon.json'}",
                f"--data-root={root / 'data'}",
                f"--exec-root={root / 'exec'}",
                f"--pidfile={root / 'dockerd.pid'}",
                f"--host={self.url}",
                "--bridge=none",
                "--iptables=false",
                "--ip6tables=false",
                "--ip-masq=false",
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout_s
        while not self.answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the private dockerd did not start: {self.log_tail()}")
            time.sleep(0.1)

    def answers(self) -> bool:
        try:
            return bool(self.client(timeout_s=2).ping())
        except docker.errors.DockerException:
            return False

    def signal(self, signum: int, timeout_s: float = 60.0) -> None:
        """Send ``signum`` to ``dockerd``; wait until it and its containerd have exited."""
        assert self.process is not None
        containerd = self.folder / "exec" / "containerd" / "containerd.pid"
        child = int(containerd.read_text()) if containerd.exists() else None
        self.process.send_signal(signum)
        self.process.wait(timeout_s)
        # containerd dies with dockerd, and is reaped by init a moment later; until then a
        # new dockerd takes the zombie for a live containerd and waits for it in vain.
        deadline = time.monotonic() + timeout_s
        while child is not None and Path(f"/proc/{child}").exists():
            if time.monotonic() > deadline:
                raise RuntimeError(f"containerd (pid {child}) did not exit with dockerd")
            time.sleep(0.05)

    def load_image(self, tag: str) -> None:
        """Copy ``tag`` from the main engine into this one."""
        saved = docker.from_env(timeout=300).images.get(tag).save(named=tag)
        self.client(timeout_s=300).images.load(saved)

    def log_tail(self, size: int = 3000) -> str:
        path = self.folder / "dockerd.log"
        return path.read_bytes()[-size:].decode("utf-8", "replace")

    def destroy(self) -> None:
        """Stop the engine (its containers with it), then anything of it that survived,
        and remove its folder."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.signal(signal.SIGTERM)
            if self.process.poll() is None:
                self.signal(signal.SIGKILL)
        for pid in self._survivors():  # containerd and shims of ours, by pid
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for mount in reversed(self._mounts()):
            subprocess.run(["umount", "-l", mount], check=False, capture_output=True)
        self._log.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def _survivors(self) -> list[int]:
        """Processes whose command line names this engine's folder."""
        found = []
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            with contextlib.suppress(OSError):
                if str(self.folder).encode() in cmdline.read_bytes():
                    found.append(int(cmdline.parent.name))
        return [pid for pid in found if pid != os.getpid()]

    def _mounts(self) -> list[str]:
        """Mount points below this engine's folder, outermost first."""
        points = []
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            point = line.split()[4].encode().decode("unicode_escape")
            if point == str(self.folder) or point.startswith(f"{self.folder}/"):
                points.append(point)
        return sorted(points, key=len)
