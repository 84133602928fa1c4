"""The values that cross the sandbox boundary on the orchestrator's side: a call's
request and result, their parts, and isolation levels. The statuses come from the
sandbox's own contract (``sandbox.contract``), which both sides share."""

from __future__ import annotations

import json
from enum import IntEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sandbox.contract import Status
from sandbox.limits import MIN_MEMORY_MB

__all__ = [
    "Described",
    "ErrorInfo",
    "ExecRequest",
    "ExecResult",
    "IsolationLevel",
    "Status",
    "Usage",
]


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


class Described(BaseModel):
    """A tool entrypoint's parameters as the sandbox read them (LoadTool with an
    entrypoint): their JSON Schema when ``status`` is ok, else why not. The schema is
    untrusted data, checked before use (``orchestrator.latm.schemas``)."""

    model_config = ConfigDict(frozen=True)

    status: Status
    input_schema: Any = None
    error: ErrorInfo | None = None
