"""Hypothesis strategies: Python source (valid from the grammar, and mutated into invalid),
sandbox protocol messages with hostile fields, raw wire bytes and gRPC metadata."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from typing import Any

import hypothesmith
from hypothesis import strategies as st
from latm.sandbox.v1 import sandbox_pb2

from tests.fuzz.conftest import Metadata, is_unicode
from tests.support.backends import TOOL

SERVICE = "/latm.sandbox.v1.SandboxService/"
UINT32_MAX = 2**32 - 1

# Tools of the shape a maker model writes: the seeds that mutations start from.
SEED_TOOLS = [
    TOOL,
    "def sort_words(text):\n    return ' '.join(sorted(text.split()))\n",
    (
        "from collections import Counter\n\n\ndef top(words, n=2):\n"
        "    counts = Counter(words)\n    return [w for w, _ in counts.most_common(n)]\n"
    ),
    (
        "def balance(seq):\n    pairs = {')': '(', ']': '[', '}': '{', '>': '<'}\n"
        "    stack = []\n    for ch in seq:\n        if ch in '([{<':\n"
        "            stack.append(ch)\n"
        "        elif ch in pairs and stack and stack[-1] == pairs[ch]:\n"
        "            stack.pop()\n    return ''.join(reversed(stack))\n"
    ),
    (
        "import math\n\n\nclass Solver:\n    def __init__(self, mods):\n"
        "        self.mods = mods\n\n    def crt(self, rems):\n        n = math.prod(self.mods)\n"
        "        terms = [r * (n // m) * pow(n // m, -1, m) for r, m in zip(rems, self.mods)]\n"
        "        return sum(terms) % n\n"
    ),
]

# Call code an orchestrator sends, good and bad: every status of the contract is reachable.
SEED_CALLS = [
    "double(21)",
    "ans = remember(3)",
    "ans = [double(x) for x in range(3)]",
    "1 / 0",
    "import os",
    "ans = ().__class__",
    "ans = chr(0xD800)",
    "raise ValueError(chr(0xDFFF))",
    "ans = 'x' * (10 ** 7)",
    "print('y' * 200000)",
    "return 1",
    "break",
    "ans = sorted({3, 1, 2})",
    "ans = {'k': (1, 2)}",
]

# Tool sources of past findings: each runs as an explicit example before the random ones.
SEED_SOURCES = [
    "return 1",  # a compile-time SyntaxError: once left the request unanswered (a hang)
    "def f(a, a):\n    return a",
    "x = getattr(1, '_\\ud800')",  # a policy message quoting a lone surrogate
    "x = " + "(" * 300 + ")" * 300,
    "\x00",
]

# Characters that trouble parsers, normalisers and encoders.
ODD_CHARACTERS = [
    "\x00",
    "\x0c",
    "\r",
    "\t",
    "\x85",
    "\u2028",
    "\u200b",
    "\ufeff",
    "\u202e",
    "\u0301",
    "\uff3f",  # fullwidth low line: NFKC makes it '_'
    "\ufb01",  # 'fi' ligature: NFKC makes it 'fi'
    "\u210c",  # black-letter H: NFKC makes it 'H'
    "\U0001f600",
    "\\",
    "'''",
    '"',
    "#",
    ":",
    "\n    ",
    "\ud800",  # a lone surrogate: not Unicode text, protobuf cannot carry it
]


@cache  # building the grammar's parser takes seconds: once per run, not per draw
def grammar_python() -> st.SearchStrategy[str]:
    """Modules that Python's own grammar accepts (hypothesmith)."""
    return hypothesmith.from_grammar()


@cache
def grammar_statements() -> st.SearchStrategy[str]:
    """One statement or expression, as an interactive prompt takes it: call code.
    (hypothesmith's ``eval_input`` is about ten times slower to draw from.)"""
    return hypothesmith.from_grammar("single_input").map(str.strip).filter(bool)


Mutation = Callable[[st.DrawFn, str], str]


def _position(draw: st.DrawFn, source: str) -> int:
    return draw(st.integers(0, len(source)))


def _truncate(draw: st.DrawFn, source: str) -> str:
    return source[: _position(draw, source)]


def _insert_text(draw: st.DrawFn, source: str) -> str:
    at = _position(draw, source)
    piece = draw(st.one_of(st.sampled_from(ODD_CHARACTERS), st.text(max_size=8)))
    return source[:at] + piece + source[at:]


def _insert_bytes(draw: st.DrawFn, source: str) -> str:
    at = _position(draw, source)
    raw = draw(st.binary(min_size=1, max_size=16))
    codec = draw(st.sampled_from(["latin-1", "utf-8"]))
    return source[:at] + raw.decode(codec, "surrogateescape") + source[at:]


