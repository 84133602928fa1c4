"""The zygote: the process that forks the workers, and nothing else.

A fork write-protects every page of the process that forks, so each page it
writes afterwards costs a copy-on-write fault. The template's loop (selectors,
JSON frames, per-call bookkeeping) writes a few hundred pages per call, so when
it forked the workers itself it paid those faults on every call. The zygote is a
copy of the template made once, when the template is warm (modules imported,
guards built), that only waits for "fork one" and answers with the new worker's
pid and pipes (passed as ``SCM_RIGHTS``); its loop touches a handful of pages.

It also reaps the workers (they are its children) and reports each one's exit
status and resource usage to the template, which supervises them exactly as
before: it writes their jobs, reads their pipes, enforces deadlines and kills
their process groups. When the template's end of the socket closes, the zygote
exits; its spares then read end-of-file on their job pipes and exit too.
"""

from __future__ import annotations

import contextlib
import gc
import os
import select
import selectors
import signal
import socket
import struct
import time
from collections import deque
from dataclasses import dataclass
from typing import NoReturn

from sandbox import worker
from sandbox.guards import Environment
from sandbox.hardening import die_with_parent

SPAWN = b"s"
PING = b"p"
PONG = b"P"
# The template pings its zygote this often when it has not heard from it; a zygote
# that leaves a ping unanswered for REPLY_TIMEOUT_S is taken as stopped or hung.
PING_INTERVAL_S = 1.0
_SPAWNED = struct.Struct(">ci")  # b"S", pid; four fds ride along
_REAPED = struct.Struct(">ciiddq")  # b"R", pid, wait status, user s, system s, max RSS KiB
STREAMS = ("stdout", "stderr", "result")
# A fork takes milliseconds; a zygote silent this long is stopped or hung, and the
# template gives up on it (and exits: the server starts a new one).
REPLY_TIMEOUT_S = 5.0


class ZygoteGone(Exception):
    """The zygote exited, or stopped answering."""


@dataclass(frozen=True)
class Spawned:
    """A forked worker, not yet given its job: its pid and the template's pipe ends."""

    pid: int
    job_fd: int
    streams: dict[int, str]  # read end -> "stdout" | "stderr" | "result"


@dataclass(frozen=True)
class Reaped:
    """A worker the zygote reaped: its ``wait4`` status and usage."""

    pid: int
    status: int
    ru_utime: float
    ru_stime: float
    ru_maxrss: int


class Zygote:
    """The template's handle on its zygote process."""

    def __init__(self, env: Environment) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        template = os.getpid()
        pid = os.fork()
        if pid == 0:  # the zygote; never returns
            die_with_parent(template)
            ours.close()
            _serve(env, theirs)
        theirs.close()
        ours.setblocking(False)
        self.pid = pid
        self.sock = ours
        # Reports read while waiting for a spawn reply, for the template's next pass.
        self.reaped: deque[Reaped] = deque()
        self.heard = time.monotonic()  # when the zygote last said anything
        self.pinged: float | None = None  # when the unanswered ping went out

    def fileno(self) -> int:
        return self.sock.fileno()

    def spawn(self) -> Spawned:
        """Fork a worker that waits for its one job (blocks for the reply)."""
        deadline = time.monotonic() + REPLY_TIMEOUT_S
        try:
            self.sock.sendall(SPAWN)
            while True:
                try:
                    message, fds, _, _ = socket.recv_fds(self.sock, 64, 4)
                except BlockingIOError:
                    if not select.select([self.sock], [], [], deadline - time.monotonic())[0]:
                        raise ZygoteGone("the zygote did not answer in time") from None
                    continue
                if not message:
                    raise ZygoteGone("the zygote exited")
                if self._note(message):
                    continue
                _, pid = _SPAWNED.unpack(message)
                job_fd, *reads = fds
                return Spawned(pid, job_fd, dict(zip(reads, STREAMS, strict=True)))
        except (OSError, ValueError) as exc:
            raise ZygoteGone(f"the zygote failed: {exc}") from exc

    def collect(self) -> list[Reaped]:
        """Every report that has arrived, without waiting; raises once the zygote is gone."""
        while True:
            try:
                message = self.sock.recv(64)
            except BlockingIOError:
                break
            except OSError as exc:
                raise ZygoteGone(f"the zygote's socket failed: {exc}") from exc
            if not message:
                raise ZygoteGone("the zygote exited")
            if not self._note(message):
                self.reaped.append(_reaped(message))
        reports = list(self.reaped)
        self.reaped.clear()
        return reports

    def _note(self, message: bytes) -> bool:
        """Take in a reap report or a pong (True); anything else is the caller's."""
        self.heard = time.monotonic()
        if message[:1] == PONG:
            self.pinged = None
            return True
        if message[:1] == b"R":
            self.reaped.append(_reaped(message))
            return True
        return False

    def check(self, now: float) -> float:
        """Ping the zygote when it has been quiet; raise ZygoteGone when a ping went
        unanswered too long. Returns the seconds until the next check is due."""
        if self.pinged is not None:
            if now - self.pinged >= REPLY_TIMEOUT_S:
                raise ZygoteGone(f"the zygote did not answer for {REPLY_TIMEOUT_S:g} s")
            return self.pinged + REPLY_TIMEOUT_S - now
        if now - self.heard < PING_INTERVAL_S:
            return self.heard + PING_INTERVAL_S - now
        try:
            self.sock.send(PING)
        except OSError as exc:
            raise ZygoteGone(f"the zygote's socket failed: {exc}") from exc
        self.pinged = now
        return REPLY_TIMEOUT_S

    def close(self) -> None:
        self.sock.close()
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, os.WNOHANG)


