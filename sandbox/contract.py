"""The sandbox's contract, written once: the statuses a call ends in, the names of the
errors the sandbox itself reports, and the messages that pass between the sandbox
server, the template and its workers (length-prefixed JSON frames).

Every side imports it: the worker and the template write these shapes, the server
turns them into ``latm.sandbox.v1`` messages, and the orchestrator reads them back into
``ExecResult`` and the public ``ExecStatus``. It imports nothing beyond the standard
library, so the worker stays light, and proto enums are mapped by :func:`proto_values`.

The shapes are ``TypedDict``s: what a worker sends is still untrusted and checked field
by field where it is read (``sandbox.template``, ``sandbox.server``); the types say what
an honest side writes.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Literal, NotRequired, TypedDict, TypeVar

T = TypeVar("T")


class Status(StrEnum):
    """How a call ended: the ``latm exec`` contract's statuses."""

    OK = "ok"
    ERROR = "error"
    POLICY_VIOLATION = "policy_violation"
    TIMEOUT = "timeout"
    MEMORY_LIMIT = "memory_limit"
    OUTPUT_LIMIT = "output_limit"
    CRASHED = "crashed"

    @property
    def is_fault(self) -> bool:
        """Faults end a container's life; ok, error and policy refusals do not."""
        return self in FAULTS


FAULTS = frozenset({Status.TIMEOUT, Status.MEMORY_LIMIT, Status.OUTPUT_LIMIT, Status.CRASHED})


class ErrorType(StrEnum):
    """The ``error.type`` names the sandbox reports for its own verdicts. A tool's own
    exception is reported under its class name (``ValueError``) instead."""

    POLICY_VIOLATION = "PolicyViolation"  # refused before running
    SYNTAX_ERROR = "SyntaxError"  # does not parse
    GUARD = "GuardError"  # refused while running (a guarded attribute, a write)
    TRIPWIRE = "Tripwire"  # an audit event tool code never causes legitimately
    VALUE_CONVERSION = "ValueConversionError"  # a value that cannot cross as JSON
    RESULT_TOO_LARGE = "ResultTooLarge"  # the result's JSON is over its cap
    MEMORY = "MemoryError"  # the worker ran out of its memory limit
    TIMEOUT = "TimeoutExceeded"  # the wall-clock limit
    CPU_TIME = "CpuTimeExceeded"  # the CPU limit
    OUTPUT_LIMIT = "OutputLimitExceeded"  # stdout, stderr or the result stream
    WORKER_CRASHED = "WorkerCrashed"  # the worker died without a result
    SANDBOX_CRASHED = "SandboxCrashed"  # the template died under a call
    SANDBOX_ERROR = "SandboxError"  # a fault of the sandbox's own code
    SANDBOX_UNAVAILABLE = "SandboxUnavailable"  # the server went away (orchestrator side)


Origin = Literal["tool", "call", ""]


class ErrorFrame(TypedDict):
    """What went wrong: a type name, a message, the 1-based line (0 when unknown) and
    whether the tool's code or the call's code raised."""

    type: str
    message: str
    line: int
    origin: str


class UsageFrame(TypedDict):
    wall_ms: float
    cpu_ms: float
    max_rss_kb: int


class Outcome(TypedDict):
    """A call's or a load's answer, from the worker or the template to the server."""

    status: Status
    error: NotRequired[ErrorFrame]
    value_json: NotRequired[str]  # with ``ok`` from an exec: the result, as JSON
    stdout: NotRequired[str]
    stderr: NotRequired[str]
    usage: NotRequired[UsageFrame]
    tool_id: NotRequired[str]


class Reply(Outcome):
    """An outcome as the template sends it back: with the id of the request it answers."""

    id: int | None


class UnknownTool(TypedDict):
    """The template's answer to an exec of a tool it no longer holds (a restarted
    template): the server loads the source again and retries."""

    id: int
    unknown_tool: str


class Ready(TypedDict):
    """The template's first message: it is warm and serving."""

    op: Literal["ready"]
    pid: int


class LoadRequest(TypedDict):
    """Server to template: compile and keep a tool's source."""

    op: Literal["load"]
    id: NotRequired[int]  # numbered by the server's supervisor as it sends it
    source: str


class ExecRequest(TypedDict):
    """Server to template: run one call of a loaded tool in a fresh worker."""

    op: Literal["exec"]
    id: NotRequired[int]
    tool_id: str
    call: str
    args_json: str
    entrypoint: str
    limits: dict[str, int]
    # Answer the entrypoint's parameters as a JSON Schema instead of calling it.
    describe: NotRequired[bool]


class PingRequest(TypedDict):
    """Server to template: are you answering? (answered ``ok`` from its loop)"""

    op: Literal["ping"]
    id: NotRequired[int]


Request = LoadRequest | ExecRequest | PingRequest
Answer = Reply | UnknownTool


def error_frame(type_: str, message: str, line: int = 0, origin: str = "") -> ErrorFrame:
    return {"type": type_, "message": message, "line": line, "origin": origin}


def failure(status: Status, type_: str, message: str, line: int = 0, origin: str = "") -> Outcome:
    """An outcome that is not ``ok``: its status and what went wrong."""
    return {"status": status, "error": error_frame(type_, message, line, origin)}


def no_usage() -> UsageFrame:
    return {"wall_ms": 0.0, "cpu_ms": 0.0, "max_rss_kb": 0}


def proto_values(value_of: Callable[[str], T], prefix: str) -> dict[Status, T]:
    """Each status's number in a proto enum whose names are ``prefix`` and the status's
    name (``STATUS_OK``, ``EXEC_STATUS_OK``): pass the enum's ``Value``. A status the
    enum lacks fails here, at import, not on the first call that ends in it."""
    return {status: value_of(prefix + status.name) for status in Status}
