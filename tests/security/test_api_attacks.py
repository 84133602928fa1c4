"""Class 16: attacks on the orchestrator's public gRPC API, on every backend.

A real server over a Unix socket in front of each flavour (bubblewrap processes, Docker
with runc, Docker with gVisor). Each attack asserts the status the caller gets, that the
registry holds exactly what it held before, and that both tenants are served normally
afterwards (:func:`assert_api_healthy`).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import pytest_asyncio
from google.protobuf import descriptor_pb2
from google.protobuf.message import Message
from latm.orchestrator.v1 import orchestrator_pb2 as pb

from orchestrator.errors import (
    InvalidRequest,
    PermissionDenied,
    QuotaExceeded,
    ToolNotFound,
    Unauthenticated,
)
from orchestrator.sandboxes.docker import DockerBackend
from orchestrator.sandboxes.process import ProcessBackend
from tests.fuzz.strategies import varint
from tests.security.conftest import FLAVOUR_PARAMS, _backend, tools_by_tenant
from tests.support.api import ADD_CARD, PLUS_CARD, Api, start_server

pytestmark = pytest.mark.asyncio(loop_scope="module")

SERVICE = "/latm.orchestrator.v1.OrchestratorService/"
# One valid request per unary method; MakeTool is a server stream.
UNARY: dict[str, Message] = {
    "Solve": pb.SolveRequest(question="What is 2 plus 3?", tool="add"),
    "ExecuteTool": pb.ExecuteToolRequest(tool="add", arguments_json='{"a": 1, "b": 2}'),
    "ListTools": pb.ListToolsRequest(),
    "GetTool": pb.GetToolRequest(name="add"),
    "DeleteTool": pb.DeleteToolRequest(name="add"),
    "ImportTool": pb.ImportToolRequest(card_json=ADD_CARD),
    "ExportTool": pb.ExportToolRequest(name="add"),
    "GetUsage": pb.GetUsageRequest(),
}
# Words no request message of the public API may carry: a caller never chooses how
# its code is isolated.
CONTAINER_WORDS = (
    "privileged", "mount", "volume", "network", "image", "runtime", "capabilit",
    "device", "env", "user", "host", "isolation", "seccomp", "backend", "tenant",
)  # fmt: skip


@pytest_asyncio.fixture(loop_scope="module", scope="module", params=FLAVOUR_PARAMS)
async def api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Api]:
    """One server per flavour; acme owns ``add``, globex owns ``plus``."""
    backend = _backend(request.param, [])
    folder = tmp_path_factory.mktemp(f"api-{request.param}")
    user = ["ans = add(a=2, b=3)"] * 50
    served = await start_server(folder, user=user, backend=backend, max_message_bytes=64 * 1024)
    try:
        async with served.client() as acme, served.client(served.globex) as globex:
            await acme.import_tool(ADD_CARD)
            await globex.import_tool(PLUS_CARD)
        yield served
    finally:
        await served.server.stop(grace_s=1.0)


async def raw_call(api: Api, method: str, request: bytes, metadata: Any = None) -> Any:
    """A unary call with the request given as bytes, so that any bytes can be sent."""
    async with grpc.aio.insecure_channel(api.server.address) as channel:
        call = channel.unary_unary(SERVICE + method, None, None)
        return await call(request, metadata=metadata, timeout=30)


async def status_of(api: Api, method: str, request: bytes, metadata: Any = None) -> grpc.StatusCode:
    try:
        await raw_call(api, method, request, metadata)
    except grpc.RpcError as exc:
        return exc.code()
    return grpc.StatusCode.OK


def registry_state(api: Api) -> dict[str, list[tuple[str, int | None, str]]]:
    return tools_by_tenant(api.server.registry, ("acme", "globex"))


async def assert_api_healthy(api: Api, before: dict[str, Any] | None = None) -> None:
    """Both tenants are served normally and each sees only its own tool, which the
    attack did not change; the sandboxes run as configured."""
    if before is not None:
        assert registry_state(api) == before
    async with api.client() as acme, api.client(api.globex) as globex:
        added = await acme.execute_tool("add", {"a": 2, "b": 40})
        assert (added.status, added.value) == ("ok", 42), added
        plus = await globex.execute_tool("plus", {"a": 1, "b": 1})
        assert (plus.status, plus.value) == ("ok", 2), plus
        assert [tool.name for tool in await acme.list_tools()] == ["add"]
        assert [tool.name for tool in await globex.list_tools()] == ["plus"]
    assert_isolated_as_configured(api)


def assert_isolated_as_configured(api: Api) -> None:
    """Whatever a request carried, every sandbox runs with the deployment's settings."""
    backend = api.server.backend
    if isinstance(backend, DockerBackend):
        containers = backend.own_containers()
        assert containers
        for container in containers:
            config = container.attrs["HostConfig"]
            assert config["Privileged"] is False
            assert config["NetworkMode"] == "none"
            assert config["CapDrop"] == ["ALL"]
            assert config["ReadonlyRootfs"] is True
            assert "no-new-privileges" in " ".join(config["SecurityOpt"] or [])
            assert len(container.attrs["Mounts"]) == 1  # only its own socket folder
            image = backend.docker.images.get(container.attrs["Config"]["Image"])
            # Nothing beyond the image's own defaults (PATH, LANG ...).
            assert set(container.attrs["Config"]["Env"] or []) <= set(image.attrs["Config"]["Env"])
    else:
        assert isinstance(backend, ProcessBackend)
        for tenant in ("acme", "globex"):
            pid = backend.server_pid(tenant)
            assert pid is not None
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            assert b"--unshare-all" in command
            assert b"--share-net" not in command
            assert b"--clearenv" in command


