"""A tool entrypoint's parameters as a JSON Schema, read from the function itself.

This runs in a worker, on the function the tool module defined (``inspect.signature``
and its annotations): the orchestrator never parses or compiles model code to learn a
tool's parameters, it asks the sandbox. The schema is what MCP clients see as a tool's
``inputSchema`` and what arguments are checked against before a call runs.

The mapping is deliberately small: ``int`` → integer, ``float`` → number, ``str`` →
string, ``bool`` → boolean, ``list``/``tuple``/``set`` → array, ``dict`` → object,
``None`` → null, unions → ``anyOf``; anything else, or no annotation, → ``{}`` (any
JSON value). Annotations written as strings (``from __future__ import annotations``)
are read by name, never evaluated.
"""

from __future__ import annotations

import inspect
import json
import types
import typing
from collections.abc import Callable
from typing import Any

SCALARS: dict[Any, str] = {
    int: "integer",
    float: "number",
    str: "string",
    bool: "boolean",
    type(None): "null",
    None: "null",
}
ARRAYS = (list, tuple, set, frozenset)
NAMES = {
    "int": "integer",
    "float": "number",
    "str": "string",
    "bool": "boolean",
    "list": "array",
    "tuple": "array",
    "set": "array",
    "dict": "object",
    "frozenset": "array",
    "none": "null",
}
MAX_DEPTH = 6


def input_schema(function: Callable[..., Any]) -> dict[str, Any]:
    """The JSON Schema of the keyword arguments ``function`` accepts.

    Required are the parameters without a default; ``**kwargs`` allows other names.
    ``*args`` and positional-only parameters are left out: a tool is called with
    keyword arguments only.
    """
    properties: dict[str, Any] = {}
    required: list[str] = []
    extra = False
    for parameter in inspect.signature(function).parameters.values():
        if parameter.kind is parameter.VAR_KEYWORD:
            extra = True
            continue
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.POSITIONAL_ONLY):
            continue
        schema = annotation_schema(parameter.annotation)
        if parameter.default is parameter.empty:
            required.append(parameter.name)
        elif _is_json(parameter.default):
            schema = {**schema, "default": parameter.default}
        properties[parameter.name] = schema
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": extra,
    }


def annotation_schema(annotation: Any, depth: int = 0) -> dict[str, Any]:
    """The schema of one annotation; ``{}`` (any value) for what it does not map."""
    if depth > MAX_DEPTH or annotation is inspect.Parameter.empty or annotation is Any:
        return {}
    if isinstance(annotation, str) or annotation in SCALARS:
        return _named(annotation) if isinstance(annotation, str) else _scalar(annotation)
    origin = typing.get_origin(annotation)
    arguments = [arg for arg in typing.get_args(annotation) if arg is not Ellipsis]
    inner = [annotation_schema(arg, depth + 1) for arg in arguments]
    if origin in (typing.Union, types.UnionType):
        return {"anyOf": inner}
    if annotation in ARRAYS or origin in ARRAYS:
        return _array(origin, inner)
    if annotation is dict or origin is dict:
        extra = {"additionalProperties": inner[1]} if len(inner) == 2 else {}
        return {"type": "object", **extra}
    return {}


def _scalar(annotation: Any) -> dict[str, Any]:
    return {"type": SCALARS[annotation]}


def _array(origin: Any, items: list[dict[str, Any]]) -> dict[str, Any]:
    if origin is tuple and len(items) > 1:
        return {"type": "array", "prefixItems": items}
    return {"type": "array", **({"items": items[0]} if items else {})}


def _named(text: str, depth: int = 0) -> dict[str, Any]:
    """A string annotation (``"int"``, ``"list[str] | None"``), parsed by its names and
    brackets, never evaluated; ``{}`` for anything else."""
    text = text.strip().strip("'\"").strip()
    if depth > MAX_DEPTH or not text:
        return {}
    alternatives = _split(text, "|")
    if len(alternatives) > 1:
        return {"anyOf": [_named(part, depth + 1) for part in alternatives]}
    head, bracket, rest = text.partition("[")
    head = head.strip().rpartition(".")[2].lower()  # typing.List -> list
    arguments = _split(rest.removesuffix("]"), ",") if bracket and rest.endswith("]") else []
    inner = [_named(arg, depth + 1) for arg in arguments if arg.strip() != "..."]
    if head in ("optional", "union"):
        return {"anyOf": inner + ([{"type": "null"}] if head == "optional" else [])}
    kind = NAMES.get(head)
    if kind == "array":
        return _array(tuple if head == "tuple" else list, inner)
    if kind == "object" and len(inner) == 2:
        return {"type": "object", "additionalProperties": inner[1]}
    return {"type": kind} if kind else {}


def _split(text: str, separator: str) -> list[str]:
    """``text`` split at ``separator`` outside brackets."""
    parts, level, start = [], 0, 0
    for index, char in enumerate(text):
        level += (char == "[") - (char == "]")
        if char == separator and level == 0:
            parts.append(text[start:index])
            start = index + 1
    parts.append(text[start:])
    return [part.strip() for part in parts]


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True