def channel() -> tuple[int, int]:
    """A one-way byte channel, ``(read end, write end)`` like ``os.pipe()``, made of a
    Unix socket pair. Any process of the same uid can open a pipe again through
    ``/proc/PID/fd/N`` where the kernel does not check its holder's dumpability
    (gVisor's does not), and so write a job into another worker or read its result;
    a socket cannot be opened that way at all."""
    read_end, write_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    read_end.shutdown(socket.SHUT_WR)
    write_end.shutdown(socket.SHUT_RD)
    return read_end.detach(), write_end.detach()


def _reaped(message: bytes) -> Reaped:
    _, pid, status, utime, stime, maxrss = _REAPED.unpack(message)
    return Reaped(pid, status, utime, stime, maxrss)


# --- the zygote process ----------------------------------------------------------


def _serve(env: Environment, sock: socket.socket) -> NoReturn:
    code = 0
    try:
        _Loop(env, sock).run()
    except BaseException:  # noqa: BLE001 - a zygote never returns into the template's code
        code = 70
        with contextlib.suppress(Exception):
            import traceback

            traceback.print_exc()
    finally:
        os._exit(code)


class _Loop:
    def __init__(self, env: Environment, sock: socket.socket) -> None:
        # Keep stdio and our socket only: the template's control socket, its selector and
        # its workers' pipes are not ours (a template that dies must be seen to die).
        keep = sock.fileno()
        os.closerange(3, keep)
        os.closerange(keep + 1, os.sysconf("SC_OPEN_MAX"))
        self.env = env
        self.sock = sock
        self.pid = os.getpid()
        wake_r, wake_w = channel()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        self.wake_r = wake_r
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        self.selector = selectors.DefaultSelector()
        self.selector.register(sock, selectors.EVENT_READ, self._on_request)
        self.selector.register(wake_r, selectors.EVENT_READ, self._on_sigchld)
        self.open = True
        gc.freeze()  # what the workers inherit stays out of the collector's way

    def run(self) -> None:
        while self.open:
            for key, _ in self.selector.select():
                key.data()

    def _on_request(self) -> None:
        requests = self.sock.recv(64)
        if not requests:
            self.open = False
            return
        for _ in range(requests.count(SPAWN)):
            self._spawn()
        if PING in requests:
            self.sock.sendall(PONG)

    def _spawn(self) -> None:
        pipes = {name: channel() for name in ("job", *STREAMS)}
        pid = os.fork()
        if pid == 0:  # the worker; never returns
            die_with_parent(self.pid)
            worker.serve_one(
                self.env,
                pipes["job"][0],
                pipes["result"][1],
                pipes["stdout"][1],
                pipes["stderr"][1],
            )
        with contextlib.suppress(OSError):  # the child may already have done it, or exited
            os.setpgid(pid, pid)
        ends = [pipes["job"][1], *(pipes[name][0] for name in STREAMS)]
        for name in STREAMS:
            os.set_blocking(pipes[name][0], False)
        try:
            socket.send_fds(self.sock, [_SPAWNED.pack(b"S", pid)], ends)
        finally:
            # The template holds its ends now; the worker holds the others. Nothing is
            # left here for the next worker to inherit.
            for read_end, write_end in pipes.values():
                os.close(read_end)
                os.close(write_end)

    def _on_sigchld(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while os.read(self.wake_r, 512):
                pass
        while True:
            try:
                pid, status, usage = os.wait4(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            try:
                self.sock.sendall(
                    _REAPED.pack(b"R", pid, status, usage.ru_utime, usage.ru_stime, usage.ru_maxrss)
                )
            except OSError:
                self.open = False
                return
