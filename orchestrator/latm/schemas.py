"""Checking a tool's input JSON Schema: data the sandbox read from model-written code.

The sandbox derives a tool's parameter schema (``sandbox.schema``); on this side it is
untrusted JSON, like any value from a sandbox. Before it is stored on a card, shown to
MCP clients or used to check arguments it is rebuilt here from a small vocabulary (the
keywords ``sandbox.schema`` writes), within a depth and size bound; anything else is
refused. Nothing here parses or runs code.
"""

from __future__ import annotations

import json
from typing import Any

from orchestrator.errors import InvalidRequest

MAX_SCHEMA_BYTES = 16 * 1024
MAX_DEPTH = 8
TYPES = frozenset({"integer", "number", "string", "boolean", "null", "array", "object"})
NAME_LIMIT = 64


def checked_schema(value: Any) -> dict[str, Any]:
    """``value`` as a tool's input schema: an object schema of named properties.

    Raises:
        InvalidRequest: not such a schema, too deep or too large.
    """
    if not isinstance(value, dict) or value.get("type") != "object":
        raise InvalidRequest("a tool's input schema must be a JSON Schema of type object")
    schema = _schema(value, 0)
    if len(json.dumps(schema)) > MAX_SCHEMA_BYTES:
        raise InvalidRequest(f"a tool's input schema is limited to {MAX_SCHEMA_BYTES} bytes")
    return schema


def _schema(value: Any, depth: int) -> dict[str, Any]:
    if not isinstance(value, dict) or depth > MAX_DEPTH:
        raise InvalidRequest("a tool's input schema is malformed or too deep")
    unknown = set(value) - {
        "type",
        "items",
        "prefixItems",
        "properties",
        "required",
        "additionalProperties",
        "anyOf",
        "default",
    }
    if unknown:
        raise InvalidRequest(f"a tool's input schema uses unsupported keywords: {sorted(unknown)}")
    out: dict[str, Any] = {}
    if "type" in value:
        if value["type"] not in TYPES:
            raise InvalidRequest(f"unsupported type in a tool's input schema: {value['type']!r}")
        out["type"] = value["type"]
    if "items" in value:
        out["items"] = _schema(value["items"], depth + 1)
    for key in ("prefixItems", "anyOf"):
        if key in value:
            out[key] = [_schema(item, depth + 1) for item in _list(value[key])]
    if "properties" in value:
        properties = value["properties"]
        if not isinstance(properties, dict):
            raise InvalidRequest("a tool's input schema has malformed properties")
        out["properties"] = {_name(k): _schema(v, depth + 1) for k, v in properties.items()}
    if "required" in value:
        out["required"] = [_name(name) for name in _list(value["required"])]
    if "additionalProperties" in value:
        extra = value["additionalProperties"]
        out["additionalProperties"] = (
            extra if isinstance(extra, bool) else _schema(extra, depth + 1)
        )
    if "default" in value:
        out["default"] = value["default"]
    return out


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidRequest("a tool's input schema has a malformed list")
    return value


def _name(value: Any) -> str:
    if not isinstance(value, str) or not value.isidentifier() or len(value) > NAME_LIMIT:
        raise InvalidRequest("a tool's input schema names a parameter that is not an identifier")
    return value