def _delete_span(draw: st.DrawFn, source: str) -> str:
    start = _position(draw, source)
    end = draw(st.integers(start, min(len(source), start + 40)))
    return source[:start] + source[end:]


def _duplicate_span(draw: st.DrawFn, source: str) -> str:
    start = _position(draw, source)
    end = draw(st.integers(start, min(len(source), start + 40)))
    return source[:end] + source[start:end] + source[end:]


def _deep_nesting(draw: st.DrawFn, source: str) -> str:
    depth = draw(st.sampled_from([50, 99, 101, 200, 1000, 5000, 100_000]))
    opener, closer = draw(
        st.sampled_from([("(", ")"), ("[", "]"), ("{", "}"), ("-", ""), ("not ", ""), ("~", "")])
    )
    if draw(st.booleans()):
        blocks = "".join(" " * i + "if x:\n" for i in range(min(depth, 2000)))
        return source + "\n" + blocks + " " * min(depth, 2000) + "pass\n"
    return f"{source}\nx = {opener * depth}1{closer * depth}\n"


def _huge_literal(draw: st.DrawFn, source: str) -> str:
    size = draw(st.sampled_from([100, 4300, 4301, 10_000, 200_000, 600_000]))
    literal = draw(
        st.sampled_from(
            ["9" * size, "0x" + "f" * size, "1e" + "9" * min(size, 400), repr("a" * size),
             "b'" + "\\x00" * (size // 4) + "'", "[" + "1," * (size // 2) + "]"]
        )
    )  # fmt: skip
    return f"{source}\nhuge = {literal}\n"


MUTATIONS: list[Mutation] = [
    _truncate,
    _insert_text,
    _insert_bytes,
    _delete_span,
    _duplicate_span,
    _deep_nesting,
    _huge_literal,
]


@st.composite
def mutated_python(draw: st.DrawFn) -> str:
    """Valid Python (a realistic tool or a grammar-made module), broken one to three ways."""
    source = draw(st.one_of(st.sampled_from(SEED_TOOLS), grammar_python()))
    for mutation in draw(st.lists(st.sampled_from(MUTATIONS), min_size=1, max_size=3)):
        source = mutation(draw, source)
    return source


def utf8_text(max_size: int = 200) -> st.SearchStrategy[str]:
    """Text protobuf can carry (no surrogates), as any client could send it."""
    return st.text(st.characters(exclude_categories=["Cs"]), max_size=max_size)


def _json_values() -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), utf8_text(20)
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(utf8_text(8), inner, max_size=4)
        ),
        max_leaves=12,
    )


def args_json() -> st.SearchStrategy[str]:
    """ExecuteRequest.args_json: objects with good or bad names, other JSON, non-JSON."""
    names = st.one_of(
        st.from_regex(r"\A[a-z][a-z0-9_]{0,8}\Z"), utf8_text(10), st.sampled_from(["_x", "for"])
    )
    return st.one_of(
        st.just(""),
        st.dictionaries(names, _json_values(), max_size=4).map(json.dumps),
        _json_values().map(json.dumps),
        utf8_text(),
        st.integers(1, 200).map(lambda n: '{"x": ' + "[" * n + "]" * n + "}"),
        st.sampled_from(['{"x": NaN}', '{"x": 1e999}', '{"x": "\\ud800"}', "{}" * 2, "\x00"]),
    )


def _limit() -> st.SearchStrategy[int]:
    return st.one_of(
        st.sampled_from([0, 1, 50, 1000, UINT32_MAX, 2**31]), st.integers(0, UINT32_MAX)
    )


def limits() -> st.SearchStrategy[sandbox_pb2.Limits | None]:
    fields = ["timeout_ms", "cpu_ms", "memory_mb", "max_output_bytes", "max_result_bytes"]
    return st.one_of(
        st.none(), st.fixed_dictionaries({}, optional=dict.fromkeys(fields, _limit()))
    ).map(lambda values: None if values is None else sandbox_pb2.Limits(**values))


def _tool() -> st.SearchStrategy[tuple[str, str] | None]:
    """The ExecuteRequest.tool oneof: absent, an id (good, unknown or malformed), a source."""
    hex_ids = st.text("0123456789abcdef", min_size=64, max_size=64)
    return st.one_of(
        st.none(),
        st.tuples(st.just("tool_id"), st.one_of(hex_ids, utf8_text(80))),
        st.tuples(
            st.just("source"),
            st.one_of(st.sampled_from(SEED_TOOLS), utf8_text(), grammar_python()),
        ),
    )


