"""The child side of a fork: one worker process runs one call, then exits.

Everything here runs after ``fork()`` in the template process. The worker drops
what it inherited (file descriptors, signal handlers), applies its rlimits, runs
the tool module and the call in a fresh namespace, writes one JSON result frame
to its result pipe and leaves with ``os._exit`` (no clean-up that tool code could
hook into). Nothing it does survives it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import marshal
import os
import resource
import signal
import struct
import sys
from dataclasses import dataclass
from types import CodeType
from typing import Any, NoReturn

from sandbox import jsonio, seccomp
from sandbox.contract import ErrorType, Outcome, Status, failure
from sandbox.errors import GuardError, ValueConversionError
from sandbox.guards import Environment
from sandbox.limits import MAX_FILE_SIZE_BYTES, MAX_OPEN_FILES, Limits
from sandbox.restricted import CompiledCall
from sandbox.schema import input_schema

RESULT_FD = 3
WORKER_NICENESS = 5
JOB_FD = 4
_HEADER = struct.Struct(">I")
MAX_ARGS_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class Job:
    """What a worker needs to run one call."""

    tool_code: CodeType | None
    call: CompiledCall | None
    entrypoint: str
    args_json: str
    limits: Limits
    address_space_bytes: int
    # Describe the entrypoint (its parameters' JSON Schema) instead of calling it.
    describe: bool = False

    def encode(self) -> bytes:
        return encode_job(
            marshal.dumps(self.tool_code) if self.tool_code is not None else b"",
            marshal.dumps(self.call.code) if self.call is not None else b"",
            call_is_expression=self.call.is_expression if self.call else False,
            entrypoint=self.entrypoint,
            args_json=self.args_json,
            limits=self.limits,
            address_space_bytes=self.address_space_bytes,
            describe=self.describe,
        )

    @classmethod
    def decode(cls, data: bytes) -> Job:
        parts = []
        offset = 0
        for _ in range(3):
            (size,) = _HEADER.unpack_from(data, offset)
            offset += _HEADER.size
            parts.append(data[offset : offset + size])
            offset += size
        meta = json.loads(parts[0])
        return cls(
            tool_code=marshal.loads(parts[1]) if parts[1] else None,  # noqa: S302 - from the template
            call=CompiledCall(marshal.loads(parts[2]), meta["call_is_expression"])  # noqa: S302
            if parts[2]
            else None,
            entrypoint=meta["entrypoint"],
            args_json=meta["args_json"],
            limits=Limits(**meta["limits"]),
            address_space_bytes=meta["address_space_bytes"],
            describe=bool(meta.get("describe")),
        )


def encode_job(
    tool_blob: bytes,
    call_blob: bytes,
    *,
    call_is_expression: bool,
    entrypoint: str,
    args_json: str,
    limits: Limits,
    address_space_bytes: int,
    describe: bool = False,
) -> bytes:
    """Serialise a job for the job pipe. Code objects travel as marshal data, template
    to worker only: the worker trusts the template, never the other way round. The
    template keeps each tool's and call's marshal data, so a call costs no dumps."""
    meta = json.dumps(
        {
            "entrypoint": entrypoint,
            "args_json": args_json,
            "limits": limits.to_dict(),
            "address_space_bytes": address_space_bytes,
            "call_is_expression": call_is_expression,
            "describe": describe,
        }
    ).encode()
    return b"".join(_HEADER.pack(len(part)) + part for part in (meta, tool_blob, call_blob))


def serve_one(
    env: Environment, job_fd: int, result_fd: int, stdout_fd: int, stderr_fd: int
) -> NoReturn:
    """Wait for one job on ``job_fd``, run it in this freshly forked process, exit.

    Never returns. The process was forked from the template, possibly before the
    job existed (a pre-forked spare); either way it runs exactly one call.
    """
    code = 70
    try:
        _isolate(job_fd, result_fd, stdout_fd, stderr_fd)
        # Workers (and the spares pre-faulting their memory) yield the CPU to the server
        # and template that supervise them: tool code never starves its own supervisor.
        os.nice(WORKER_NICENESS)
        arm_tripwire = env.tripwire.install(_tripped)
        _prefault(env)
        job = Job.decode(_read_all(JOB_FD))
        _apply_rlimits(job)
        # From here on every audit event is judged; the hook cannot be removed.
        arm_tripwire((job.tool_code, job.call.code if job.call else None))
        _finish(_execute(job, env))
        code = 0
    except BaseException:  # noqa: BLE001 - nothing may escape into the template's loop
        code = 70
    finally:
        os._exit(code)


def _finish(frame: Outcome) -> None:
    """Write the result frame, with this process's usage, and close the pipes. (The
    template times the call's wall clock itself.)"""
    _flush_streams()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    frame["usage"] = {
        "wall_ms": 0.0,
        "cpu_ms": (usage.ru_utime + usage.ru_stime) * 1000,
        "max_rss_kb": usage.ru_maxrss,
    }
    _write_frame(frame)
    # Closing the pipes lets the template answer now, before the kernel tears
    # this address space down; it then kills and reaps the process group.
    os.closerange(0, JOB_FD + 1)


def _tripped(event: str) -> NoReturn:
    """The tripwire's verdict: the call ends here, as a policy violation."""
    try:
        _finish(
            _failure(
                Status.POLICY_VIOLATION,
                ErrorType.TRIPWIRE,
                f"the sandbox stopped the call: tool code caused the audit event {event!r}, "
                "which it never does legitimately",
                "tool",
            )
        )
    finally:
        os._exit(0)


