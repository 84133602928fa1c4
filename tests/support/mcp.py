"""The MCP endpoint for the suites that call it: a server with ``/mcp`` and the tools
``add`` and ``spin``, the official Python SDK's client of it, and readers of results."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import mcp_types as types
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from prometheus_client import REGISTRY

from tests.support.api import ADD_CARD, SPIN_CARD, Api, StartApi
from tests.support.maker import SORT, maker_script

# add(a, b)'s input schema, as read in the sandbox: no annotations, no defaults.
ADD_SCHEMA = {
    "type": "object",
    "properties": {"a": {}, "b": {}},
    "required": ["a", "b"],
    "additionalProperties": False,
}


async def start_mcp(start_api: StartApi, **settings: Any) -> Api:
    """A server with ``/mcp`` on an ephemeral port, acme holding ``add`` and ``spin``, a
    scripted user that solves with ``add`` and a scripted maker of ``sort_words``;
    ``settings`` are more of the server's."""
    started = await start_api(
        user=["ans = add(a=2, b=3)"],
        maker=maker_script(SORT),
        http_listen="127.0.0.1:0",
        **settings,
    )
    async with started.client() as client:
        await client.import_tool(ADD_CARD)
        await client.import_tool(SPIN_CARD)
    return started


def url(api: Api) -> str:
    return f"http://{api.server.http.address}/mcp"


def http(key: str, **headers: str) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(
        headers={"Authorization": f"Bearer {key}", **headers},
        timeout=httpx2.Timeout(30.0, read=120.0),
    )


@contextlib.asynccontextmanager
async def connect(api: Api, key: str | None = None, **options: Any) -> AsyncIterator[Client]:
    """The SDK's client over Streamable HTTP, with ``key`` (acme's by default). (Not a
    fixture: anyio's task group must be left in the task that entered it.)"""
    async with (
        http(api.acme if key is None else key) as session,
        Client(streamable_http_client(url(api), http_client=session), **options) as client,
    ):
        yield client


def value(result: types.CallToolResult) -> Any:
    assert not result.is_error, result.content
    return result.structured_content["result"]


def text(result: types.CallToolResult) -> str:
    return " ".join(block.text for block in result.content if isinstance(block, types.TextContent))


def sandbox_calls() -> float:
    """Calls that reached a sandbox, over every backend and status (this process's metric)."""
    return sum(
        sample.value
        for metric in REGISTRY.collect()
        if metric.name == "latm_sandbox_calls"
        for sample in metric.samples
        if sample.name == "latm_sandbox_calls_total"
    )


async def post(api: Api, body: bytes, **headers: str) -> httpx2.Response:
    """A raw POST to ``/mcp``: any body, any headers."""
    async with httpx2.AsyncClient(timeout=10.0) as raw:
        return await raw.post(
            url(api),
            content=body,
            headers={
                "content-type": "application/json",
                "accept": "application/json, text/event-stream",
                **headers,
            },
        )


INITIALIZE = json.dumps(
    {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "probe", "version": "0"},
        },
    }
).encode()