@st.composite
def execute_requests(draw: st.DrawFn) -> sandbox_pb2.ExecuteRequest:
    """ExecuteRequests with every field drawn from good, bad and hostile values."""
    message = sandbox_pb2.ExecuteRequest(
        call=draw(st.one_of(st.just(""), st.sampled_from(SEED_CALLS), utf8_text())),
        args_json=draw(args_json()),
        entrypoint=draw(
            st.one_of(
                st.just(""),
                st.sampled_from(["double", "remember", "_getattr_", "__builtins__", "Tally"]),
                utf8_text(20),
            )
        ),
    )
    tool = draw(_tool())
    if tool is not None:
        setattr(message, tool[0], tool[1])
    chosen = draw(limits())
    if chosen is not None:
        message.limits.CopyFrom(chosen)
    return message


def load_requests() -> st.SearchStrategy[sandbox_pb2.LoadToolRequest]:
    sources = st.one_of(
        st.sampled_from(["", "   ", *SEED_TOOLS]), utf8_text(), grammar_python(), mutated_python()
    )
    return sources.filter(is_unicode).map(lambda source: sandbox_pb2.LoadToolRequest(source=source))


def varint(value: int) -> bytes:
    """``value`` as a protobuf varint."""
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


@st.composite
def _wire_field(draw: st.DrawFn) -> bytes:
    """One protobuf field of any number and wire type, well formed or not: unknown
    fields, wrong wire types for known ones, unknown enum values, bad lengths."""
    number = draw(st.one_of(st.integers(1, 8), st.integers(1, 2**29 - 1)))
    wire_type = draw(st.sampled_from([0, 1, 2, 5, 3, 4, 6, 7]))
    key = varint(number << 3 | wire_type)
    if wire_type == 0:
        return key + varint(draw(st.integers(0, 2**64 - 1)))
    if wire_type == 1:
        return key + draw(st.binary(min_size=8, max_size=8))
    if wire_type == 5:
        return key + draw(st.binary(min_size=4, max_size=4))
    if wire_type == 2:
        payload = draw(st.one_of(st.binary(max_size=40), utf8_text(40).map(str.encode)))
        length = draw(st.one_of(st.just(len(payload)), st.integers(0, 2**32)))
        return key + varint(length) + payload
    return key + draw(st.binary(max_size=8))  # groups and invalid wire types


def _flip(draw: st.DrawFn, data: bytes) -> bytes:
    if not data:
        return data
    at = draw(st.integers(0, len(data) - 1))
    return data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1 :]


@st.composite
def wire_bytes(draw: st.DrawFn) -> bytes:
    """What may arrive as a request: random bytes, valid messages of any type, valid
    messages cut short, bit-flipped or followed by hand-made fields."""
    valid = st.one_of(
        execute_requests(), load_requests(), st.just(sandbox_pb2.GetInfoResponse())
    ).map(lambda m: m.SerializeToString())
    kind = draw(st.sampled_from(["random", "valid", "cut", "flip", "fields"]))
    if kind == "random":
        return draw(st.binary(max_size=512))
    data = draw(valid)
    if kind == "cut":
        return data[: draw(st.integers(0, len(data)))]
    if kind == "flip":
        return _flip(draw, data)
    if kind == "fields":
        return data + b"".join(draw(st.lists(_wire_field(), min_size=1, max_size=4)))
    return data


def method_names() -> st.SearchStrategy[str]:
    """Methods of the sandbox's services, and some no server has."""
    return st.sampled_from(
        [
            SERVICE + "Execute",
            SERVICE + "LoadTool",
            SERVICE + "GetInfo",
            "/grpc.health.v1.Health/Check",
            SERVICE + "Nope",
            "/latm.sandbox.v2.SandboxService/Execute",
            "/x/y",
        ]
    )


_RESERVED = ("grpc-", "te", "content-type", "user-agent", "host", "connection", "authority")


def metadata() -> st.SearchStrategy[Metadata]:
    """Request metadata a client could send: any legal key, text or binary values."""
    keys = st.from_regex(r"\A[a-z0-9][a-z0-9_.-]{0,30}\Z").filter(
        lambda key: not key.startswith(_RESERVED) and not key.endswith("-bin")
    )
    printable = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
    text_pairs = st.tuples(keys, st.text(printable, max_size=64))
    binary_pairs = st.tuples(keys.map(lambda key: key + "-bin"), st.binary(max_size=64))
    return st.lists(st.one_of(text_pairs, binary_pairs), max_size=6).map(tuple)
