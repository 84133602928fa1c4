"""The template process: pre-warmed, single-threaded, forks one worker per call.

The gRPC server is multi-threaded and must never fork, so it starts this process
(``python -m sandbox.template --fd N``) and talks to it over a socket pair with
length-prefixed JSON frames. The template imports RestrictedPython and every
allowed module once, keeps compiled tools and call snippets by content hash, and
for each call has its zygote (:mod:`sandbox.zygote`, a copy of this process made
once it is warm) fork a worker that inherits the warm heap: a call costs a fork,
not an interpreter start. A ``selectors`` loop supervises the workers: it writes
their jobs (the compiled tool and call travel in the job), reads their stdout,
stderr and result pipes with caps, kills a worker's process group at its
wall-clock deadline or when output floods, and takes each one's exit status and
usage from the zygote, which reaps it with ``wait4``.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import itertools
import json
import marshal
import os
import selectors
import signal
import socket
import struct
import sys
import time
import traceback
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

from sandbox import worker
from sandbox.contract import (
    ErrorType,
    Outcome,
    Ready,
    Reply,
    Status,
    UnknownTool,
    UsageFrame,
    failure,
    no_usage,
)
from sandbox.errors import PolicyViolation, SourceSyntaxError
from sandbox.guards import Environment
from sandbox.hardening import make_undumpable
from sandbox.limits import Limits
from sandbox.policy import Allowlist, default_allowlist, source_id
from sandbox.restricted import compile_call, compile_tool
from sandbox.zygote import REPLY_TIMEOUT_S, Reaped, Spawned, Zygote, ZygoteGone

HEADER = struct.Struct(">I")
MAX_FRAME_BYTES = 64 * 1024 * 1024
MAX_TOOLS = 256
MAX_CALLS = 1024
READ_CHUNK = 65536
RESULT_OVERHEAD_BYTES = 64 * 1024
MIB = 1024 * 1024
STATUSES = frozenset(Status)


def encode_frame(message: Mapping[str, Any]) -> bytes:
    body = json.dumps(message, ensure_ascii=False).encode("utf-8", "surrogatepass")
    return HEADER.pack(len(body)) + body


class FrameBuffer:
    """Splits a byte stream into length-prefixed JSON frames."""

    def __init__(self) -> None:
        self._data = bytearray()

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        self._data += data
        frames = []
        while len(self._data) >= HEADER.size:
            (size,) = HEADER.unpack_from(self._data)
            if size > MAX_FRAME_BYTES:
                raise ValueError(f"frame of {size} bytes exceeds {MAX_FRAME_BYTES}")
            if len(self._data) < HEADER.size + size:
                break
            body = bytes(self._data[HEADER.size : HEADER.size + size])
            del self._data[: HEADER.size + size]
            frames.append(json.loads(body))
        return frames


class LRU(OrderedDict[str, Any]):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def put(self, key: str, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)

    def find(self, key: str) -> Any:
        value = self.get(key)
        if value is not None:
            self.move_to_end(key)
        return value


@dataclass
class Running:
    """A worker in flight and what has been read from it so far."""

    request_id: int
    pid: int
    started: float
    deadline: float
    limits: Limits
    streams: dict[int, str]
    output: dict[str, bytearray] = field(
        default_factory=lambda: {
            "stdout": bytearray(),
            "stderr": bytearray(),
            "result": bytearray(),
        }
    )
    killed: tuple[Status, str] | None = None
    answered: bool = False
    wait_status: int | None = None
    rusage: Any = None
    # The worker's result frame, parsed and checked once all its pipes closed.
    frame: Outcome | None = None
    # When a worker killed by the template must have been reaped by the zygote.
    reap_by: float | None = None


class Template:
    def __init__(
        self,
        control: socket.socket,
        allowlist: Allowlist,
        prefork: int = 2,
        keep: frozenset[str] = frozenset(),
        scratch: tuple[str, ...] = (),
    ) -> None:
        self.control = control
        # Scratch folders a worker could leave files in (when tool code may use the file
        # system at all: only with ``os`` allowed by the operator). They are emptied
        # between calls, so nothing written by one call is read by the next. Only the
        # sandbox's own private folders may be named here (the backends pass its tmpfs
        # mounts): never a folder the host shares.
        self.scratch = scratch
        self.keep = keep  # paths in scratch folders that are the server's (its socket)
        self._scratch_dirty = True
        self.prefork = prefork
        self.spares: deque[Spawned] = deque()  # forked workers waiting for a job
        self.allowlist = allowlist
        self.env = Environment(allowlist)
        self.tools = LRU(MAX_TOOLS)
        self.calls = LRU(MAX_CALLS)
        self.running: dict[int, Running] = {}
        self.frames = FrameBuffer()
        self.selector = selectors.DefaultSelector()
        self.open = True
        self._page_size = os.sysconf("SC_PAGE_SIZE")
        # Workers are forks of the zygote, a copy of this process as it is now: their
        # address space starts at this size (tools reach them inside their jobs).
        self._vm_bytes = self._address_space()
        self.zygote = Zygote(self.env)
        self._zygote_due = 0.0  # seconds until the zygote's liveness is checked again
        self.selector.register(control, selectors.EVENT_READ, self._on_control)
        self.selector.register(self.zygote, selectors.EVENT_READ, self._on_reaped)

    # --- main loop ----------------------------------------------------------------

    def serve(self) -> None:
        gc.freeze()  # keep the warm heap's pages shared with every forked worker
        self._send({"op": "ready", "pid": os.getpid()})
        while self.open or self.running:
            # Reports the zygote sent while a spawn waited for its reply are already read.
            timeout = 0.0 if self.zygote.reaped else self._next_timeout()
            for key, _ in self.selector.select(timeout):
                callback: Callable[[], None] = key.data
                try:
                    callback()
                except Exception:  # noqa: BLE001 - the loop must outlive any single call
                    traceback.print_exc()
            if self.zygote.reaped:
                self._on_reaped()
            self._check_zygote()
            self._enforce_deadlines()
            try:
                self._scrub_if_idle()
            except Exception:  # noqa: BLE001 - the loop must outlive any single call
                traceback.print_exc()
            self._refill_spares()
        for spare in self.spares:
            kill_worker(spare.pid)
        for run in list(self.running.values()):
            self._kill(run, (Status.CRASHED, "the sandbox server went away"))
        self.zygote.close()

    def _check_zygote(self) -> None:
        try:
            self._zygote_due = self.zygote.check(time.monotonic())
        except ZygoteGone as exc:
            self._lost_zygote(exc)

    def _next_timeout(self) -> float:
        deadlines = [
            r.deadline for r in self.running.values() if r.killed is None and not r.answered
        ]
        deadlines += [
            r.reap_by
            for r in self.running.values()
            if r.reap_by is not None and r.wait_status is None
        ]
        now = time.monotonic()
        return max(0.0, min([now + self._zygote_due, *deadlines]) - now)

    def _send(self, message: Reply | UnknownTool | Ready) -> None:
        if self.open:
            try:
                self.control.sendall(encode_frame(message))
            except OSError:
                self.open = False

    # --- requests -----------------------------------------------------------------

    def _on_control(self) -> None:
        try:
            data = self.control.recv(READ_CHUNK * 4)
        except OSError:
            data = b""
        if not data:
            self.open = False
            self.selector.unregister(self.control)
            return
        for message in self.frames.feed(data):
            handler = {"load": self._load, "exec": self._exec, "ping": self._ping}.get(
                message.get("op", "")
            )
            if handler is None:
                continue
            try:
                handler(message)
            except Exception as exc:  # noqa: BLE001 - every request gets an answer, or it hangs
                traceback.print_exc()
                self._send({"id": message.get("id"), **_internal_failure(message["op"], exc)})

    def _ping(self, message: dict[str, Any]) -> None:
        """The server's liveness check: answered from the loop, so a template that is
        stopped, or stuck (on a stopped zygote), stays silent."""
        self._send({"id": message["id"], "status": Status.OK})

    def _load(self, message: dict[str, Any]) -> None:
        source: str = message["source"]
        tool_id = source_id(source)
        reply: Reply = {"id": message["id"], "tool_id": tool_id, "status": Status.OK}
        if self.tools.find(tool_id) is None:
            try:
                self.tools.put(tool_id, marshal.dumps(compile_tool(source, self.allowlist)))
            except (PolicyViolation, SourceSyntaxError) as exc:
                reply.update(_compile_failure(exc))
        self._send(reply)

    def _compiled_call(self, text: str) -> tuple[bytes, bool]:
        """Call code as (marshal data, is_expression), compiled once per distinct text."""
        compiled = self.calls.find(text)
        if compiled is None:
            code = compile_call(text, self.allowlist)
            compiled = (marshal.dumps(code.code), code.is_expression)
            self.calls.put(text, compiled)
        return compiled

    def _exec(self, message: dict[str, Any]) -> None:
        request_id = message["id"]
        tool_id = message.get("tool_id") or ""
        tool_blob = self.tools.find(tool_id) if tool_id else b""
        if tool_blob is None:
            self._send({"id": request_id, "unknown_tool": tool_id})
            return
        call_blob, is_expression = b"", False
        if message.get("call"):
            try:
                call_blob, is_expression = self._compiled_call(message["call"])
            except (PolicyViolation, SourceSyntaxError) as exc:
                self._send(
                    {
                        "id": request_id,
                        **_compile_failure(exc),
                        "usage": no_usage(),
                        "stdout": "",
                        "stderr": "",
                    }
                )
                return
        limits = Limits(**message["limits"])
        job = worker.encode_job(
            tool_blob,
            call_blob,
            call_is_expression=is_expression,
            entrypoint=message.get("entrypoint") or "",
            args_json=message.get("args_json") or "",
            limits=limits,
            address_space_bytes=self._vm_bytes + limits.memory_mb * MIB,
            describe=bool(message.get("describe")),
        )
        self._start(request_id, job, limits)

    def _scrub_if_idle(self) -> None:
        """Empty the scratch folders if a call used them and none runs now. (A worker
        answered but not yet reaped has been sent SIGKILL: it writes nothing more.)"""
        if (
            self.scratch
            and self._scratch_dirty
            and all(run.answered for run in self.running.values())
        ):
            scrub(self.scratch, self.keep)
            self._scratch_dirty = False

    def _address_space(self) -> int:
        with open("/proc/self/statm", "rb") as statm:
            return int(statm.read().split()[0]) * self._page_size

    # --- workers ------------------------------------------------------------------

    def _spawn(self) -> Spawned:
        """A worker that waits for its one job (a pre-forked spare), from the zygote."""
        try:
            return self.zygote.spawn()
        except ZygoteGone as exc:
            self._lost_zygote(exc)

    def _refill_spares(self) -> None:
        # Forking competes with running workers for the CPU, so spares are made
        # when no call is in flight (or when none is left at all).
        busy = any(not run.answered for run in self.running.values())
        while self.open and len(self.spares) < self.prefork and not (busy and self.spares):
            self.spares.append(self._spawn())

    def _start(self, request_id: int, job: bytes, limits: Limits) -> None:
        self._scrub_if_idle()  # before this call starts, when no other call is running
        self._scratch_dirty = True
        spare = self.spares.popleft() if self.spares else self._spawn()
        started = time.monotonic()
        run = Running(
            request_id,
            spare.pid,
            started,
            started + limits.timeout_ms / 1000,
            limits,
            streams=spare.streams,
        )
        self.running[spare.pid] = run
        for fd in spare.streams:
            self.selector.register(
                fd, selectors.EVENT_READ, lambda fd=fd, r=run: self._on_stream(r, fd)
            )
        try:
            # Blocking: the spare is waiting in read(), so large jobs flow straight through.
            view = memoryview(job)
            while view:
                view = view[os.write(spare.job_fd, view) :]
        except OSError:
            pass  # the spare died before its job: reaping reports it as crashed
        finally:
            os.close(spare.job_fd)

    def _on_stream(self, run: Running, fd: int) -> None:
        if fd not in run.streams:
            return  # a stale event: the stream was drained and closed this iteration
        try:
            data = os.read(fd, READ_CHUNK)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._close_stream(run, fd)
            return
        name = run.streams[fd]
        buffer = run.output[name]
        buffer += data
        limits = run.limits
        if name == "result":
            if len(buffer) > limits.max_result_bytes + RESULT_OVERHEAD_BYTES:
                self._kill(
                    run,
                    (Status.OUTPUT_LIMIT, f"the result exceeded {limits.max_result_bytes} bytes"),
                )
            return
        total = len(run.output["stdout"]) + len(run.output["stderr"])
        if total > limits.max_output_bytes:
            self._kill(
                run,
                (
                    Status.OUTPUT_LIMIT,
                    f"stdout and stderr exceeded {limits.max_output_bytes} bytes",
                ),
            )

    def _close_stream(self, run: Running, fd: int) -> None:
        self.selector.unregister(fd)
        os.close(fd)
        del run.streams[fd]
        self._maybe_finish(run)

    def _kill(self, run: Running, reason: tuple[Status, str]) -> None:
        if run.killed is None and run.wait_status is None:
            run.killed = reason
            run.reap_by = time.monotonic() + REPLY_TIMEOUT_S
        kill_worker(run.pid, reaped=run.wait_status is not None)

    def _enforce_deadlines(self) -> None:
        now = time.monotonic()
        for run in list(self.running.values()):
            if run.wait_status is None and run.reap_by is not None and now >= run.reap_by:
                # SIGKILL is reaped at once: the zygote is stopped or hung.
                self._lost_zygote(ZygoteGone("the zygote did not reap a killed worker"))
            if (
                run.killed is None
                and not run.answered
                and run.wait_status is None
                and now >= run.deadline
            ):
                self._kill(
                    run,
                    (Status.TIMEOUT, f"wall-clock limit of {run.limits.timeout_ms} ms exceeded"),
                )

    def _on_reaped(self) -> None:
        try:
            reports = self.zygote.collect()
        except ZygoteGone as exc:
            self._lost_zygote(exc)
            return
        for report in reports:
            self._reaped(report)

    def _reaped(self, report: Reaped) -> None:
        run = self.running.get(report.pid)
        if run is None:
            self._forget_spare(report.pid)
            return
        run.wait_status, run.rusage = report.status, report
        if run.answered:
            del self.running[report.pid]
            return
        # Anything the worker left behind in its group goes with it.
        kill_worker(report.pid, reaped=True)
        for fd in list(run.streams):
            self._drain(run, fd)
        self._maybe_finish(run)

    def _lost_zygote(self, exc: Exception) -> NoReturn:
        """Without its zygote the template can neither start nor reap a worker: it kills
        what it started and exits, and the server starts a new template (the calls in
        flight are answered as crashed)."""
        print(f"sandbox template: {exc}; exiting", file=sys.stderr, flush=True)
        for spare in self.spares:
            kill_worker(spare.pid)
        for pid, run in self.running.items():
            kill_worker(pid, reaped=run.wait_status is not None)
        os._exit(1)

    def _forget_spare(self, pid: int) -> None:
        for spare in [s for s in self.spares if s.pid == pid]:
            self.spares.remove(spare)
            for fd in (spare.job_fd, *spare.streams):
                with contextlib.suppress(OSError):
                    os.close(fd)

    def _drain(self, run: Running, fd: int) -> None:
        while fd in run.streams:
            try:
                data = os.read(fd, READ_CHUNK)
            except BlockingIOError:
                # Only a process that escaped its group could still hold the pipe.
                self._close_stream(run, fd)
                return
            if not data:
                self._close_stream(run, fd)
                return
            run.output[run.streams[fd]] += data

    def _maybe_finish(self, run: Running) -> None:
        if run.streams or run.answered:
            return
        if run.frame is None and run.killed is None:
            run.frame = _result_frame(run.output["result"])
        if run.wait_status is None:
            # All pipes closed but not yet reaped: answer now if the worker sent a
            # complete result, and make sure the process is gone.
            if run.killed is not None or run.frame is None:
                return
            kill_worker(run.pid)
        run.answered = True
        self._send({"id": run.request_id, **_outcome(run)})
        if run.wait_status is not None:
            del self.running[run.pid]


def kill_worker(pid: int, reaped: bool = False) -> None:
    """SIGKILL a worker's process group and, until it is reaped (its pid could be reused
    after), the worker itself: its seccomp filter keeps it in its group, and killing
    it by pid too does not rely on that."""
    for kill in (os.killpg,) if reaped else (os.killpg, os.kill):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            kill(pid, signal.SIGKILL)


def scrub(roots: tuple[str, ...], keep: frozenset[str]) -> None:
    """Remove everything under ``roots`` except the paths in ``keep`` (and the folders
    that lead to them). Mount points are left alone. Best effort: what cannot be
    removed stays, and nothing here may stop the template."""
    for root in roots:
        try:
            _scrub_folder(root, keep, os.stat(root).st_dev)
        except Exception:  # noqa: BLE001 - whatever a worker left, the template lives on
            traceback.print_exc()


def _scrub_folder(folder: str, keep: frozenset[str], device: int) -> None:
    with os.scandir(folder) as entries:
        names = [(entry.path, entry.is_dir(follow_symlinks=False)) for entry in entries]
    for path, is_dir in names:
        if path in keep:
            continue
        with contextlib.suppress(OSError):
            if os.lstat(path).st_dev != device:
                continue  # a mount point (the process backend's socket folder)
            if not is_dir:
                os.unlink(path)
            elif any(k.startswith(path + "/") for k in keep):
                _scrub_folder(path, keep, device)
            else:
                _remove_tree(path)


def _remove_tree(path: str) -> None:
    """Remove a folder and all it holds, after giving back the access a worker may have
    taken from its folders. Without recursion and with short paths: a worker may leave
    a tree thousands of levels deep (``rmtree`` recursed, and the paths outgrew
    PATH_MAX). Each subfolder is moved up next to ``path`` and emptied in turn."""
    parent = os.path.dirname(path)
    queue, emptied = [path], []
    while queue:
        folder = queue.pop()
        with contextlib.suppress(OSError):
            os.chmod(folder, 0o700)
        try:
            descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            for entry in os.scandir(descriptor):
                if entry.is_dir(follow_symlinks=False):
                    moved = os.path.join(parent, f".latm-scrub-{next(_SCRUBBED)}")
                    with contextlib.suppress(OSError):
                        os.rename(entry.name, moved, src_dir_fd=descriptor)
                        queue.append(moved)
                else:
                    with contextlib.suppress(OSError):
                        os.unlink(entry.name, dir_fd=descriptor)
        except OSError:
            pass
        finally:
            os.close(descriptor)
        emptied.append(folder)
    for folder in emptied:
        with contextlib.suppress(OSError):
            os.rmdir(folder)


_SCRUBBED = itertools.count()


def _outcome(run: Running) -> Outcome:
    limits = run.limits
    wall_ms = (time.monotonic() - run.started) * 1000
    usage: UsageFrame = {"wall_ms": round(wall_ms, 3), "cpu_ms": 0.0, "max_rss_kb": 0}
    if run.rusage is not None:
        usage["cpu_ms"] = round((run.rusage.ru_utime + run.rusage.ru_stime) * 1000, 3)
        usage["max_rss_kb"] = int(run.rusage.ru_maxrss)
    stdout = _text(run.output["stdout"], limits.max_output_bytes)
    stderr = _text(run.output["stderr"], limits.max_output_bytes)
    streams: Outcome = {"status": Status.OK, "stdout": stdout, "stderr": stderr, "usage": usage}
    status = run.wait_status or 0
    if run.killed is not None:
        kind, message = run.killed
        return {**streams, **failure(kind, _error_type(kind), message)}
    if os.WIFSIGNALED(status):
        return {**streams, **_signalled(os.WTERMSIG(status), limits)}
    frame = run.frame
    if frame is None:
        code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1
        message = f"the worker exited (code {code}) without a result"
        return {**streams, **failure(Status.CRASHED, ErrorType.WORKER_CRASHED, message)}
    reported = frame.pop("usage", None)
    if run.rusage is None and reported is not None:  # answered before reaping: its own figures
        usage["cpu_ms"], usage["max_rss_kb"] = reported["cpu_ms"], reported["max_rss_kb"]
    return {**streams, **frame}


def _signalled(signum: int, limits: Limits) -> Outcome:
    if signum == signal.SIGXCPU:
        message = f"CPU limit of {limits.cpu_seconds} s exceeded"
        return failure(Status.TIMEOUT, ErrorType.CPU_TIME, message)
    name = signal.Signals(signum).name if signum in signal.valid_signals() else str(signum)
    hint = " (out of memory?)" if signum == signal.SIGKILL else ""
    message = f"the worker was killed by {name}{hint}"
    return failure(Status.CRASHED, ErrorType.WORKER_CRASHED, message)


def _result_frame(data: bytearray) -> Outcome | None:
    """The worker's report, checked field by field: the worker is not trusted."""
    try:
        frame = json.loads(data)
    except (ValueError, RecursionError):
        return None
    if not isinstance(frame, dict) or frame.get("status") not in STATUSES:
        return None
    clean: Outcome = {"status": Status(frame["status"]), "usage": _reported_usage(frame)}
    if isinstance(frame.get("value_json"), str):
        clean["value_json"] = frame["value_json"]
    error = frame.get("error")
    if isinstance(error, dict):
        clean["error"] = {
            "type": str(error.get("type", ""))[:200],
            "message": str(error.get("message", ""))[:4000],
            "line": error["line"] if isinstance(error.get("line"), int) else 0,
            "origin": str(error.get("origin", ""))[:10],
        }
    return clean


