"""Class 16 on the MCP endpoint (``/mcp``), on every backend: no key, a revoked key,
another tenant's tool, oversized and malformed JSON-RPC, a hostile ``Origin``, arguments
off the tool's schema. Each is a clear error, nothing reaches a sandbox, the registry holds
what it held, and both tenants are served normally afterwards."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.security.conftest import FLAVOUR_PARAMS, _backend, tools_by_tenant
from tests.support.api import ADD_CARD, PLUS_CARD, Api, start_server
from tests.support.mcp import INITIALIZE, connect, post, sandbox_calls, text, value

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(loop_scope="module", scope="module", params=FLAVOUR_PARAMS)
async def api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Api]:
    """One server with ``/mcp`` per flavour; acme owns ``add``, globex owns ``plus``."""
    backend = _backend(request.param, [])
    folder = tmp_path_factory.mktemp(f"mcp-{request.param}")
    served = await start_server(folder, backend=backend, http_listen="127.0.0.1:0")
    try:
        async with served.client() as acme, served.client(served.globex) as globex:
            await acme.import_tool(ADD_CARD)
            await globex.import_tool(PLUS_CARD)
        yield served
    finally:
        await served.server.stop(grace_s=1.0)


def holdings(api: Api) -> dict[str, list[tuple[str, int | None, str]]]:
    return tools_by_tenant(api.server.registry, ("acme", "globex"))


async def assert_served(api: Api) -> None:
    """Both tenants call their own tool over MCP, on this flavour's sandboxes."""
    async with connect(api) as acme, connect(api, api.globex) as globex:
        assert value(await acme.call_tool("add", {"a": 2, "b": 40})) == 42
        assert value(await globex.call_tool("plus", {"a": 1, "b": 1})) == 2


async def test_requests_without_a_valid_key_or_from_another_origin_are_refused(api: Api) -> None:
    before, calls = holdings(api), sandbox_calls()
    revoked_key = api.tenants.create("initech")
    api.tenants.revoke("initech")
    for headers, status in (
        ({}, 401),
        ({"authorization": "Bearer latm_nope"}, 401),
        ({"authorization": f"Bearer {revoked_key}"}, 401),
        ({"authorization": api.acme}, 401),  # the key without its scheme
        ({"authorization": f"Bearer {api.acme}", "origin": "https://evil.example"}, 403),
        ({"authorization": f"Bearer {api.acme}", "origin": "null"}, 403),
    ):
        refused = await post(api, INITIALIZE, **headers)
        assert refused.status_code == status, (headers, refused.text)
        assert "error" in refused.json()
    assert (holdings(api), sandbox_calls()) == (before, calls)
    await assert_served(api)


async def test_malformed_and_oversized_json_rpc_is_refused(api: Api) -> None:
    before, calls = holdings(api), sandbox_calls()
    bearer = f"Bearer {api.acme}"
    for body, status in (
        (b'{"jsonrpc": "2.0", "id": 1, "method":', 400),
        (b'["not", "json-rpc"]', 400),
        (b"\xff\xfe not even text", 400),
        (b'{"pad": "' + b"x" * (2 * 1024 * 1024) + b'"}', 413),
    ):
        refused = await post(api, body, authorization=bearer)
        assert refused.status_code == status, (body[:40], refused.text[:200])
    assert (holdings(api), sandbox_calls()) == (before, calls)
    await assert_served(api)


async def test_another_tenants_tool_and_arguments_off_the_schema_run_nothing(api: Api) -> None:
    before = holdings(api)
    async with connect(api, api.globex) as globex:
        calls = sandbox_calls()
        taken = await globex.call_tool("add", {"a": 1, "b": 2})
        assert taken.is_error
        assert "no tool named 'add'" in text(taken)
        for arguments in ({"a": 1}, {"a": 1, "b": 2, "__class__": 3}, {}):
            refused = await globex.call_tool("plus", arguments)
            assert refused.is_error
            assert "do not match the tool's input schema" in text(refused)
        assert sandbox_calls() == calls
    assert holdings(api) == before
    await assert_served(api)