# Built once, in the template that imports this module, and inherited by every worker.
_SECCOMP = seccomp.Installer()
_WARMUP = compile("result = [str(n) for n in range(64)]", "<warmup>", "exec")


def _prefault(env: Environment) -> None:
    """Touch, while idle, the memory a call will touch: the copy-on-write faults
    that follow a fork are then paid before the job arrives, not during it."""
    namespace = env.new_globals()
    exec(_WARMUP, namespace)  # noqa: S102 - our own constant code, not a tool's
    json.loads(json.dumps({"warm": namespace["result"]}))
    Job.decode(Job(None, None, "", "", Limits(), 0).encode())


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def _isolate(job_fd: int, result_fd: int, stdout_fd: int, stderr_fd: int) -> None:
    os.setpgid(0, 0)
    # Move the pipes out of the way so the dup2 calls below cannot clobber them.
    job_fd, result_fd, stdout_fd, stderr_fd = (
        fcntl.fcntl(fd, fcntl.F_DUPFD, 16) for fd in (job_fd, result_fd, stdout_fd, stderr_fd)
    )
    for sig in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_DFL)
    signal.set_wakeup_fd(-1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(stdout_fd, 1)
    os.dup2(stderr_fd, 2)
    # Keep only stdio and the result pipe: the template's control socket and every
    # other worker's pipes are closed here.
    os.dup2(result_fd, RESULT_FD)
    os.dup2(job_fd, JOB_FD)
    os.closerange(JOB_FD + 1, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
    sys.stdin = open(0, closefd=False)  # noqa: SIM115 - lives as long as the process
    sys.stdout = open(1, "w", encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115


def _apply_rlimits(job: Job) -> None:
    limits = job.limits
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_AS, (job.address_space_bytes, job.address_space_bytes))
    resource.setrlimit(resource.RLIMIT_NOFILE, (MAX_OPEN_FILES, MAX_OPEN_FILES))
    resource.setrlimit(resource.RLIMIT_FSIZE, (MAX_FILE_SIZE_BYTES, MAX_FILE_SIZE_BYTES))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # No new processes or threads. (Ignored for uid 0 outside a user namespace,
    # which a bubblewrap sandbox started by root is: the seccomp filter holds there.)
    resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
    _SECCOMP.install()


def _execute(job: Job, env: Environment) -> Outcome:
    globals_ = env.new_globals()
    origin = "call"
    try:
        args = jsonio.decode_args(job.args_json, MAX_ARGS_BYTES)
        origin = "tool"
        if job.tool_code is not None:
            exec(job.tool_code, globals_)  # noqa: S102 - RestrictedPython code, in the worker
        origin = "call"
        globals_.update(args)
        value = _call(job, globals_, args)
        return {
            "status": Status.OK,
            "value_json": jsonio.encode_result(value, job.limits.max_result_bytes),
        }
    except jsonio.ResultTooLarge as exc:
        return _failure(Status.OUTPUT_LIMIT, ErrorType.RESULT_TOO_LARGE, str(exc), origin)
    except MemoryError:
        return _failure(
            Status.MEMORY_LIMIT,
            ErrorType.MEMORY,
            f"the call needed more than {job.limits.memory_mb} MiB",
            origin,
        )
    except ValueConversionError as exc:
        return _failure(Status.ERROR, ErrorType.VALUE_CONVERSION, str(exc), origin)
    except GuardError as exc:
        return _failure(Status.POLICY_VIOLATION, ErrorType.GUARD, str(exc), origin, _line(exc))
    except BaseException as exc:  # noqa: BLE001 - tool code may raise anything, SystemExit too
        return _failure(
            Status.ERROR, type(exc).__name__, str(exc), _raised_in(exc) or origin, _line(exc)
        )


def _call(job: Job, globals_: dict[str, Any], args: dict[str, Any]) -> Any:
    if job.call is None:
        function = globals_.get(job.entrypoint)
        if not callable(function):
            raise NameError(f"the tool defines no function named {job.entrypoint!r}")
        if job.describe:
            return input_schema(function)
        return function(**args)
    if job.call.is_expression:
        return eval(job.call.code, globals_)  # noqa: S307 - RestrictedPython code, in the worker
    exec(job.call.code, globals_)  # noqa: S102
    if "ans" not in globals_:
        raise MissingAnswer("the call code did not assign the variable 'ans'")
    return globals_["ans"]


class MissingAnswer(Exception):
    """Call code ran but left no ``ans``."""


def _line(exc: BaseException) -> int:
    """Line of the innermost frame that belongs to tool or call code."""
    line = 0
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename in ("<tool>", "<call>"):
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _raised_in(exc: BaseException) -> str:
    """ "tool" when the innermost frame of model code that the exception passed through is
    the tool's own ("<tool>"), "call" when it is the call's, "" when it passed through
    neither (a call that did not reach the tool, e.g. wrong keyword arguments)."""
    raised_in = ""
    tb = exc.__traceback__
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if name in ("<tool>", "<call>"):
            raised_in = name.strip("<>")
        tb = tb.tb_next
    return raised_in


def _failure(status: Status, type_: str, message: str, origin: str, line: int = 0) -> Outcome:
    return failure(status, type_, message[:4000], line, origin)


def _flush_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()


def _write_frame(frame: Outcome) -> None:
    data = json.dumps(frame, ensure_ascii=False).encode("utf-8", "surrogatepass")
    view = memoryview(data)
    while view:
        written = os.write(RESULT_FD, view)
        view = view[written:]