def _reported_usage(frame: dict[str, Any]) -> UsageFrame:
    """The worker's own CPU and RSS figures (it is answered before it is reaped)."""
    usage = frame.get("usage")
    usage = usage if isinstance(usage, dict) else {}
    cpu = usage.get("cpu_ms")
    rss = usage.get("max_rss_kb")
    return {
        "wall_ms": 0.0,
        "cpu_ms": round(float(cpu), 3) if isinstance(cpu, int | float) and cpu >= 0 else 0.0,
        "max_rss_kb": int(rss) if isinstance(rss, int) and rss >= 0 else 0,
    }


def _compile_failure(exc: PolicyViolation | SourceSyntaxError) -> Outcome:
    if isinstance(exc, PolicyViolation):
        return failure(
            Status.POLICY_VIOLATION, ErrorType.POLICY_VIOLATION, str(exc), exc.line, exc.origin
        )
    return failure(Status.ERROR, ErrorType.SYNTAX_ERROR, str(exc), exc.line, exc.origin)


def _internal_failure(op: str, exc: Exception) -> Outcome:
    """The answer to a request the template failed to handle (a bug of ours, not the
    tool's): a load that did not happen, or a call that ran no code."""
    status = Status.ERROR if op == "load" else Status.CRASHED
    message = f"the sandbox failed: {type(exc).__name__}: {exc}"
    return {
        **failure(status, ErrorType.SANDBOX_ERROR, message),
        "tool_id": "",
        "usage": no_usage(),
        "stdout": "",
        "stderr": "",
    }


