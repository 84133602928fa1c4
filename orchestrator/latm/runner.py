"""Running a tool and a call in a sandbox, with the outcome in words a model can act on."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from orchestrator.errors import InvalidRequest
from orchestrator.sandboxes import ExecRequest, SandboxBackend, Status

_MAX_SHOWN = 300


@dataclass(frozen=True)
class Outcome:
    """What one sandboxed call gave: a value, or an error to show the model."""

    ok: bool
    value: Any = None
    error: str | None = None
    status: str = Status.OK.value
    wall_ms: float = 0.0
    origin: str = ""  # the sandbox's error.origin: "tool" when the tool's own code raised
    line: int = 0  # the sandbox's error.line: in the tool's source when origin is "tool"

    def shown(self) -> str:
        """The value (or error) as a model should see it: JSON, cut to a readable size."""
        if not self.ok:
            return f"error: {self.error}"
        text = json.dumps(self.value, ensure_ascii=False)
        return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 1] + "…"


class ToolRunner:
    """Runs model-written code for one tenant, only ever through its sandbox backend."""

    def __init__(
        self, backend: SandboxBackend, tenant: str, *, timeout_ms: int = 5000, memory_mb: int = 0
    ) -> None:
        self.backend = backend
        self.tenant = tenant
        self.timeout_ms = timeout_ms
        self.memory_mb = memory_mb

    async def run(self, source: str, call: str) -> Outcome:
        """Load ``source`` as the tool module and run ``call``; the value is ``ans``'s."""
        if not call.strip():
            return Outcome(ok=False, error="the call is empty", status=Status.ERROR.value)
        try:
            request = ExecRequest(
                source=source, call=call, timeout_ms=self.timeout_ms, memory_mb=self.memory_mb
            )
            result = await self.backend.execute(self.tenant, request)
        except (InvalidRequest, ValueError) as exc:
            return Outcome(ok=False, error=str(exc), status=Status.ERROR.value)
        if result.status is Status.OK:
            return Outcome(ok=True, value=result.value, wall_ms=result.usage.wall_ms)
        error = result.error
        message = f"{error.type}: {error.message}" if error else result.status.value
        return Outcome(
            ok=False,
            error=message,
            status=result.status.value,
            wall_ms=result.usage.wall_ms,
            origin=error.origin if error else "",
            line=error.line if error else 0,
        )
