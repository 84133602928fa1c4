"""The ``process`` backend: a sandbox server as a child process on a Unix socket.

Each tenant gets its own server process, started with an empty environment (no
secret of the orchestrator's reaches it) and, where the host allows, inside
Linux namespaces:

* ``bwrap`` (bubblewrap): new user, pid, network, ipc, uts and mount namespaces,
  no capabilities, a read-only view of only the directories Python needs, a
  private ``/tmp``, uid 65534 inside. Reported as ``process+bwrap``.
* ``unshare``: new network, pid, ipc and uts namespaces. ``process+unshare``.
* neither: rlimits and the in-process policy only, with a warning. ``process``.

The server's own defences (policy, RestrictedPython, fork per call, rlimits)
apply in every case. Every result names the isolation it really ran under.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from enum import StrEnum
from pathlib import Path
from typing import IO

import latm.sandbox

import sandbox
from orchestrator.errors import InvalidRequest, SandboxUnavailable
from orchestrator.sandboxes.base import Sandbox, SandboxBackend
from orchestrator.sandboxes.client import SILENT_S, SandboxClient
from orchestrator.sandboxes.values import IsolationLevel
from orchestrator.telemetry import SANDBOX_STARTS

log = logging.getLogger(__name__)

NOBODY = 65534
START_TIMEOUT_S = 30.0
SCRATCH_BYTES = 16 * 1024 * 1024  # each of /tmp and /dev/shm, as the docker backend's /tmp
SCRATCH_FOLDERS = (Path("/tmp"), Path("/dev/shm"))  # noqa: S108 - the sandbox's own tmpfs


class ProcessIsolation(StrEnum):
    AUTO = "auto"
    BWRAP = "bwrap"
    UNSHARE = "unshare"
    NONE = "none"


LABELS = {
    ProcessIsolation.BWRAP: ("process+bwrap", IsolationLevel.NAMESPACES),
    ProcessIsolation.UNSHARE: ("process+unshare", IsolationLevel.NAMESPACES),
    ProcessIsolation.NONE: ("process", IsolationLevel.RLIMITS),
}


def detect_isolation() -> ProcessIsolation:
    """The strongest isolation that really works on this host."""
    for mode in (ProcessIsolation.BWRAP, ProcessIsolation.UNSHARE):
        if _works([*_wrapper(mode, Path("/"), []), "true"]):
            return mode
    return ProcessIsolation.NONE


def _works(command: list[str]) -> bool:
    try:
        done = subprocess.run(command, env={}, capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _python_roots() -> list[Path]:
    """Directories the sandbox server's interpreter and packages live in."""
    roots = {Path(sys.prefix), Path(sys.base_prefix), Path(sys.exec_prefix)}
    # latm.sandbox, not latm: that is a namespace package, without a folder of its own.
    for package in (sandbox, latm.sandbox):
        roots.add(Path(package.__file__ or "").resolve().parent)
    # The venv's python is a symlink into the base installation.
    roots.add(Path(os.path.realpath(sys.executable)).parent.parent)
    return sorted(r for r in roots if str(r) not in ("/", "/usr"))


# The first act of a server started without bwrap: ask the kernel for SIGKILL when this
# process (the orchestrator) dies, check it did not die already, then become the command.
# (In the child rather than a preexec_fn, which would force a plain fork() in a process
# where gRPC threads run.) unshare's --kill-child passes the kill on to its child.
_DIE_WITH_PARENT = """
import ctypes, os, signal, sys
ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
if os.getppid() != int(sys.argv[1]):
    sys.exit(1)
os.execvp(sys.argv[2], sys.argv[2:])
"""


def _dies_with_this_process(command: list[str]) -> list[str]:
    """``command``, started so that it is killed when this process dies (even by SIGKILL)."""
    return [sys.executable, "-I", "-c", _DIE_WITH_PARENT, str(os.getpid()), *command]


def in_scratch(roots: list[Path]) -> list[Path]:
    """The roots that lie in a folder the sandbox has its own scratch tmpfs at."""
    return [root for root in roots if any(root.is_relative_to(s) for s in SCRATCH_FOLDERS)]


def install_in_scratch() -> list[Path]:
    """Where this Python install shows in a bwrap sandbox's scratch folders (nothing,
    unless the checkout or venv lives under /tmp or /dev/shm)."""
    return in_scratch(_python_roots())


