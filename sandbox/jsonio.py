"""Values cross the boundary as JSON only, with size and depth caps, both ways.

Conversions for results (documented in the README): tuples become lists; sets and
frozensets become lists, sorted when their items can be sorted; dict keys that are
int, float, bool or None become strings (as ``json`` does). Anything else — NaN or
infinity, bytes, Decimal, Fraction, the tool's own objects — is refused with a
message that names the type and where in the value it sits. So is a string holding a
lone surrogate (``chr(0xD800)``): it is not Unicode text, and no protocol can carry it.
"""

from __future__ import annotations

import contextlib
import json
import keyword
import math
from typing import Any

from sandbox.errors import ValueConversionError

MAX_DEPTH = 64
_SCALARS = (str, int, float, bool, type(None))


def decode_args(text: str, max_bytes: int) -> dict[str, Any]:
    """Parse call arguments: a JSON object whose keys are usable variable names."""
    if not text:
        return {}
    if len(text.encode("utf-8", "surrogatepass")) > max_bytes:
        raise ValueConversionError(f"arguments are larger than {max_bytes} bytes")
    value = loads(text, "arguments")
    if not isinstance(value, dict):
        raise ValueConversionError("arguments must be a JSON object of name -> value")
    for name in value:
        if not name.isidentifier() or keyword.iskeyword(name) or name.startswith("_"):
            raise ValueConversionError(
                f"argument name {name!r} is not a usable variable name (identifiers only, "
                "not starting with '_')"
            )
    return value


def loads(text: str, what: str = "value") -> Any:
    """``json.loads`` with a depth cap; every failure becomes ValueConversionError."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ValueConversionError(f"{what} is not valid JSON: {exc}") from None
    _check_depth(value, what)
    return value


def _check_depth(value: Any, what: str) -> None:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ValueConversionError(f"{what} is nested deeper than {MAX_DEPTH} levels")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)


def encode_result(value: Any, max_bytes: int) -> str:
    """Encode a tool's result as JSON text, converting as documented above.

    The encoding is held to the cap as it goes: the conversion counts a lower bound of
    the text's size and stops as soon as that passes ``max_bytes``, so a result far
    over the cap (a list of a million copies of one long string, which the tool made
    with little memory) is :class:`ResultTooLarge`, never a MemoryError of the encoder.
    """
    text = json.dumps(
        to_jsonable(value, budget=_Budget(max_bytes)),
        ensure_ascii=False,
        allow_nan=False,
        separators=(",", ":"),
    )
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise ValueConversionError(
            f"the result holds a lone surrogate ({text[exc.start]!r}), which is not Unicode "
            "text and cannot leave the sandbox; return str values of whole characters"
        ) from None
    if size > max_bytes:
        raise ResultTooLarge(size, max_bytes)
    return text


class ResultTooLarge(ValueConversionError):
    def __init__(self, size: int, cap: int, *, at_least: bool = False) -> None:
        self.size = size
        self.cap = cap
        told = f"at least {size}" if at_least else str(size)
        super().__init__(f"result is {told} bytes as JSON; the cap is {cap} bytes")


class _Budget:
    """The bytes of JSON a result may still take; spent by a lower bound of each part
    (a character is at least one byte, a number at least one digit)."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.left = cap

    def spend(self, size: int) -> None:
        self.left -= size
        if self.left < 0:
            raise ResultTooLarge(self.cap - self.left, self.cap, at_least=True)


def _scalar_size(value: Any) -> int:
    if isinstance(value, str):
        return len(value) + 2  # and its quotes
    if value is None or value is True:
        return 4
    return 5 if value is False else 1


def to_jsonable(
    value: Any, path: str = "value", depth: int = 1, budget: _Budget | None = None
) -> Any:
    """Convert to plain JSON types, or raise ValueConversionError naming the offending
    path (:class:`ResultTooLarge` once ``budget`` is spent)."""
    if depth > MAX_DEPTH:
        raise ValueConversionError(f"{path} is nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueConversionError(f"{path} is {value}, which JSON cannot represent")
    if isinstance(value, _SCALARS):
        if budget is not None:
            budget.spend(_scalar_size(value))
        return value
    if isinstance(value, list | tuple | set | frozenset | dict) and budget is not None:
        budget.spend(1 + len(value))  # brackets and separators
    if isinstance(value, list | tuple):
        return [to_jsonable(v, f"{path}[{i}]", depth + 1, budget) for i, v in enumerate(value)]
    if isinstance(value, set | frozenset):
        items = list(value)
        with contextlib.suppress(TypeError):  # mixed types keep their iteration order
            items.sort()
        return [to_jsonable(v, f"{path}[{i}]", depth + 1, budget) for i, v in enumerate(items)]
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            name = _json_key(key, path)
            if budget is not None:
                budget.spend(len(name) + 3)  # its quotes and colon
            out[name] = to_jsonable(item, f"{path}[{key!r}]", depth + 1, budget)
        return out
    raise ValueConversionError(
        f"{path} has type {type(value).__name__}, which is not JSON; return str, int, float, "
        "bool, None, list, tuple, set or dict"
    )


def _json_key(key: Any, path: str) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, bool | int | type(None)) or (isinstance(key, float) and math.isfinite(key)):
        return json.dumps(key)
    raise ValueConversionError(
        f"{path} has a key of type {type(key).__name__}; JSON keys are strings"
    )
