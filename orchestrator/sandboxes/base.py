"""The sandbox backend interface and the value objects that cross it."""

from __future__ import annotations

import abc
import asyncio
import json
from enum import IntEnum, StrEnum
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from orchestrator.deadlines import clamp_timeout_ms
from orchestrator.sandboxes.client import SandboxClient
from orchestrator.telemetry import SANDBOX_CALLS, SANDBOX_FAULTS, tracer
from sandbox.limits import MIN_MEMORY_MB


class Status(StrEnum):
    """The ``latm exec`` contract's statuses."""

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
        return self in {Status.TIMEOUT, Status.MEMORY_LIMIT, Status.OUTPUT_LIMIT, Status.CRASHED}


class IsolationLevel(IntEnum):
    """How strongly a sandbox is separated from the host, weakest first."""

    RLIMITS = 0  # a child process with rlimits only
    NAMESPACES = 1  # Linux namespaces (bubblewrap or unshare): no network, own pids
    CONTAINER = 2  # a hardened container (runc)
    GVISOR = 3  # a container under gVisor's user-space kernel

    @classmethod
    def parse(cls, text: str) -> IsolationLevel:
        try:
            return cls[text.upper()]
        except KeyError:
            names = ", ".join(level.name.lower() for level in cls)
            raise ValueError(f"unknown isolation level {text!r}; one of: {names}") from None


class ErrorInfo(BaseModel):
    model_config = ConfigDict(frozen=True)

    type: str = Field(description="exception class or rule name")
    message: str = Field(description="what went wrong; policy messages name the line")
    line: int = Field(default=0, description="1-based line, 0 when unknown")
    origin: str = Field(default="", description="'tool', 'call' or ''")


class Usage(BaseModel):
    model_config = ConfigDict(frozen=True)

    wall_ms: float = Field(default=0.0, description="wall-clock time of the worker")
    cpu_ms: float = Field(default=0.0, description="CPU time of the worker")
    max_rss_kb: int = Field(default=0, description="peak resident memory of the worker")


class ExecRequest(BaseModel):
    """One call: a tool (source or id), call code or an entrypoint, arguments, limits."""

    model_config = ConfigDict(frozen=True)

    source: str | None = Field(default=None, description="tool module source")
    tool_id: str | None = Field(default=None, description="id from a previous load")
    call: str = Field(default="", description="statements setting `ans`, or one expression")
    args: dict[str, Any] = Field(default_factory=dict, description="names visible to `call`")
    entrypoint: str = Field(default="", description="function called with args when no call")
    timeout_ms: int = Field(default=0, ge=0, description="wall-clock limit; 0: default")
    cpu_ms: int = Field(default=0, ge=0, description="CPU limit; 0: default")
    memory_mb: int = Field(
        default=0, ge=0, description=f"memory limit; 0: default, else {MIN_MEMORY_MB} or more"
    )

    @field_validator("memory_mb")
    @classmethod
    def _enough_memory(cls, value: int) -> int:
        if 0 < value < MIN_MEMORY_MB:
            raise ValueError(f"memory_mb must be 0 (the default) or at least {MIN_MEMORY_MB}")
        return value

    @model_validator(mode="after")
    def _one_tool(self) -> ExecRequest:
        if self.source is not None and self.tool_id is not None:
            raise ValueError("give the tool's source or its id, not both")
        if not self.call.strip() and not self.entrypoint:
            raise ValueError("give call code or an entrypoint")
        return self


class ExecResult(BaseModel):
    """The outcome of one call, in the shape of the ``latm exec`` contract."""

    model_config = ConfigDict(frozen=True)

    status: Status
    value: Any = None
    stdout: str = ""
    stderr: str = ""
    error: ErrorInfo | None = None
    isolation: str = Field(description="what the call really ran under, e.g. process+bwrap")
    usage: Usage = Field(default_factory=Usage)
    tool_id: str = ""

    def to_contract(self) -> dict[str, Any]:
        """The exact JSON object ``latm exec`` prints."""
        return {
            "status": self.status.value,
            "value": self.value,
            "stdout": self.stdout,
            "error": self.error.model_dump(include={"type", "message"}) if self.error else None,
            "isolation": self.isolation,
            "usage": self.usage.model_dump(),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_contract(), ensure_ascii=False)


class Sandbox:
    """A running sandbox server that belongs to exactly one tenant."""

    def __init__(self, tenant: str, client: SandboxClient, isolation: str) -> None:
        self.tenant = tenant
        self.client = client
        self.isolation = isolation
        self.uses = 0

    async def execute(self, request: ExecRequest) -> ExecResult:
        self.uses += 1
        return await self.client.execute(request, self.isolation)


class SandboxBackend(abc.ABC):
    """Where sandboxes come from. Subclasses fill in acquire, release and close.

    Callers use :meth:`execute`; the shared logic (acquire, run, release with the
    fault flag, isolation checks) lives here so backends stay small.
    """

    name: str = "abstract"

    def __init__(self, min_isolation: IsolationLevel = IsolationLevel.RLIMITS) -> None:
        self.min_isolation = min_isolation

    @property
    @abc.abstractmethod
    def isolation(self) -> tuple[str, IsolationLevel]:
        """The isolation this backend provides: a label and its level."""

    @abc.abstractmethod
    async def acquire(self, tenant: str) -> Sandbox:
        """A sandbox for ``tenant``, never shared with another tenant."""

    @abc.abstractmethod
    async def release(self, sandbox: Sandbox, faulted: bool) -> None:
        """Give a sandbox back; ``faulted`` says its last call hit a fault."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Stop every sandbox this backend started."""

    def check_isolation(self) -> None:
        from orchestrator.errors import IsolationTooWeak

        label, level = self.isolation
        if level < self.min_isolation:
            raise IsolationTooWeak.for_levels(label, self.min_isolation.name.lower())

    async def execute(self, tenant: str, request: ExecRequest) -> ExecResult:
        """Run one call for ``tenant`` in one of its sandboxes."""
        from orchestrator.errors import InvalidRequest, ToolNotFound

        timeout_ms = clamp_timeout_ms(request.timeout_ms)
        if timeout_ms != request.timeout_ms:
            request = request.model_copy(update={"timeout_ms": timeout_ms})
        with tracer.start_as_current_span("sandbox.execute") as span:
            span.set_attribute("latm.backend", self.name)
            sandbox = await self.acquire(tenant)
            span.set_attribute("latm.isolation", sandbox.isolation)
            faulted = True
            try:
                result = await sandbox.execute(request)
                faulted = result.status.is_fault
                span.set_attribute("latm.status", result.status.value)
                SANDBOX_CALLS.labels(self.name, result.status.value).inc()
                if faulted:
                    SANDBOX_FAULTS.labels(self.name, result.status.value).inc()
                return result
            except (InvalidRequest, ToolNotFound):
                faulted = False  # the request was refused; the sandbox is unharmed
                raise
            finally:
                # A call cancelled mid-way counts as a fault: its worker may still run.
                await asyncio.shield(self.release(sandbox, faulted))

    def stats(self) -> dict[str, int]:
        """Sandboxes by state (e.g. idle, busy), for metrics; empty when not tracked."""
        return {}

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
