"""The platform's own MCP tools, beside the tenant's: ``solve`` and ``make_tool``.

Their names are reserved in the MCP tool list: a tenant tool of the same name is not
listed there (it stays reachable as ``solve``'s ``tool``).
"""

from __future__ import annotations

from typing import Any

import mcp_types as types
from latm.orchestrator.v1 import orchestrator_pb2 as pb

SOLVE = "solve"
MAKE_TOOL = "make_tool"

_SOLVE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "question": {"type": "string", "minLength": 1, "description": "the request to answer"},
        "tool": {"type": "string", "description": "a tool to use (default: the dispatcher picks)"},
    },
    "required": ["question"],
    "additionalProperties": False,
}
_MAKE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "task": {"type": "string", "minLength": 1, "description": "the task's name"},
        "examples": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "properties": {"question": {"type": "string"}, "answer": {"type": "string"}},
                "required": ["question", "answer"],
                "additionalProperties": False,
            },
            "description": "solved examples: demos, then held-out cases to verify on",
        },
        "split": {"type": "string", "description": "DEMOS/VALIDATION/TEST_START, e.g. 0-2/5-7/10"},
    },
    "required": ["task", "examples"],
    "additionalProperties": False,
}

PLATFORM_TOOLS = (
    types.Tool(
        name=SOLVE,
        description=(
            "Answer a question with the tenant's verified tools: the dispatcher picks a "
            "tool (or answers directly); returns the answer, the route and the tool used."
        ),
        input_schema=_SOLVE_SCHEMA,
    ),
    types.Tool(
        name=MAKE_TOOL,
        description=(
            "Make a new tool from solved examples: the maker model writes it, it is verified "
            "on held-out examples in the sandbox, and published only when it passes. Sends "
            "a progress notification for each attempt and verification case."
        ),
        input_schema=_MAKE_SCHEMA,
    ),
)


def make_request(arguments: dict[str, Any]) -> pb.MakeToolRequest:
    return pb.MakeToolRequest(
        task=arguments["task"],
        examples=[
            pb.Example(question=example["question"], answer=example["answer"])
            for example in arguments["examples"]
        ],
        split=arguments.get("split", ""),
    )


def solved(reply: pb.SolveResponse) -> types.CallToolResult:
    """``solve``'s result: the answer as text, and the whole outcome as structured content."""
    outcome = {
        "answer": reply.answer,
        "route": reply.route,
        "tool": reply.tool or None,
        "tool_version": reply.tool_version or None,
        "call": reply.call or None,
        "error": reply.error or None,
        "request_id": reply.request_id,
        "cost_usd": reply.cost_usd,
        "confidence": reply.confidence if reply.HasField("confidence") else None,
        "escalated": reply.escalated,
        "answered_by": reply.answered_by or None,
    }
    text = reply.answer or f"no answer: {reply.error}"
    return types.CallToolResult(
        content=[types.TextContent(text=text)],
        structured_content=outcome,
        is_error=not reply.answer and bool(reply.error),
    )