def _wrapper(mode: ProcessIsolation, socket_dir: Path, roots: list[Path]) -> list[str]:
    if mode is ProcessIsolation.BWRAP:
        command = [
            "bwrap",
            "--unshare-all",
            # The server is PID 1 of the sandbox: bubblewrap's own reaper would be a
            # dumpable process of the sandbox's uid, whose memory a worker could write
            # through /proc/1/mem. The server is not dumpable (sandbox.hardening),
            # reaps orphans itself, and as PID 1 takes no signal from inside.
            "--as-pid-1",
            "--die-with-parent",
            "--new-session",
            "--cap-drop",
            "ALL",
            "--uid",
            str(NOBODY),
            "--gid",
            str(NOBODY),
            "--ro-bind",
            "/usr",
            "/usr",
            "--proc",
            "/proc",
            # bwrap covers /proc/sys only where it can; a sandbox started by root runs
            # as the host's uid 0 (mapped), to which writable sysctls would be open.
            "--ro-bind",
            "/proc/sys",
            "/proc/sys",
            "--ro-bind-try",
            "/proc/sysrq-trigger",
            "/proc/sysrq-trigger",
            "--dev",
            "/dev",
            # Scratch space is small and sized (an unsized tmpfs grows in the host's
            # memory); the root and /dev are made read-only below, once all is mounted.
            "--size",
            str(SCRATCH_BYTES),
            "--tmpfs",
            "/dev/shm",  # noqa: S108 - the sandbox's own sized tmpfs
            "--size",
            str(SCRATCH_BYTES),
            "--tmpfs",
            "/tmp",  # noqa: S108 - the sandbox's own empty tmpfs
            "--clearenv",
            "--setenv",
            "PATH",
            "/usr/bin:/bin",
            "--chdir",
            "/",
        ]
        for link in ("bin", "lib", "lib64", "sbin"):
            if Path(f"/{link}").is_symlink():
                command += ["--symlink", os.readlink(f"/{link}"), f"/{link}"]
            elif Path(f"/{link}").is_dir():
                command += ["--ro-bind", f"/{link}", f"/{link}"]
        command += ["--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache"]
        for root in roots:
            command += ["--ro-bind", str(root), str(root)]
        if socket_dir != Path("/"):
            command += ["--bind", str(socket_dir), str(socket_dir)]
        # bwrap's own root and /dev are writable tmpfs mounts unless remounted.
        command += ["--remount-ro", "/dev", "--remount-ro", "/"]
        return [*command, "--"]
    if mode is ProcessIsolation.UNSHARE:
        command = ["unshare", "--net", "--pid", "--fork", "--ipc", "--uts", "--kill-child"]
        if os.geteuid() != 0:
            command += ["--user", "--map-root-user"]
        return [*command, "--"]
    return []


