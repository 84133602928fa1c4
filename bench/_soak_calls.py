"""The soak run's call mix: legitimate calls whose answers are checked, and hostile ones
that must be refused, each with the outcomes it may have.

Every call ends in an :class:`Outcome`. Its ``kind`` is ``ok`` (an expected success), the
kind of an expected refusal (a sandbox status such as ``policy_violation`` or ``timeout``,
or an API error such as ``unauthenticated``, ``not_found``, ``quota_exceeded``,
``invalid_argument``), or ``unexpected:...``: a wrong value, a hostile call that succeeded,
a canary secret or the escape marker in an answer, a status the call may not have, or an
exception in the client. A soak passes only with no unexpected outcome. The tools called
are in :mod:`bench._soak_tools`.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import json
import math
import random
import string
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from latm.orchestrator.v1 import orchestrator_pb2 as pb

from bench._soak_tools import (
    LEGIT_TOOLS,
    REFUSED_AT_IMPORT,
    HostileTool,
    hostile_tools,
    spin_tool,
    tool_names,
)
from orchestrator.client import AsyncClient, ToolResult
from orchestrator.errors import LatmError, from_rpc_error
from tests.support.cards import card_json

# Planted in the server's environment: no answer may ever contain it.
CANARY = "sk-latm-soak-canary-5e1d2c"
MARK = "ESCAPED"  # what a red-team payload returns only when its attack worked
MAX_TIMEOUT_MS = 5000  # every tenant's quota for a sandbox's timeout and memory
MAX_MEMORY_MB = 256
MAX_ARGUMENTS_BYTES = 1024 * 1024  # the API's cap on arguments_json
MAX_SOURCE_BYTES = 512 * 1024  # a tool card's cap on its source
BIG_MESSAGE_BYTES = 16 * 1024 * 1024  # a client that sends past the server's gRPC cap
CATEGORIES = ("legit", "read", "escape", "exhaustion", "api", "limits")
# The mix of the ordinary tenants; the hostile tenant runs only "limits" probes.
WEIGHTS = {"legit": 45, "read": 10, "escape": 20, "exhaustion": 7, "api": 18, "limits": 0}
HOG = "hog"  # a hostile tenant that pushes every limit on what a tenant keeps and sends
HOG_QUOTAS = {
    "max_tools": 8,
    "max_versions": 3,
    "max_stored_mb": 2,
    "max_card_kb": 384,
    "max_demos": 4,
    "max_make_examples": 20,
    "max_make_kb": 16,
    "max_question_chars": 2000,
    "max_prompt_tokens": 400,
}


@dataclass(frozen=True)
class Outcome:
    """How one call ended."""

    kind: str
    detail: str = ""
    retry_after_s: float | None = None

    @property
    def unexpected(self) -> bool:
        return self.kind.startswith("unexpected:")


@dataclass
class Session:
    """One simulated client: a tenant's key and channels to the server."""

    target: str
    tenant: str
    key: str
    tokens: dict[str, str]  # every tenant's private token, by tenant
    tight: bool  # a tenant with low rate and concurrency quotas: quota refusals are fine
    client: AsyncClient = field(init=False)
    big: AsyncClient = field(init=False)

    def __post_init__(self) -> None:
        self.client = AsyncClient(self.target, self.key, timeout_s=60.0)
        self.big = AsyncClient(
            self.target, self.key, timeout_s=60.0, max_message_bytes=BIG_MESSAGE_BYTES
        )

    async def close(self) -> None:
        await asyncio.gather(self.client.close(), self.big.close())


Run = Callable[[Session, random.Random], Awaitable[Outcome]]


@dataclass(frozen=True)
class Probe:
    category: str
    name: str
    run: Run


# --------------------------------------------------------------------------- judging


def error_kind(exc: LatmError) -> str:
    """The kind of a refusal: ``QuotaExceeded`` -> ``quota_exceeded``, with gRPC's names
    where the class name says less (``not_found``, ``invalid_argument``, ``internal``)."""
    named = {"ToolNotFound": "not_found", "InvalidRequest": "invalid_argument",
             "LatmError": "internal"}  # fmt: skip
    name = type(exc).__name__
    if name in named:
        return named[name]
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


def _leak(text: str, hostile: bool) -> str:
    if CANARY in text:
        return "unexpected:secret_leaked"
    if hostile and MARK in text:
        return "unexpected:escaped"
    return ""


async def judge(
    session: Session,
    call: Awaitable[Any],
    accepted: frozenset[str],
    check: Callable[[Any], str] | None = None,
    *,
    hostile: bool = True,
) -> Outcome:
    """Run ``call`` and classify how it ended (see :func:`classify`)."""
    try:
        answer = await call
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        return classify(session, exc, accepted, check, hostile=hostile)
    return classify(session, answer, accepted, check, hostile=hostile)