async def test_every_method_refuses_calls_without_a_valid_key(api: Api) -> None:
    before = registry_state(api)
    forged = api.acme[:-4] + ("AAAA" if not api.acme.endswith("AAAA") else "BBBB")
    key_id = api.acme.split("_")[1]
    bad_keys: list[Any] = [
        None,  # no metadata at all
        (("authorization", ""),),
        (("authorization", "Bearer "),),
        (("authorization", api.acme),),  # not a Bearer credential
        (("authorization", f"Bearer {forged}"),),  # right tenant id, wrong secret
        (("authorization", f"Bearer latm_{key_id}_{'A' * 43}"),),
        (("authorization", f"Bearer latm_{'0' * 16}_{api.acme.split('_')[2]}"),),
        (("authorization", "Bearer " + "x" * 4000),),
        (("x-api-key", api.acme),),  # a key in a header the service does not read
        (("authorization", f"Basic {api.acme}"),),
    ]
    for method, request in UNARY.items():
        for metadata in bad_keys:
            code = await status_of(api, method, request.SerializeToString(), metadata)
            assert code is grpc.StatusCode.UNAUTHENTICATED, (method, metadata)
    # A header over grpc's metadata cap is refused before the service sees it.
    too_long = (("authorization", "Bearer " + "x" * 20_000),)
    listing = UNARY["ListTools"].SerializeToString()
    assert await status_of(api, "ListTools", listing, too_long) in (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.UNAUTHENTICATED,
    )
    async with api.client("") as anonymous:
        with pytest.raises(Unauthenticated):
            [event async for event in anonymous.make_tool("t", [("q", "a")])]
    await assert_api_healthy(api, before)


async def test_another_tenants_tool_ids_are_not_found(api: Api) -> None:
    before = registry_state(api)
    names = ["add", "acme/add", "acme:add", "../acme/add", "add\x00", "ADD", "add "]
    async with api.client(api.globex) as globex:
        for name in names:
            for version in (0, 1):
                with pytest.raises((ToolNotFound, InvalidRequest)) as refused:
                    await globex.execute_tool(name, {"a": 1, "b": 2}, version=version)
                assert "acme" not in str(refused.value).replace(repr(name), "")
                with pytest.raises((ToolNotFound, InvalidRequest)):
                    await globex.get_tool(name, version=version)
                with pytest.raises((ToolNotFound, InvalidRequest)):
                    await globex.export_tool(name, version=version)
                with pytest.raises((ToolNotFound, InvalidRequest)):
                    await globex.delete_tool(name, version=version)
        with pytest.raises(ToolNotFound):
            await globex.solve("What is 2 plus 3?", tool="add")
        # The same message for a tool that exists elsewhere and one that exists nowhere.
        with pytest.raises(ToolNotFound) as elsewhere:
            await globex.get_tool("add")
        with pytest.raises(ToolNotFound) as nowhere:
            await globex.get_tool("nothing_here")
        assert str(elsewhere.value) == str(nowhere.value).replace("nothing_here", "add")
        usage = await globex.get_usage()
        assert "add" not in [line.tool for line in usage.by_tool]
    await assert_api_healthy(api, before)


async def test_replayed_requests_grant_nothing(api: Api) -> None:
    before = registry_state(api)
    captured = (("authorization", f"Bearer {api.acme}"),)
    imported = pb.ImportToolRequest(card_json=ADD_CARD).SerializeToString()
    execute = UNARY["ExecuteTool"].SerializeToString()
    # Replaying a mutation is idempotent: the same version, no duplicate.
    first = pb.ImportToolResponse.FromString(await raw_call(api, "ImportTool", imported, captured))
    again = pb.ImportToolResponse.FromString(await raw_call(api, "ImportTool", imported, captured))
    assert first.tool.version == again.tool.version == 1
    for _ in range(3):
        result = pb.ExecuteToolResponse.FromString(
            await raw_call(api, "ExecuteTool", execute, captured)
        )
        assert json.loads(result.value_json) == 3
    assert registry_state(api) == before

    # A captured call is worthless once the key is rotated: neither key leaks anything.
    new_key = api.tenants.rotate("acme")
    try:
        for method in ("ExecuteTool", "ImportTool", "DeleteTool", "ListTools"):
            request = UNARY[method].SerializeToString()
            code = await status_of(api, method, request, captured)
            assert code is grpc.StatusCode.UNAUTHENTICATED, method
    finally:
        api.acme = new_key
    await assert_api_healthy(api, before)


