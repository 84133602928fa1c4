"""The sandbox server's gRPC surface, in-process with a scripted template: what fuzzing
found it mishandled. Requests that do not decode are INVALID_ARGUMENT (not UNKNOWN);
whatever text or numbers the template relays, the reply serializes; the sandbox's own
underscore names cannot be called as an entrypoint."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import grpc
import pytest
import pytest_asyncio
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from latm.sandbox.v1 import sandbox_pb2, sandbox_pb2_grpc

from orchestrator.errors import InvalidRequest
from orchestrator.sandboxes import ExecRequest
from orchestrator.sandboxes.client import SandboxClient
from sandbox.contract import Answer, Request, Status
from sandbox.decoding import RefuseUndecodable
from sandbox.policy import source_id
from sandbox.server import SandboxServicer
from sandbox.supervisor import TemplateSupervisor

pytestmark = pytest.mark.asyncio
SURROGATE = "\ud800"


class ScriptedTemplate(TemplateSupervisor):
    """Answers every request with ``reply`` (the template process is never started)."""

    def __init__(self, reply: dict[str, Any]) -> None:
        super().__init__()
        self.reply = reply

    async def request(self, message: Request) -> Answer:
        # Replies a template would never send, on purpose: the server must survive them.
        return cast(Answer, {"tool_id": "", **self.reply})


@pytest_asyncio.fixture
async def serve(tmp_path: Path) -> AsyncIterator[Any]:
    """Start a server whose template answers with a given reply; yields a channel factory."""
    servers: list[grpc.aio.Server] = []
    channels: list[grpc.aio.Channel] = []

    async def start(reply: dict[str, Any]) -> grpc.aio.Channel:
        server = grpc.aio.server(interceptors=[RefuseUndecodable()])
        servicer = SandboxServicer(ScriptedTemplate(reply), [])
        sandbox_pb2_grpc.add_SandboxServiceServicer_to_server(servicer, server)
        health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)  # type: ignore[attr-defined]
        address = f"unix:{tmp_path}/s{len(servers)}.sock"
        server.add_insecure_port(address)
        await server.start()
        servers.append(server)
        channels.append(grpc.aio.insecure_channel(address))
        return channels[-1]

    yield start
    for channel in channels:
        await channel.close(None)
    for server in servers:
        await server.stop(None)


SERVICE = "/latm.sandbox.v1.SandboxService/"
CORRUPT = b"\xff\xff\xff"  # not protobuf's wire format
BAD_UTF8 = b"\x0a\x02\xff\xfe"  # field 1 (a string in these requests) that is not UTF-8


@pytest.mark.parametrize(
    ("method", "data"),
    [
        (SERVICE + "Execute", CORRUPT),
        (SERVICE + "Execute", BAD_UTF8),
        (SERVICE + "LoadTool", CORRUPT),
        (SERVICE + "LoadTool", BAD_UTF8),
        (SERVICE + "GetInfo", CORRUPT),
        ("/grpc.health.v1.Health/Check", CORRUPT),
        ("/grpc.health.v1.Health/Check", BAD_UTF8),
    ],
)
async def test_undecodable_requests_are_invalid_argument(
    serve: Any, method: str, data: bytes
) -> None:
    channel = await serve({"status": "ok"})
    call = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call(data, timeout=5)
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "the request does not decode" in (info.value.details() or "")
    # The well-formed request on the same channel is served as before.
    reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_whatever_the_template_relays_the_reply_serializes(serve: Any) -> None:
    """A worker (untrusted) or a policy message may carry lone surrogates and numbers out
    of their fields' range; they used to fail the reply with UNKNOWN."""
    channel = await serve(
        {
            "status": "ok",
            "value_json": f'"{SURROGATE}"',
            "stdout": SURROGATE,
            "error": {"type": SURROGATE, "message": f"bad {SURROGATE}", "line": 2**40},
            "usage": {"wall_ms": 1.0, "cpu_ms": 1.0, "max_rss_kb": -5},
        }
    )
    stub = sandbox_pb2_grpc.SandboxServiceStub(channel)
    reply = await stub.Execute(sandbox_pb2.ExecuteRequest(call="1"), timeout=5)
    assert reply.status == sandbox_pb2.STATUS_OK
    assert reply.value_json == '"?"'
    assert reply.stdout == "?"
    assert (reply.error.type, reply.error.message, reply.error.line) == ("?", "bad ?", 0)
    assert reply.usage.max_rss_kb == 0


