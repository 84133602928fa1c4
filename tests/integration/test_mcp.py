"""MCP over Streamable HTTP (``latm serve``'s ``/mcp``) and stdio (``latm mcp``), with the
official SDK's own client: tool lists with schemas read in the sandbox, calls, timeouts,
``solve``, ``make_tool`` with progress, and the endpoint's refusals."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import mcp_types as types
import pytest
import pytest_asyncio
from mcp import Client, StdioServerParameters
from mcp.shared.subscriptions import ToolsListChanged
from prometheus_client import REGISTRY

from tests.support.api import FOREVER, Api, StartApi
from tests.support.cards import card_json
from tests.support.maker import SORT, maker_script, word_sorting
from tests.support.mcp import (
    ADD_SCHEMA,
    INITIALIZE,
    connect,
    post,
    sandbox_calls,
    start_mcp,
    text,
    value,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


@pytest_asyncio.fixture
async def api(start_api: StartApi) -> Api:
    return await start_mcp(start_api)


async def test_tools_are_listed_with_the_schema_read_in_the_sandbox(api: Api) -> None:
    async with connect(api) as acme:
        await _test_tools_are_listed_with_the_schema_read_in_the_sandbox(acme)


async def _test_tools_are_listed_with_the_schema_read_in_the_sandbox(acme: Client) -> None:
    tools = {tool.name: tool for tool in (await acme.list_tools()).tools}
    assert set(tools) == {"solve", "make_tool", "add", "spin"}
    assert tools["add"].description == "Add two numbers."
    assert tools["add"].input_schema == ADD_SCHEMA
    assert tools["spin"].input_schema["required"] == ["loops"]
    assert tools["solve"].input_schema["required"] == ["question"]


async def test_a_call_runs_in_the_sandbox_and_a_timeout_is_an_error_result(api: Api) -> None:
    async with connect(api) as acme:
        await _test_a_call_runs_in_the_sandbox_and_a_timeout_is_an_error_result(acme)


async def _test_a_call_runs_in_the_sandbox_and_a_timeout_is_an_error_result(acme: Client) -> None:
    added = await acme.call_tool("add", {"a": 2, "b": 40})
    assert value(added) == 42
    assert text(added) == "42"
    stuck = await acme.call_tool("spin", {"loops": FOREVER})
    assert stuck.is_error
    assert "timeout" in text(stuck)
    assert value(await acme.call_tool("add", {"a": "x", "b": "y"})) == "xy"


def api_requests(method: str, code: str) -> float:
    found = REGISTRY.get_sample_value("latm_api_requests_total", {"method": method, "code": code})
    return found or 0.0


async def test_arguments_off_the_schema_run_nothing(api: Api) -> None:
    async with connect(api) as acme:
        before = sandbox_calls(), api_requests("MCP.CallTool", "INVALID_ARGUMENT")
        for arguments in ({"a": 2}, {"a": 1, "b": 2, "c": 3}, {}):
            refused = await acme.call_tool("add", arguments)
            assert refused.is_error
            assert "do not match the tool's input schema" in text(refused)
        # Nothing ran; each refusal was metered like a gRPC call's.
        after = sandbox_calls(), api_requests("MCP.CallTool", "INVALID_ARGUMENT")
        assert after == (before[0], before[1] + 3)


async def test_a_call_runs_no_tool_list(api: Api) -> None:
    async with connect(api) as acme:  # a 2026-07-28 session: each call a single exchange
        await acme.list_tools()
        listed = api_requests("MCP.ListTools", "OK")
        for n in range(3):
            assert value(await acme.call_tool("add", {"a": n, "b": 1})) == n + 1
        assert api_requests("MCP.ListTools", "OK") == listed
        assert (await acme.list_tools()).tools
        assert api_requests("MCP.ListTools", "OK") == listed + 1


async def test_solve_uses_the_tenants_tool(api: Api) -> None:
    async with connect(api) as acme:
        await _test_solve_uses_the_tenants_tool(acme)


async def _test_solve_uses_the_tenants_tool(acme: Client) -> None:
    result = await acme.call_tool("solve", {"question": "What is 2 plus 3?", "tool": "add"})
    assert not result.is_error
    assert result.structured_content["answer"] == "5"
    assert result.structured_content["route"] == "tool"
    assert result.structured_content["tool"] == "add"
    assert result.structured_content["escalated"] is False
    assert result.structured_content["answered_by"].startswith("scripted:")
    assert result.structured_content["confidence"] == 1.0


async def test_make_tool_reports_progress_and_announces_the_new_tool(api: Api) -> None:
    reported: list[tuple[float, str | None]] = []
    changed: list[Any] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        reported.append((progress, message))

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            changed.append(message)

    examples = [{"question": q, "answer": a} for q, a in word_sorting()]
    async with connect(api, mode="legacy", message_handler=on_message) as client:
        made = await client.call_tool(
            "make_tool",
            {"task": "word_sorting", "examples": examples},
            progress_callback=on_progress,
        )
        assert not made.is_error, text(made)
        assert made.structured_content["name"] == "sort_words"
        assert made.structured_content["passed"] == made.structured_content["total"] == 3
        names = {tool.name for tool in (await client.list_tools()).tools}
    assert "sort_words" in names
    messages = [message or "" for _, message in reported]
    assert any("attempt 1" in message for message in messages)
    assert sum("verification case passed" in message for message in messages) == 3
    assert [done for done, _ in reported] == sorted(done for done, _ in reported)
    assert changed, "no notifications/tools/list_changed after make_tool"


DOUBLE_SOURCE = 'def double(x):\n    """Twice x."""\n    return 2 * x\n'
DOUBLE = card_json(DOUBLE_SOURCE, "double", "Twice 4", "ans = double(x=4)", "8")
ANNOUNCED_WITHIN_S = 10.0  # the registry is polled every second


async def test_tools_changed_through_grpc_are_announced_to_the_tenants_sessions(api: Api) -> None:
    told: dict[str, int] = {"acme": 0, "globex": 0}
    changed = asyncio.Condition()

    def counting(tenant: str) -> Any:
        async def on_message(message: Any) -> None:
            if isinstance(message, types.ToolListChangedNotification):
                async with changed:
                    told[tenant] += 1
                    changed.notify_all()

        return on_message

    async def told_acme(count: int) -> None:
        async with asyncio.timeout(ANNOUNCED_WITHIN_S), changed:
            await changed.wait_for(lambda: told["acme"] >= count)

    async with (
        connect(api, mode="legacy", message_handler=counting("acme")) as acme,
        connect(api, api.globex, mode="legacy", message_handler=counting("globex")) as globex,
    ):
        assert "double" not in {tool.name for tool in (await acme.list_tools()).tools}
        await globex.list_tools()
        async with api.client() as grpc:
            await grpc.import_tool(DOUBLE)
            await told_acme(1)
            assert "double" in {tool.name for tool in (await acme.list_tools()).tools}
            await grpc.delete_tool("double")
            await told_acme(2)
        assert "double" not in {tool.name for tool in (await acme.list_tools()).tools}
        await asyncio.sleep(1.5)  # a poll more: nothing else changed, nothing more is told
    assert told == {"acme": 2, "globex": 0}


async def test_tools_changed_through_grpc_reach_a_listen_stream(api: Api) -> None:
    async with connect(api) as acme, acme.listen(tools_list_changed=True) as stream:
        async with api.client() as grpc:
            await grpc.import_tool(DOUBLE)
        async with asyncio.timeout(ANNOUNCED_WITHIN_S):
            event = await anext(aiter(stream))
    assert isinstance(event, ToolsListChanged)


async def test_another_tenant_sees_none_of_acmes_tools(api: Api) -> None:
    async with connect(api, api.globex) as globex:
        assert {tool.name for tool in (await globex.list_tools()).tools} == {"solve", "make_tool"}
        result = await globex.call_tool("add", {"a": 1, "b": 2})
        assert result.is_error
        assert "no tool named 'add'" in text(result)


async def test_the_endpoint_refuses_what_it_must_and_keeps_serving(api: Api) -> None:
    bearer = f"Bearer {api.acme}"
    no_key = await post(api, INITIALIZE)
    assert no_key.status_code == 401
    assert no_key.headers["www-authenticate"].startswith("Bearer")
    assert "API key" in no_key.json()["error"]["message"]
    wrong = await post(api, INITIALIZE, authorization="Bearer latm_nope")
    assert wrong.status_code == 401
    hostile = await post(api, INITIALIZE, authorization=bearer, origin="https://evil.example")
    assert hostile.status_code == 403
    assert "origin" in hostile.json()["error"]["message"]
    local = await post(api, INITIALIZE, authorization=bearer, origin="http://localhost:3000")
    assert local.status_code == 200
    malformed = await post(api, b'{"jsonrpc": "2.0", "id": 1, "method":', authorization=bearer)
    assert malformed.status_code == 400
    assert malformed.json()["error"]["code"] == -32700
    huge = await post(api, b'{"pad": "' + b"x" * (2 * 1024 * 1024) + b'"}', authorization=bearer)
    assert huge.status_code == 413
    not_rpc = await post(api, b'["not", "json-rpc"]', authorization=bearer)
    assert not_rpc.status_code == 400

    revoked_key = api.tenants.create("initech")
    api.tenants.revoke("initech")
    revoked = await post(api, INITIALIZE, authorization=f"Bearer {revoked_key}")
    assert revoked.status_code == 401

    async with connect(api) as client:
        assert value(await client.call_tool("add", {"a": 1, "b": 1})) == 2


async def test_a_session_belongs_to_the_tenant_that_opened_it(api: Api) -> None:
    opened = await post(api, INITIALIZE, authorization=f"Bearer {api.acme}")
    session = opened.headers["mcp-session-id"]
    taken = await post(
        api, INITIALIZE, authorization=f"Bearer {api.globex}", **{"mcp-session-id": session}
    )
    assert taken.status_code == 404


async def test_stdio_serves_one_tenants_tools(api: Api) -> None:
    folder = api.tmp
    (folder / "stdio-user.json").write_text(json.dumps(["ans = add(a=2, b=3)"]))
    (folder / "stdio-maker.json").write_text(json.dumps(maker_script(SORT)))
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/tmp"),
        "LATM_DATABASE_URL": f"sqlite:///{folder / 'registry.db'}",
        "LATM_USER_MODEL": f"scripted:{folder / 'stdio-user.json'}",
        "LATM_MAKER_MODEL": f"scripted:{folder / 'stdio-maker.json'}",
        "LATM_PROCESS_ISOLATION": os.environ.get("LATM_PROCESS_ISOLATION", "auto"),
    }
    server = StdioServerParameters(
        command=sys.executable,
        args=["-m", "orchestrator.cli", "mcp", "--tenant", "acme"],
        env=env,
        cwd=str(ROOT),
    )
    async with Client(server) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert tools["add"].input_schema == ADD_SCHEMA
        assert value(await client.call_tool("add", {"a": 20, "b": 22})) == 42
        stuck = await client.call_tool("spin", {"loops": FOREVER})
        assert stuck.is_error
        assert "timeout" in text(stuck)
        solved = await client.call_tool("solve", {"question": "What is 2 plus 3?", "tool": "add"})
        assert solved.structured_content["answer"] == "5"
        reported: list[str] = []

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            reported.append(message or "")

        examples = [{"question": q, "answer": a} for q, a in word_sorting()]
        made = await client.call_tool(
            "make_tool",
            {"task": "word_sorting", "examples": examples},
            progress_callback=on_progress,
        )
        assert not made.is_error, text(made)
        assert made.structured_content["passed"] == made.structured_content["total"] == 3
        assert any("attempt 1" in message for message in reported)
        assert sum("verification case passed" in message for message in reported) == 3


async def test_a_call_ends_at_the_servers_mcp_deadline_and_the_next_one_runs(
    start_api: StartApi,
) -> None:
    """MCP carries no deadline: ``LATM_MCP_CALL_TIMEOUT_S`` is each tools/call's, cut into
    the sandbox's limit as a gRPC deadline is (the spin would run the sandbox's 5 s)."""
    api = await start_mcp(start_api, mcp_call_timeout_s=1.0)
    async with connect(api) as acme:
        started = asyncio.get_running_loop().time()
        stuck = await acme.call_tool("spin", {"loops": FOREVER})
        waited = asyncio.get_running_loop().time() - started
        assert stuck.is_error
        assert "timeout" in text(stuck).lower() or "deadline" in text(stuck).lower()
        assert waited < 4.0
        assert value(await acme.call_tool("add", {"a": 2, "b": 40})) == 42
