"""The MCP endpoint with the official TypeScript SDK's client (``@modelcontextprotocol/sdk``,
``tests/interop/node/mcp_client.mjs``): its Client over StreamableHTTPClientTransport with
a bearer key lists the tools with their schemas, calls them (a timeout is an error result
and the session goes on), solves with a scripted user and makes a tool with a scripted
maker, receiving progress notifications and ``notifications/tools/list_changed``."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import pytest_asyncio

from tests.support.api import FOREVER, Api, StartApi
from tests.support.maker import word_sorting
from tests.support.mcp import ADD_SCHEMA, start_mcp, url
from tests.support.node import NODE_CLIENT, node_ready

pytestmark = [pytest.mark.integration, pytest.mark.slow]
NODE_TIMEOUT_S = 180.0


@pytest_asyncio.fixture
async def api(start_api: StartApi) -> Api:
    node_ready()  # first: a missing node skips before a server starts
    return await start_mcp(start_api)


async def run_client(api: Api, plan: list[dict[str, Any]], key: str) -> tuple[int, Any, str]:
    """mcp_client.mjs's exit status, its JSON report and its stderr (the server runs in
    this event loop, so the client runs as an asyncio subprocess)."""
    process = await asyncio.create_subprocess_exec(
        node_ready(),
        "mcp_client.mjs",
        "--url",
        url(api),
        "--key",
        key,
        cwd=NODE_CLIENT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(NODE_TIMEOUT_S):
        out, err = await process.communicate(json.dumps(plan).encode())
    assert out.strip(), f"mcp_client.mjs printed nothing (exit {process.returncode}): {err!r}"
    assert process.returncode is not None
    return process.returncode, json.loads(out), err.decode()[-2000:]


async def node_session(api: Api, plan: list[dict[str, Any]]) -> dict[str, Any]:
    """The report of ``plan``, run in one session with acme's key."""
    code, report, err = await run_client(api, plan, api.acme)
    assert code == 0, (report, err)
    assert isinstance(report, dict)
    return report


def call(name: str, arguments: dict[str, Any], **options: Any) -> dict[str, Any]:
    return {"op": "call", "name": name, "arguments": arguments, **options}


def result(step: dict[str, Any]) -> dict[str, Any]:
    assert "result" in step, step
    found: dict[str, Any] = step["result"]
    return found


def text(found: dict[str, Any]) -> str:
    return " ".join(block["text"] for block in found["content"] if block["type"] == "text")


async def test_tools_are_listed_and_called_and_a_timeout_is_an_error_result(api: Api) -> None:
    plan = [
        {"op": "list"},
        call("add", {"a": 2, "b": 40}),
        call("spin", {"loops": FOREVER}),
        call("add", {"a": "x", "b": "y"}),
        call("add", {"a": 2}),
    ]
    report = await node_session(api, plan)
    assert report["server"]["name"] == "latm"
    listed, added, stuck, joined, refused = (result(step) for step in report["steps"])
    tools = {tool["name"]: tool for tool in listed["tools"]}
    assert set(tools) == {"solve", "make_tool", "add", "spin"}
    assert tools["add"]["description"] == "Add two numbers."
    assert tools["add"]["inputSchema"] == ADD_SCHEMA
    assert tools["spin"]["inputSchema"]["required"] == ["loops"]
    assert added["structuredContent"] == {"result": 42}
    assert text(added) == "42"
    assert not added.get("isError")
    assert stuck["isError"] is True
    assert "timeout" in text(stuck)
    assert joined["structuredContent"] == {"result": "xy"}
    assert refused["isError"] is True
    assert "do not match the tool's input schema" in text(refused)


async def test_solve_with_a_scripted_user(api: Api) -> None:
    report = await node_session(api, [call("solve", {"question": "What is 2 plus 3?"})])
    solved = result(report["steps"][0])
    assert not solved.get("isError")
    assert text(solved) == "5"
    outcome = solved["structuredContent"]
    assert (outcome["answer"], outcome["route"], outcome["tool"]) == ("5", "tool", "add")
    assert outcome["call"] == "ans = add(a=2, b=3)"


async def test_make_tool_reports_progress_and_announces_the_new_tool(api: Api) -> None:
    examples = [{"question": q, "answer": a} for q, a in word_sorting()]
    plan = [
        call("make_tool", {"task": "word_sorting", "examples": examples}, progress=True),
        {"op": "list"},
        call("sort_words", {"question": "List: pear apple fig"}),
    ]
    report = await node_session(api, plan)
    made, listed, used = (result(step) for step in report["steps"])
    assert not made.get("isError"), text(made)
    assert made["structuredContent"]["name"] == "sort_words"
    assert made["structuredContent"]["passed"] == made["structuredContent"]["total"] == 3
    messages = [p.get("message", "") for p in made["progress"]]
    assert any("attempt 1" in message for message in messages)
    assert sum("verification case passed" in message for message in messages) == 3
    done = [p["progress"] for p in made["progress"]]
    assert done == sorted(done)
    assert "sort_words" in {tool["name"] for tool in listed["tools"]}
    assert used["structuredContent"] == {"result": "apple fig pear"}
    assert report["list_changed"] >= 1, "no notifications/tools/list_changed after make_tool"


async def test_a_wrong_key_cannot_open_a_session(api: Api) -> None:
    code, report, _ = await run_client(api, [{"op": "list"}], "latm_nope")
    assert code == 1
    assert report["connect"]["code"] == 401
    assert "invalid or revoked API key" in report["connect"]["message"]