class _ServerProcess:
    """One sandbox server process and its private socket folder."""

    def __init__(self, mode: ProcessIsolation, prefork: int, allow_modules: list[str]) -> None:
        self.mode = mode
        self.dir = Path(tempfile.mkdtemp(prefix="latm-sandbox-"))
        self.socket = self.dir / "sandbox.sock"
        self._log: IO[bytes] = tempfile.TemporaryFile(prefix="latm-sandbox-log-")  # noqa: SIM115
        inner = [
            sys.executable,
            "-I",
            "-m",
            "sandbox",
            "--listen",
            f"unix:{self.socket}",
            f"--prefork={prefork}",
            *(f"--allow-module={m}" for m in allow_modules),
        ]
        roots = _python_roots()
        if mode is ProcessIsolation.BWRAP:
            # bwrap's own tmpfs mounts, emptied between calls. Never in the other modes:
            # there /tmp is the host's. An install under /tmp (a checkout there) is bound
            # into the sandbox's /tmp: the server's own, never emptied.
            inner += ["--scratch=/tmp", "--scratch=/dev/shm"]
            inner += [f"--keep={root}" for root in in_scratch(roots)]
        self.command = _wrapper(mode, self.dir, roots) + inner
        if mode is not ProcessIsolation.BWRAP:  # bwrap has --die-with-parent
            self.command = _dies_with_this_process(self.command)
        self.process: subprocess.Popen[bytes] | None = None
        self.client: SandboxClient | None = None

    async def start(self) -> SandboxClient:
        # An empty environment: nothing of the orchestrator's (API keys, database
        # URLs) is inherited. bwrap also clears what it would pass on.
        SANDBOX_STARTS.labels("process").inc()
        self.process = subprocess.Popen(
            self.command,
            env={},
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
            start_new_session=True,
        )
        self.client = SandboxClient(f"unix:{self.socket}")
        try:
            await self.client.wait_ready(START_TIMEOUT_S, alive=self.alive)
        except SandboxUnavailable as exc:
            tail = self.log_tail()
            await self.stop()
            raise SandboxUnavailable(f"{exc}; its log ends: {tail}") from None
        self._lock_socket_dir()
        return self.client

    def _lock_socket_dir(self) -> None:
        """Once the server listens, its folder (a host folder, bound into the sandbox)
        stops being writable from inside: tool code could otherwise fill the host's
        disk through it or replace the socket. The sandbox's uid maps to ours, so it
        owns the folder; only root can give the folder to another owner."""
        if self.mode is ProcessIsolation.NONE or os.geteuid() != 0:
            return
        os.chown(self.dir, NOBODY, NOBODY)
        os.chmod(self.dir, 0o700)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, size: int = 2000) -> str:
        self._log.seek(0, os.SEEK_END)
        end = self._log.tell()
        self._log.seek(max(0, end - size))
        return self._log.read().decode("utf-8", "replace").strip()

    async def stop(self, kill: bool = False) -> None:
        """Stop the server: drained on SIGTERM, or at once (``kill``: it is not answering)."""
        if self.client is not None:
            await self.client.close()
        if kill and self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                await asyncio.to_thread(self.process.wait, 5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, 9)
                await asyncio.to_thread(self.process.wait)
        self._log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class ProcessBackend(SandboxBackend):
    """One sandbox server process per tenant, reused across that tenant's calls."""

    name = "process"

    def __init__(
        self,
        isolation: ProcessIsolation | str = ProcessIsolation.AUTO,
        min_isolation: IsolationLevel = IsolationLevel.RLIMITS,
        prefork: int = 2,
        allow_modules: list[str] | None = None,
    ) -> None:
        super().__init__(min_isolation)
        mode = ProcessIsolation(isolation)
        if mode is ProcessIsolation.AUTO:
            mode = detect_isolation()
        elif mode is not ProcessIsolation.NONE and not _works(
            [*_wrapper(mode, Path("/"), []), "true"]
        ):
            raise SandboxUnavailable(f"isolation '{mode}' was asked for but does not work here")
        if mode is ProcessIsolation.NONE:
            log.warning(
                "no Linux namespaces available (install bubblewrap): sandboxes run with "
                "rlimits and the in-process policy only"
            )
        self.mode = mode
        self.prefork = prefork
        self.allow_modules = allow_modules or []
        self._servers: dict[str, _ServerProcess] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self.check_isolation()

    @property
    def isolation(self) -> tuple[str, IsolationLevel]:
        return LABELS[self.mode]

    async def acquire(self, tenant: str) -> Sandbox:
        if not tenant:
            raise InvalidRequest("a tenant is required")
        lock = self._locks.setdefault(tenant, asyncio.Lock())
        async with lock:
            server = self._servers.get(tenant)
            if server is not None and not server.alive():
                log.warning("sandbox server of tenant %s died; starting a new one", tenant)
                await server.stop()
                server = None
            if server is None:
                server = _ServerProcess(self.mode, self.prefork, self.allow_modules)
                await server.start()
                self._servers[tenant] = server
        assert server.client is not None
        return Sandbox(tenant, server.client, self.isolation[0])

    def stats(self) -> dict[str, int]:
        return {"servers": sum(server.alive() for server in self._servers.values())}

    def server_pid(self, tenant: str) -> int | None:
        """The sandbox server's process id (for tests and diagnostics)."""
        server = self._servers.get(tenant)
        return server.process.pid if server and server.process else None

    async def release(self, sandbox: Sandbox, faulted: bool) -> None:
        """A fault killed only that call's worker, and the server stays, unless the
        server itself stopped answering: then it is killed and the next acquire starts
        a new one. (A server that died is replaced on the next acquire.)"""
        if not faulted:
            return
        server = self._servers.get(sandbox.tenant)
        if server is None or server.client is not sandbox.client:
            return
        if not server.alive() or await server.client.healthy(SILENT_S):
            return
        log.warning("sandbox server of tenant %s stopped answering; replacing it", sandbox.tenant)
        async with self._locks.setdefault(sandbox.tenant, asyncio.Lock()):
            if self._servers.get(sandbox.tenant) is server:
                del self._servers[sandbox.tenant]
                await server.stop(kill=True)

    async def close(self) -> None:
        servers, self._servers = self._servers, {}
        await asyncio.gather(*(server.stop() for server in servers.values()))