async def test_a_policy_message_quoting_a_surrogate_serializes(serve: Any) -> None:
    channel = await serve(
        {
            "status": "policy_violation",
            "tool_id": "0" * 64,
            "error": {"type": "PolicyViolation", "message": f"getattr() of '_{SURROGATE}'"},
        }
    )
    stub = sandbox_pb2_grpc.SandboxServiceStub(channel)
    reply = await stub.LoadTool(sandbox_pb2.LoadToolRequest(source="x = 1"), timeout=5)
    assert reply.status == sandbox_pb2.STATUS_POLICY_VIOLATION
    assert reply.error.message == "getattr() of '_?'"


@pytest.mark.parametrize("entrypoint", ["_getattr_", "__builtins__", "_print_", "not a name"])
async def test_entrypoints_must_be_public_function_names(serve: Any, entrypoint: str) -> None:
    """The guard hooks (``_getattr_`` ...) share the call's namespace: never callable."""
    channel = await serve({"status": "ok", "value_json": "1"})
    stub = sandbox_pb2_grpc.SandboxServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.Execute(sandbox_pb2.ExecuteRequest(entrypoint=entrypoint), timeout=5)
    assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "is not a function name" in (info.value.details() or "")


@pytest.mark.parametrize(
    ("request_fields", "what"),
    [
        ({"source": f"x = '{SURROGATE}'", "call": "x"}, "the tool source"),
        ({"source": "", "call": f"'{SURROGATE}'"}, "call code"),
    ],
)
async def test_the_client_refuses_text_protobuf_cannot_carry(
    request_fields: dict[str, str], what: str
) -> None:
    """A model's JSON can spell a lone surrogate; it used to escape as UnicodeEncodeError."""
    client = SandboxClient("unix:/nonexistent/sandbox.sock")
    try:
        with pytest.raises(InvalidRequest, match=f"{what} holds a lone surrogate"):
            await client.execute(ExecRequest.model_validate(request_fields), "process")
    finally:
        await client.close()


async def test_the_client_refuses_a_value_with_a_lone_surrogate(tmp_path: Path) -> None:
    """An honest worker never sends one; a compromised sandbox could, as an escape the
    server relays unchanged. Such a str cannot go on as UTF-8 (an answer, a log)."""
    server = grpc.aio.server()
    template = ScriptedTemplate({"status": "ok", "value_json": '["ok", "\\ud800"]'})
    sandbox_pb2_grpc.add_SandboxServiceServicer_to_server(SandboxServicer(template, []), server)
    address = f"unix:{tmp_path}/s.sock"
    server.add_insecure_port(address)
    await server.start()
    client = SandboxClient(address)
    try:
        result = await client.execute(ExecRequest(source="", call="ans = 1"), "test")
        assert result.status.value == "error"
        assert result.error is not None
        assert result.error.type == "ValueConversionError"
        template.reply = {"status": "ok", "value_json": '["ok", "\\\\ud800", "\\u00e9"]'}
        result = await client.execute(ExecRequest(source="", call="ans = 1"), "test")
        assert result.value == ["ok", "\\ud800", "é"]  # an escaped backslash is fine
    finally:
        await client.close()
        await server.stop(None)


class RecordingTemplate(TemplateSupervisor):
    """Keeps the ops it is sent; loses its tools when ``forget`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: list[str] = []
        self.forget = False

    async def request(self, message: Request) -> Answer:
        self.ops.append(message["op"])
        if message["op"] == "load":
            return {"id": None, "status": Status.OK, "tool_id": source_id(message["source"])}
        if self.forget and message["op"] == "exec":
            self.forget = False
            return {"id": 0, "unknown_tool": message["tool_id"]}
        return {"id": None, "status": Status.OK, "value_json": "1"}


async def test_a_known_source_goes_straight_to_exec(tmp_path: Path) -> None:
    template = RecordingTemplate()
    servicer = SandboxServicer(template, [])
    server = grpc.aio.server()
    sandbox_pb2_grpc.add_SandboxServiceServicer_to_server(servicer, server)
    address = f"unix:{tmp_path}/s.sock"
    server.add_insecure_port(address)
    await server.start()
    try:
        async with grpc.aio.insecure_channel(address) as channel:
            stub = sandbox_pb2_grpc.SandboxServiceStub(channel)
            request = sandbox_pb2.ExecuteRequest(source="x = 1", call="ans = x")
            for _ in range(3):
                reply = await stub.Execute(request, timeout=5)
                assert reply.status == sandbox_pb2.STATUS_OK
                assert reply.tool_id == source_id("x = 1")
            assert template.ops == ["load", "exec", "exec", "exec"]
            template.forget = True  # a restarted template: reloaded from the server's copy
            assert (await stub.Execute(request, timeout=5)).status == sandbox_pb2.STATUS_OK
            assert template.ops[4:] == ["exec", "load", "exec"]
    finally:
        await server.stop(None)