async def test_oversized_and_malformed_requests_are_refused(api: Api) -> None:
    before = registry_state(api)
    metadata = (("authorization", f"Bearer {api.acme}"),)
    huge = pb.ExecuteToolRequest(tool="add", arguments_json=json.dumps({"a": "x" * 100_000}))
    code = await status_of(api, "ExecuteTool", huge.SerializeToString(), metadata)
    assert code is grpc.StatusCode.RESOURCE_EXHAUSTED
    card = pb.ImportToolRequest(card_json=ADD_CARD.replace("Add two", "Add " + "two " * 20_000))
    assert await status_of(api, "ImportTool", card.SerializeToString(), metadata) in (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    nested = pb.ExecuteToolRequest(tool="add", arguments_json='{"a": ' + "[" * 5000 + "]" * 5000)
    nested_code = await status_of(api, "ExecuteTool", nested.SerializeToString(), metadata)
    assert nested_code is grpc.StatusCode.INVALID_ARGUMENT
    for garbage in (b"\xff\xff\xff\xff", b"\x0a\xff\xff\xff\xff\x0f", bytes(range(256))):
        for method in UNARY:
            code = await status_of(api, method, garbage, metadata)
            assert code is grpc.StatusCode.INVALID_ARGUMENT, (method, garbage)
            assert await status_of(api, method, garbage) is grpc.StatusCode.UNAUTHENTICATED
    async with api.client() as acme:
        with pytest.raises(InvalidRequest):
            await acme.execute_tool("x" * 10_000, {})
        with pytest.raises(InvalidRequest):
            await acme.solve("q" * 60_000)
    await assert_api_healthy(api, before)


async def test_limits_above_quota_and_container_options_are_refused_or_ignored(
    api: Api,
) -> None:
    before = registry_state(api)
    async with api.client() as acme:
        with pytest.raises((QuotaExceeded, PermissionDenied)) as over:
            await acme.execute_tool("add", {"a": 1, "b": 2}, timeout_ms=10**9)
        assert getattr(over.value, "retry_after_s", None) is None  # retrying cannot help
        with pytest.raises((QuotaExceeded, PermissionDenied)):
            await acme.execute_tool("add", {"a": 1, "b": 2}, memory_mb=1_000_000)
        with pytest.raises(InvalidRequest, match="least a call may have"):
            await acme.execute_tool("add", {"a": 1, "b": 2}, memory_mb=1)  # not a limit
        assert (await acme.execute_tool("add", {"a": 1, "b": 2}, memory_mb=16)).value == 3

    # No request of the public API has a field for how its code is isolated ...
    files = descriptor_pb2.FileDescriptorProto()
    pb.DESCRIPTOR.CopyToProto(files)
    requests = [m for m in files.message_type if m.name.endswith("Request")]
    assert {m.name for m in requests} >= {f"{name}Request" for name in UNARY}
    for message in [*requests, *(m for m in files.message_type if m.name == "SandboxLimits")]:
        for field in message.field:
            assert not any(word in field.name for word in CONTAINER_WORDS), (message.name, field)

    # ... and options smuggled in as unknown fields or metadata change nothing.
    smuggled = UNARY["ExecuteTool"].SerializeToString() + b"".join(
        _unknown_string(number, text)
        for number, text in [
            (100, "privileged=true"),
            (101, "/:/host:rw"),
            (102, "network=host"),
            (4000, '{"HostConfig": {"Privileged": true, "Binds": ["/:/host"]}}'),
        ]
    )
    metadata = (
        ("authorization", f"Bearer {api.acme}"),
        ("x-latm-privileged", "true"),
        ("x-latm-network", "host"),
        ("x-latm-runtime", "runc"),
        ("x-latm-tenant", "globex"),
    )
    result = pb.ExecuteToolResponse.FromString(
        await raw_call(api, "ExecuteTool", smuggled, metadata)
    )
    assert json.loads(result.value_json) == 3
    assert result.isolation == api.server.backend.isolation[0]
    await assert_api_healthy(api, before)


def _unknown_string(number: int, text: str) -> bytes:
    """A length-delimited field ``number`` no message defines (protobuf wire format)."""
    data = text.encode()
    return varint(number << 3 | 2) + varint(len(data)) + data
