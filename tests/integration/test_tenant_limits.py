"""Every per-tenant limit over the real API: at the limit a call passes, one over it is
refused with a typed error and a clear message, the server keeps serving, and another
tenant is unaffected. The server runs in the test's loop (process backend, scripted
models), as in ``test_api``."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
from typing import Any

import pytest
from prometheus_client import REGISTRY

from orchestrator.errors import InvalidRequest, QuotaExceeded, ResourceExhausted
from orchestrator.latm.cards import ToolCard
from tests.support.api import ADD, ADD_CARD, SPIN_CARD, StartApi
from tests.support.cards import card_json
from tests.support.maker import SORT

pytestmark = pytest.mark.integration

SORT_CARD = card_json(SORT, "sort_words", "List: b a", "ans = sort_words('List: b a')", "a b")


def add_card(padding: int = 0, demos: int = 1, name: str = "add") -> str:
    """The ``add`` card with a source ``padding`` characters longer (a comment) and
    ``demos`` usage demos, named ``name``."""
    source = ADD + (f"# {'x' * padding}\n" if padding else "")
    card = json.loads(card_json(source, "add", "What is 2 plus 3?", "ans = add(a=2, b=3)", "5"))
    card["usage_demos"] *= demos
    card["name"] = name
    return json.dumps(card)


async def test_stored_tools_versions_and_bytes_are_bounded_per_tenant(
    start_api: StartApi,
) -> None:
    api = await start_api()
    api.tenants.set_quotas("acme", {"max_tools": 2, "max_versions": 3, "max_stored_mb": 1})
    async with api.client() as acme, api.client(api.globex) as globex:
        await acme.import_tool(ADD_CARD)
        await acme.import_tool(SPIN_CARD)  # at the limit of tools
        with pytest.raises(QuotaExceeded, match="has 2 tools, its quota"):
            await acme.import_tool(SORT_CARD)
        await acme.import_tool(add_card(padding=1))
        assert (await acme.import_tool(add_card(padding=2))).version == 3  # versions at limit
        with pytest.raises(QuotaExceeded, match="3 versions"):
            await acme.import_tool(add_card(padding=3))
        await acme.delete_tool("spin")
        await acme.import_tool(add_card(padding=500_000, name="big"))
        await acme.import_tool(add_card(padding=500_001, name="big"))  # about 1,000 KiB in all
        with pytest.raises(QuotaExceeded, match="bytes of tool cards"):
            await acme.import_tool(add_card(padding=500_002, name="big"))  # past 1 MiB
        assert sorted(t.name for t in await acme.list_tools()) == ["add", "big"]
        assert (await acme.execute_tool("add", {"a": 1, "b": 2})).value == 3
        for card in (ADD_CARD, SPIN_CARD, SORT_CARD, *(add_card(padding=n) for n in (1, 2, 3))):
            await globex.import_tool(card)  # the defaults: all of it fits
        assert len(await globex.list_tools()) == 3


@pytest.mark.parametrize(
    ("quota", "card", "match"),
    [
        ({"max_card_kb": 4}, add_card(padding=5000), "bytes of card JSON"),
        ({"max_demos": 1}, add_card(demos=2), "2 usage demos"),
    ],
)
async def test_one_card_over_its_size_limits_is_refused_before_its_demos_run(
    start_api: StartApi, quota: dict[str, int], card: str, match: str
) -> None:
    api = await start_api()
    api.tenants.set_quotas("acme", quota)
    async with api.client() as acme, api.client(api.globex) as globex:
        with pytest.raises(QuotaExceeded, match=match):
            await acme.import_tool(card)
        assert await acme.list_tools() == []
        await acme.import_tool(ADD_CARD)  # within the limits
        assert (await globex.import_tool(card)).name == "add"
    assert len(ToolCard.from_json(card).to_json().encode()) > 4096 or "demos" in match


async def test_questions_are_bounded_in_characters_and_prompts_in_tokens(
    start_api: StartApi,
) -> None:
    api = await start_api(user=["ans = add(a=2, b=3)", "ans = add(a=2, b=3)"])
    question = "What is 2 plus 3?"
    api.tenants.set_quotas("acme", {"max_question_chars": len(question) - 1})
    async with api.client() as acme:
        await acme.import_tool(ADD_CARD)
        with pytest.raises(InvalidRequest, match=f"limited to {len(question) - 1} characters"):
            await acme.solve(question, tool="add")
        api.tenants.set_quotas("acme", {"max_question_chars": len(question)})  # at the limit
        assert (await acme.solve(question, tool="add")).answer == "5"
        api.tenants.set_quotas("acme", {"max_prompt_tokens": 50})
        with pytest.raises(QuotaExceeded, match=r"prompt of about \d+ tokens, over"):
            await acme.solve(question, tool="add")
        api.tenants.set_quotas("acme", {"max_prompt_tokens": None})
        # The refused call never reached the model: its scripted reply is still there.
        assert (await acme.solve(question, tool="add")).answer == "5"


async def test_make_tool_requests_are_bounded_before_any_model_call(start_api: StartApi) -> None:
    api = await start_api()  # the maker has no scripted reply: a model call would fail
    examples = [(f"List: b a {n}", f"{n} a b") for n in range(4)]
    api.tenants.set_quotas("acme", {"max_make_examples": 3, "max_make_kb": 1})
    async with api.client() as acme:
        with pytest.raises(QuotaExceeded, match="4 solved examples is over"):
            await anext(acme.make_tool("sort_words", examples))
        with pytest.raises(QuotaExceeded, match="KiB"):
            await anext(acme.make_tool("sort_words", [("List: " + "a " * 600, "a")] * 2))
        api.tenants.set_quotas("acme", {"max_make_examples": None, "max_make_kb": None})
        api.tenants.set_quotas("acme", {"max_tools": 1})
        await acme.import_tool(ADD_CARD)
        with pytest.raises(QuotaExceeded, match="1 tools, its quota"):
            await anext(acme.make_tool("sort_words", examples * 3))


async def test_a_response_over_the_send_cap_is_refused_and_counted_as_such(
    start_api: StartApi,
) -> None:
    api = await start_api(max_message_bytes=64 * 1024)
    big = ToolCard.from_json(add_card(padding=100_000))
    api.server.registry.publish("acme", big)  # stored directly: the request would not fit

    def count(code: str) -> float:
        labels = {"method": "GetTool", "code": code}
        return REGISTRY.get_sample_value("latm_api_requests_total", labels) or 0.0

    before = count("RESOURCE_EXHAUSTED"), count("OK")
    async with api.client() as acme:
        with pytest.raises(ResourceExhausted, match="over this server's message cap"):
            await acme.get_tool("add")
        with pytest.raises(ResourceExhausted, match="ExportTool response would be"):
            await acme.export_tool("add")
        assert [t.name for t in await acme.list_tools()] == ["add"]  # summaries fit
    assert (count("RESOURCE_EXHAUSTED"), count("OK")) == (before[0] + 1, before[1])


async def test_a_cancelled_make_tool_stream_leaves_no_pending_task(
    start_api: StartApi, caplog: pytest.LogCaptureFixture
) -> None:
    api = await start_api(maker=[_slow_reply()] * 3)
    examples = [(f"List: b a {n}", f"{n} a b") for n in range(12)]
    async with api.client() as acme:
        for _ in range(3):
            stream = acme.make_tool("word_sorting", examples)
            first: Any = await anext(stream)
            assert first.WhichOneof("event") == "attempt"
            await stream.aclose()  # type: ignore[attr-defined] # cancels the call
            for _ in range(50):
                if api.server.service.quotas.in_flight("acme") == (0, 0):
                    break
                await asyncio.sleep(0.1)
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        gc.collect()
        await asyncio.sleep(0.1)
        gc.collect()
    assert not [r for r in caplog.records if "destroyed but it is pending" in r.getMessage()]


def _slow_reply() -> str:
    body = '    words = question.split("List:", 1)[-1].split()'
    tool = SORT.replace(body, "    while True:\n        pass")
    return f"```python\n{tool}```\n" + "\n".join(
        f"```python\nans = sort_words('List: b a {n}')\n```" for n in range(3)
    )