def classify(
    session: Session,
    answer: Any,
    accepted: frozenset[str],
    check: Callable[[Any], str] | None = None,
    *,
    hostile: bool = True,
) -> Outcome:
    """The outcome of an answer or an exception. ``check`` looks at a successful answer
    and says what is wrong with it ('' when nothing); an ok from a hostile call is wrong."""
    if session.tight:  # its rate and concurrency quotas refuse calls by design
        accepted = accepted | {"quota_exceeded"}
    if isinstance(answer, LatmError):
        kind, text = error_kind(answer), str(answer)
        leak = _leak(text, hostile)
        if leak or kind not in accepted:
            return Outcome(leak or f"unexpected:{kind}", text[:300])
        return Outcome(kind, text[:300], getattr(answer, "retry_after_s", None))
    if isinstance(answer, Exception):
        return Outcome("unexpected:client_exception", f"{type(answer).__name__}: {answer}"[:300])
    if isinstance(answer, ToolResult):
        text = json.dumps([answer.value, answer.stdout, answer.error], default=str)
        kind = answer.status
        detail = f"{answer.status}: {(answer.error or {}).get('message', '')}"
    else:
        text, kind, detail = str(answer), "ok", ""
    leak = _leak(text, hostile)
    if leak or kind not in accepted:
        return Outcome(leak or f"unexpected:{kind}", (text if leak else detail)[:300])
    if kind == "ok":
        problem = check(answer) if check else "a hostile call succeeded"
        if problem:
            wrong = "wrong_value" if check else "hostile_succeeded"
            return Outcome(f"unexpected:{wrong}", problem[:300])
    return Outcome(kind)


# ----------------------------------------------------------------------- legit tools

WORDS = ["apple", "fig", "pear", "kiwi", "plum", "lime", "date", "melon", "grape", "mango"]


