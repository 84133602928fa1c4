"""What the API's answers become: frozen dataclasses with JSON values decoded."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from latm.orchestrator.v1 import orchestrator_pb2 as pb

# Each ExecStatus number and the `latm exec` contract's name for it (ok, error, timeout, ...).
_STATUSES = {
    number: name.removeprefix("EXEC_STATUS_").lower()
    for name, number in pb.ExecStatus.items()
    if number != pb.EXEC_STATUS_UNSPECIFIED
}


@dataclass(frozen=True)
class ToolResult:
    """The sandbox's answer to one ExecuteTool call; ``value`` is decoded from JSON."""

    status: str  # the `latm exec` contract's status: ok, error, timeout, ...
    value: Any
    stdout: str
    error: dict[str, Any] | None
    isolation: str
    tool: str
    version: int
    usage: dict[str, float]

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass(frozen=True)
class Answer:
    """The answer to one Solve call and how it was reached."""

    answer: str | None
    route: str
    tool: str | None
    version: int | None
    call: str | None
    error: str | None
    request_id: str
    cost_usd: float
    wall_ms: float
    usage: dict[str, dict[str, float]] = field(default_factory=dict)
    # The share of the tool calls that ran which gave this answer (None: none ran).
    confidence: float | None = None
    # How sure the dispatcher was of the route, and what decided it (see SolveResponse).
    route_confidence: float | None = None
    routed_by: str | None = None
    # The user model answered with doubt and the maker model was asked again; the spec of
    # the model whose call gave the answer.
    escalated: bool = False
    answered_by: str | None = None


def decode_tool_result(response: pb.ExecuteToolResponse) -> ToolResult:
    error = None
    if response.HasField("error"):
        error = {
            "type": response.error.type,
            "message": response.error.message,
            "line": response.error.line,
            "origin": response.error.origin,
        }
    return ToolResult(
        status=_STATUSES.get(response.status, "unspecified"),
        value=json.loads(response.value_json) if response.value_json else None,
        stdout=response.stdout,
        error=error,
        isolation=response.isolation,
        tool=response.tool,
        version=response.tool_version,
        usage={
            "wall_ms": response.usage.wall_ms,
            "cpu_ms": response.usage.cpu_ms,
            "max_rss_kb": response.usage.max_rss_kb,
        },
    )


def decode_answer(response: pb.SolveResponse) -> Answer:
    return Answer(
        answer=response.answer or None,
        route=response.route,
        tool=response.tool or None,
        version=response.tool_version or None,
        call=response.call or None,
        error=response.error or None,
        request_id=response.request_id,
        cost_usd=response.cost_usd,
        wall_ms=response.wall_ms,
        usage={
            item.role: {
                "prompt_tokens": item.usage.prompt_tokens,
                "completion_tokens": item.usage.completion_tokens,
                "cost_usd": item.usage.cost_usd,
            }
            for item in response.usage
        },
        confidence=response.confidence if response.HasField("confidence") else None,
        route_confidence=(
            response.route_confidence if response.HasField("route_confidence") else None
        ),
        routed_by=response.routed_by or None,
        escalated=response.escalated,
        answered_by=response.answered_by or None,
    )