def _error_type(status: Status) -> ErrorType:
    """The error a call the template killed is reported under."""
    return {Status.TIMEOUT: ErrorType.TIMEOUT, Status.OUTPUT_LIMIT: ErrorType.OUTPUT_LIMIT}.get(
        status, ErrorType.WORKER_CRASHED
    )


def _text(data: bytearray, cap: int) -> str:
    return bytes(data[:cap]).decode("utf-8", "replace")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="LATM sandbox template process")
    parser.add_argument("--fd", type=int, required=True, help="control socket file descriptor")
    parser.add_argument("--allow-module", action="append", default=[])
    parser.add_argument("--prefork", type=int, default=2, help="spare workers kept forked")
    parser.add_argument(
        "--keep", action="append", default=[], help="a path in a scratch folder never removed"
    )
    parser.add_argument(
        "--scratch",
        action="append",
        default=[],
        help="a private scratch folder emptied between calls (the sandbox's own tmpfs only)",
    )
    args = parser.parse_args(argv)
    # Before any worker exists: neither this process nor the zygote and workers forked
    # from it are readable or writable through /proc by a worker (sandbox.hardening).
    make_undumpable()
    # The server decides when we stop (it closes the control socket once drained): a
    # SIGTERM or SIGINT sent to its whole process group (an init may forward one there)
    # must not kill the calls it is still draining.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    control = socket.socket(fileno=args.fd)
    allowlist = default_allowlist().with_modules(args.allow_module)
    Template(
        control,
        allowlist,
        prefork=args.prefork,
        keep=frozenset(args.keep),
        scratch=tuple(args.scratch),
    ).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