def _random_json(rng: random.Random, depth: int = 0) -> Any:
    pick = rng.random()
    if depth >= 3 or pick < 0.4:
        scalars: list[Any] = [
            rng.randint(-(10**12), 10**12),
            rng.uniform(-1e6, 1e6),
            "".join(rng.choice(string.ascii_letters + ' "\\\n\u00e9\u2713') for _ in range(8)),
            rng.random() < 0.5,
            None,
        ]
        return rng.choice(scalars)
    if pick < 0.7:
        return [_random_json(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {f"k{i}": _random_json(rng, depth + 1) for i in range(rng.randint(0, 4))}


def _word_stats(words: list[str]) -> dict[str, Any]:
    counts = collections.Counter(words)
    top = min(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    gcd = math.gcd(*[len(w) for w in words])
    return {"words": len(words), "distinct": len(counts), "top": [top[0], top[1]], "gcd": gcd}


def _expect(value: Any, stdout: str | None = None) -> Callable[[Any], str]:
    def check(result: ToolResult) -> str:
        if result.value != value:
            return f"expected {value!r}, got {result.value!r}"
        if stdout is not None and result.stdout != stdout:
            return f"expected stdout {stdout!r}, got {result.stdout!r}"
        return ""

    return check


def _legit_call(rng: random.Random, session: Session) -> tuple[str, dict[str, Any], Any, Any]:
    """(tool, arguments, expected value, expected stdout or None) for one legit call."""
    name = rng.choice([*LEGIT_TOOLS, "private"])
    words = [rng.choice(WORDS) for _ in range(rng.randint(1, 12))]
    if name == "add":
        a, b = rng.randint(-(10**9), 10**9), rng.randint(-(10**9), 10**9)
        return name, {"a": a, "b": b}, a + b, None
    if name == "sort_words":
        question = "Sort the following words alphabetically: List: " + " ".join(words)
        return name, {"question": question}, " ".join(sorted(words)), None
    if name == "word_stats":
        return name, {"text": " ".join(words)}, _word_stats(words), None
    if name == "echo":
        value = _random_json(rng)
        return name, {"value": value}, value, None
    if name == "shout":
        text = " ".join(words)
        return name, {"text": text}, len(text), text.upper() + "\n"
    return f"private_{session.tenant}", {}, session.tokens[session.tenant], None


async def legit_execute(session: Session, rng: random.Random) -> Outcome:
    tool, arguments, value, stdout = _legit_call(rng, session)
    call = session.client.execute_tool(tool, arguments)
    return await judge(session, call, frozenset({"ok"}), _expect(value, stdout), hostile=False)


# ------------------------------------------------------------------------ read calls


async def read_list(session: Session, _rng: random.Random) -> Outcome:
    def check(tools: list[pb.ToolSummary]) -> str:
        names = {tool.name for tool in tools}
        return "" if names == tool_names(session.tenant) else f"listed {sorted(names)}"

    return await judge(session, session.client.list_tools(), frozenset({"ok"}), check,
                       hostile=False)  # fmt: skip


async def read_get(session: Session, rng: random.Random) -> Outcome:
    name = rng.choice(sorted(tool_names(session.tenant)))

    def check(card: pb.ToolCard) -> str:
        return "" if card.name == name and card.sha256 else f"got card {card.name!r}"

    return await judge(session, session.client.get_tool(name), frozenset({"ok"}), check,
                       hostile=False)  # fmt: skip


async def read_export(session: Session, rng: random.Random) -> Outcome:
    name = rng.choice([*LEGIT_TOOLS])

    def check(text: str) -> str:
        card = json.loads(text)
        ok = card["name"] == name and card["source"] == LEGIT_TOOLS[name]
        return "" if ok else f"exported {text[:200]}"

    return await judge(session, session.client.export_tool(name), frozenset({"ok"}), check,
                       hostile=False)  # fmt: skip


async def read_usage(session: Session, _rng: random.Random) -> Outcome:
    def check(report: pb.GetUsageResponse) -> str:
        return "" if report.tenant == session.tenant else f"usage of {report.tenant!r}"

    return await judge(session, session.client.get_usage(), frozenset({"ok"}), check,
                       hostile=False)  # fmt: skip


# --------------------------------------------------------------------- hostile tools


def hostile_probe(name: str, tool: HostileTool) -> Probe:
    async def run(session: Session, _rng: random.Random) -> Outcome:
        call = session.client.execute_tool(name, {}, **tool.limits)
        # A tool refused at import was never published: asking for it is not_found.
        refused = frozenset({"not_found"}) if name in REFUSED_AT_IMPORT else frozenset()
        return await judge(session, call, tool.accepted | refused)

    category = "exhaustion" if name.startswith("exhaust_") else "escape"
    return Probe(category, tool.label, run)


# ------------------------------------------------------------------- hostile requests


def _other_tenant(session: Session, rng: random.Random) -> str:
    return rng.choice([t for t in session.tokens if t != session.tenant])


async def bad_key(session: Session, rng: random.Random) -> Outcome:
    """A forged, unknown, malformed or empty key, each on a fresh connection."""
    keys = [
        session.key[:-4] + ("AAAA" if not session.key.endswith("AAAA") else "BBBB"),
        "latm_" + "".join(rng.choice("0123456789abcdef") for _ in range(16)) + "_" + "x" * 43,
        "not-a-key",
        "",
    ]
    key = rng.choice(keys)

    async def call() -> Any:
        async with AsyncClient(session.target, key, timeout_s=30.0) as client:
            if rng.random() < 0.5:
                return await client.list_tools()
            return await client.execute_tool("add", {"a": 1, "b": 2})

    outcome = await judge(session, call(), frozenset({"unauthenticated"}))
    if key and key in outcome.detail:
        return Outcome("unexpected:key_quoted", outcome.detail)
    return outcome


async def other_tenants_tool(session: Session, rng: random.Random) -> Outcome:
    name = f"private_{_other_tenant(session, rng)}"
    calls = [
        lambda: session.client.execute_tool(name, {}),
        lambda: session.client.get_tool(name),
        lambda: session.client.export_tool(name),
    ]
    return await judge(session, rng.choice(calls)(), frozenset({"not_found"}))


async def unknown_tool(session: Session, rng: random.Random) -> Outcome:
    if rng.random() < 0.5:
        call = session.client.execute_tool("add", {"a": 1, "b": 2}, version=10_000)
    else:
        call = session.client.execute_tool(f"missing_{rng.randint(0, 10**6)}", {})
    return await judge(session, call, frozenset({"not_found"}))


async def over_quota_limits(session: Session, rng: random.Random) -> Outcome:
    limits = rng.choice(
        [{"timeout_ms": MAX_TIMEOUT_MS + 1}, {"memory_mb": MAX_MEMORY_MB + rng.randint(1, 10**5)}]
    )
    call = session.client.execute_tool("add", {"a": 1, "b": 2}, **limits)
    return await judge(session, call, frozenset({"quota_exceeded"}))


async def oversized_arguments(session: Session, rng: random.Random) -> Outcome:
    """Above the API's arguments cap, or above the server's gRPC message cap."""
    if rng.random() < 0.5:
        value = "x" * (MAX_ARGUMENTS_BYTES + 1024)
        return await judge(session, session.client.execute_tool("echo", {"value": value}),
                           frozenset({"invalid_argument"}))  # fmt: skip
    value = "x" * (5 * 1024 * 1024)
    return await judge(session, session.big.execute_tool("echo", {"value": value}),
                       frozenset({"resource_exhausted"}))  # fmt: skip


async def _raw_execute(session: Session, request: pb.ExecuteToolRequest) -> Any:
    """ExecuteTool with a request the typed client would not build."""
    import grpc

    stub, metadata = session.client.stub, session.client.metadata
    try:
        return await stub.ExecuteTool(request, timeout=30.0, metadata=metadata)
    except grpc.RpcError as exc:
        raise from_rpc_error(exc) from None


async def malformed_request(session: Session, rng: random.Random) -> Outcome:
    nested = "[" * 200 + "]" * 200
    request = rng.choice(
        [
            pb.ExecuteToolRequest(tool="add", arguments_json="{not json"),
            pb.ExecuteToolRequest(tool="add", arguments_json="[1, 2]"),
            pb.ExecuteToolRequest(tool="add", arguments_json="1" * 10),
            pb.ExecuteToolRequest(tool="a" * 65, arguments_json="{}"),
            pb.ExecuteToolRequest(tool="", arguments_json="{}"),
            pb.ExecuteToolRequest(tool="echo", arguments_json='{"value": ' + nested + "}"),
            pb.ExecuteToolRequest(tool="echo", arguments_json='{"_getattr_": 1}'),
        ]
    )
    return await judge(session, _raw_execute(session, request), frozenset({"invalid_argument"}))


async def bad_card(session: Session, rng: random.Random) -> Outcome:
    """A card whose source is not its sha256's, one over the source cap, or no card."""
    demo = ("", "ans = 1", "1")
    card = json.loads(card_json(LEGIT_TOOLS["add"], "add", *demo, description="add", maker="bench"))
    card["source"] = card["source"].replace("a + b", "a - b")
    huge = "# " + "x" * (MAX_SOURCE_BYTES + 1024) + "\n" + LEGIT_TOOLS["add"]
    texts = [
        json.dumps(card),
        card_json(huge, "add", *demo, description="add", maker="bench"),
        '{"format": "latm.tool/v1"}',
    ]
    text = rng.choice([*texts, "{", "[]"])
    return await judge(session, session.client.import_tool(text), frozenset({"invalid_argument"}))


async def wrong_arguments(session: Session, rng: random.Random) -> Outcome:
    choices: list[dict[str, Any]] = [{"a": 1}, {"a": 1, "b": 2, "c": 3}, {"a": "x", "b": 1}]
    arguments = rng.choice(choices)
    return await judge(session, session.client.execute_tool("add", arguments),
                       frozenset({"error"}))  # fmt: skip


async def past_the_deadline(session: Session, _rng: random.Random) -> Outcome:
    """A spin under a client deadline shorter than its sandbox timeout."""
    call = session.client.execute_tool(spin_tool(), {}, timeout_ms=MAX_TIMEOUT_MS, timeout_s=0.5)
    return await judge(session, call, frozenset({"deadline_exceeded"}))


async def cancelled_midway(session: Session, _rng: random.Random) -> Outcome:
    """A spin cancelled by the client while it runs."""
    task = asyncio.ensure_future(
        session.client.execute_tool(spin_tool(), {}, timeout_ms=MAX_TIMEOUT_MS)
    )
    await asyncio.sleep(0.3)
    task.cancel()
    answer: Any
    try:
        answer = await task
    except asyncio.CancelledError:
        return Outcome("cancelled")
    except Exception as exc:  # refused before the cancel came (a tight tenant's quota)
        answer = exc
    return classify(session, answer, frozenset())


# ------------------------------------------------- the hostile tenant's limit probes


def _hog_card(rng: random.Random, name: str, padding: int, demos: int = 1) -> str:
    """The ``add`` tool as ``name``, its source ``padding`` bytes longer (a comment, which
    also makes it a new version), with ``demos`` usage demos."""
    source = f"{LEGIT_TOOLS['add']}# {rng.getrandbits(64):x} {'x' * padding}\n"
    demo = ("1 + 2", "ans = add(1, 2)", "3")
    card = json.loads(card_json(source, "add", *demo, description="add two numbers", maker="bench"))
    card["name"] = name
    card["usage_demos"] *= demos
    return json.dumps(card)


def _is_card(name: str) -> Callable[[Any], str]:
    return lambda card: "" if card.name == name else f"imported {card.name!r}, not {name!r}"


async def fill_tools(session: Session, rng: random.Random) -> Outcome:
    """A tool of up to 200 KB under one of twelve names: past its tools, versions or
    stored bytes the tenant is refused."""
    name = f"hog_{rng.randrange(12)}"
    text = _hog_card(rng, name, rng.choice([100, 50_000, 200_000]))
    accepted = frozenset({"ok", "quota_exceeded"})
    return await judge(
        session, session.client.import_tool(text), accepted, _is_card(name), hostile=False
    )


async def oversized_card(session: Session, rng: random.Random) -> Outcome:
    """A card over the tenant's card size, or with more demos than it may have."""
    name = f"hog_{rng.randrange(12)}"
    text = rng.choice([_hog_card(rng, name, 400 * 1024), _hog_card(rng, name, 10, demos=5)])
    return await judge(session, session.client.import_tool(text), frozenset({"quota_exceeded"}))


async def long_question(session: Session, rng: random.Random) -> Outcome:
    question = "What is 1 + 2? " + "x" * (2000 + rng.randrange(10**5))
    return await judge(session, session.client.solve(question, tool="hog_0"),
                       frozenset({"invalid_argument"}))  # fmt: skip


async def large_prompt(session: Session, rng: random.Random) -> Outcome:
    """A question within the character quota whose prompt is over the token quota: refused
    before any model call (or the tool is not there)."""
    question = "What is 1 + 2? " + "x" * rng.randrange(1300, 1980)
    return await judge(session, session.client.solve(question, tool=f"hog_{rng.randrange(4)}"),
                       frozenset({"quota_exceeded", "not_found"}))  # fmt: skip


async def large_make(session: Session, rng: random.Random) -> Outcome:
    """A MakeTool with more examples, or more bytes of them, than the tenant may send."""
    many = [(f"What is {n} + 1?", str(n + 1)) for n in range(21 + rng.randrange(100))]
    big = [(f"What is {'1 + ' * 3000}1?", "3001")] * 2
    stream = session.client.make_tool("sums", rng.choice([many, big]))
    return await judge(session, anext(stream), frozenset({"quota_exceeded"}))


async def tiny_memory(session: Session, rng: random.Random) -> Outcome:
    call = session.client.execute_tool("hog_0", {"a": 1, "b": 2}, memory_mb=rng.randint(1, 15))
    return await judge(session, call, frozenset({"invalid_argument"}))


async def delete_some(session: Session, rng: random.Random) -> Outcome:
    """Make room again, so the tenant keeps pushing its limits rather than sitting at them."""
    call = session.client.delete_tool(f"hog_{rng.randrange(12)}")
    return await judge(session, call, frozenset({"ok", "not_found"}), lambda n: "", hostile=False)


async def list_all(session: Session, _rng: random.Random) -> Outcome:
    return await judge(session, session.client.list_tools(), frozenset({"ok"}),
                       lambda tools: "" if len(tools) <= 8 else f"{len(tools)} tools, over 8",
                       hostile=False)  # fmt: skip


LIMIT_PROBES: dict[str, Run] = {
    "fill-tools": fill_tools,
    "oversized-card": oversized_card,
    "long-question": long_question,
    "large-prompt": large_prompt,
    "large-make": large_make,
    "tiny-memory": tiny_memory,
    "delete-some": delete_some,
    "list-all": list_all,
}
API_PROBES: dict[str, Run] = {
    "bad-key": bad_key,
    "other-tenants-tool": other_tenants_tool,
    "unknown-tool": unknown_tool,
    "over-quota-limits": over_quota_limits,
    "oversized-arguments": oversized_arguments,
    "malformed-request": malformed_request,
    "bad-card": bad_card,
    "wrong-arguments": wrong_arguments,
    "past-the-deadline": past_the_deadline,
    "cancelled-midway": cancelled_midway,
}
READ_PROBES: dict[str, Run] = {
    "list-tools": read_list,
    "get-tool": read_get,
    "export-tool": read_export,
    "get-usage": read_usage,
}


@functools.cache
def probes() -> dict[str, list[Probe]]:
    """Every probe, by category (shared: do not change the lists)."""
    found: dict[str, list[Probe]] = {c: [] for c in CATEGORIES}
    found["legit"].append(Probe("legit", "execute", legit_execute))
    found["read"] += [Probe("read", n, run) for n, run in READ_PROBES.items()]
    found["api"] += [Probe("api", n, run) for n, run in API_PROBES.items()]
    found["limits"] += [Probe("limits", n, run) for n, run in LIMIT_PROBES.items()]
    for name, tool in hostile_tools().items():
        probe = hostile_probe(name, tool)
        found[probe.category].append(probe)
    return found
