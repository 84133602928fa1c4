"""Fuzzing a real sandbox server's gRPC surface directly, bypassing the orchestrator.

Each example sends one request (typed messages with hostile fields, or raw bytes under
any method name, with random metadata) to a server of each flavour. The answer must
be a well-formed reply whose status is one of the contract's, or a gRPC error with a
code that says what was wrong with the request; and after every example the same
server still answers a known-good call correctly.
"""

from __future__ import annotations

import json

import grpc
import pytest
from grpc_health.v1 import health_pb2
from hypothesis import given
from latm.sandbox.v1 import sandbox_pb2

from tests.fuzz.conftest import (
    ANSWER_SLACK_MS,
    RAW_DEADLINE_S,
    SERVER_FAILURES,
    TIMEOUT_S,
    Metadata,
    RawServer,
    effective_timeout_ms,
    fuzz_settings,
    with_examples,
)
from tests.fuzz.strategies import (
    SEED_CALLS,
    SEED_SOURCES,
    SEED_TOOLS,
    SERVICE,
    execute_requests,
    load_requests,
    metadata,
    method_names,
    wire_bytes,
)
from tests.support.backends import TOOL

pytestmark = [
    pytest.mark.integration,
    pytest.mark.asyncio(loop_scope="package"),
    pytest.mark.timeout(TIMEOUT_S),
    pytest.mark.filterwarnings("ignore::SyntaxWarning"),  # hypothesmith compiles what it makes
]

# Every status of the contract; STATUS_UNSPECIFIED is none of them.
CONTRACT = {
    sandbox_pb2.STATUS_OK,
    sandbox_pb2.STATUS_ERROR,
    sandbox_pb2.STATUS_POLICY_VIOLATION,
    sandbox_pb2.STATUS_TIMEOUT,
    sandbox_pb2.STATUS_MEMORY_LIMIT,
    sandbox_pb2.STATUS_OUTPUT_LIMIT,
    sandbox_pb2.STATUS_CRASHED,
}
LOAD_STATUSES = {
    sandbox_pb2.STATUS_OK,
    sandbox_pb2.STATUS_POLICY_VIOLATION,
    sandbox_pb2.STATUS_ERROR,
}
KNOWN_METHODS = {SERVICE + m for m in ("Execute", "LoadTool", "GetInfo")} | {
    "/grpc.health.v1.Health/Check"
}


def may_run_past_deadline(message: sandbox_pb2.ExecuteRequest) -> bool:
    """True when the server may legitimately let this call run until the RPC deadline."""
    return effective_timeout_ms(message.limits) + ANSWER_SLACK_MS >= RAW_DEADLINE_S * 1000


def assert_execute_reply(reply: sandbox_pb2.ExecuteResponse) -> None:
    assert reply.status in CONTRACT, reply
    if reply.status == sandbox_pb2.STATUS_OK:
        json.loads(reply.value_json)
    else:
        assert reply.error.type, reply
        assert reply.error.type not in SERVER_FAILURES, reply


def assert_load_reply(reply: sandbox_pb2.LoadToolResponse) -> None:
    assert reply.status in LOAD_STATUSES, reply
    if reply.status == sandbox_pb2.STATUS_OK:
        assert len(reply.tool_id) == 64, reply
    else:
        assert reply.error.type, reply
        assert reply.error.type not in SERVER_FAILURES, reply


def assert_clear_refusal(
    error: grpc.aio.AioRpcError, allowed: set[grpc.StatusCode], explained: bool = True
) -> None:
    """A refusal names its reason with a specific code (and, from the sandbox service,
    in words); UNKNOWN or INTERNAL would be a server that failed, UNAVAILABLE one that
    died, DEADLINE_EXCEEDED one that hung."""
    assert error.code() in allowed, (error.code(), error.details())
    if explained:
        assert error.details(), error.code()


SEED_EXECUTES = [
    *(sandbox_pb2.ExecuteRequest(source=TOOL, call=call) for call in SEED_CALLS),
    *(sandbox_pb2.ExecuteRequest(source=source, call="ans = 1") for source in SEED_SOURCES),
]


@fuzz_settings(60)
@with_examples([{"message": message, "extra": ()} for message in SEED_EXECUTES])
@given(message=execute_requests(), extra=metadata())
async def test_execute_answers_within_the_contract(
    raw_server: RawServer, message: sandbox_pb2.ExecuteRequest, extra: Metadata
) -> None:
    allowed = {grpc.StatusCode.INVALID_ARGUMENT}
    if message.WhichOneof("tool") == "tool_id":
        allowed.add(grpc.StatusCode.NOT_FOUND)  # a well-formed id of no loaded tool
    if may_run_past_deadline(message):
        allowed.add(grpc.StatusCode.DEADLINE_EXCEEDED)
    try:
        reply = await raw_server.stub.Execute(message, timeout=RAW_DEADLINE_S, metadata=extra)
    except grpc.aio.AioRpcError as error:
        assert_clear_refusal(error, allowed)
    else:
        assert_execute_reply(reply)
    await raw_server.assert_serves()


@fuzz_settings(40)
@with_examples(
    [{"message": sandbox_pb2.LoadToolRequest(source=s)} for s in SEED_SOURCES + SEED_TOOLS]
)
@given(message=load_requests())
async def test_load_tool_answers_within_the_contract(
    raw_server: RawServer, message: sandbox_pb2.LoadToolRequest
) -> None:
    try:
        reply = await raw_server.stub.LoadTool(message, timeout=RAW_DEADLINE_S)
    except grpc.aio.AioRpcError as error:
        # Empty or oversized sources are refused before the template sees them.
        assert_clear_refusal(error, {grpc.StatusCode.INVALID_ARGUMENT})
    else:
        assert_load_reply(reply)
    await raw_server.assert_serves()


def _parse_execute_request(data: bytes) -> sandbox_pb2.ExecuteRequest | None:
    try:
        return sandbox_pb2.ExecuteRequest.FromString(data)
    except Exception:
        return None


def assert_raw_reply(method: str, data: bytes, reply: bytes) -> None:
    """A reply to raw bytes decodes as the method's response type, within the contract."""
    if method == SERVICE + "Execute":
        assert_execute_reply(sandbox_pb2.ExecuteResponse.FromString(reply))
    elif method == SERVICE + "LoadTool":
        assert_load_reply(sandbox_pb2.LoadToolResponse.FromString(reply))
    elif method == SERVICE + "GetInfo":
        info = sandbox_pb2.GetInfoResponse.FromString(reply)
        assert info.version, info
        assert info.allowed_modules, info
    else:
        health = health_pb2.HealthCheckResponse.FromString(reply)
        assert health.status == health_pb2.HealthCheckResponse.SERVING, (data, health)


@fuzz_settings(100)
@given(method=method_names(), data=wire_bytes(), extra=metadata())
async def test_raw_bytes_get_a_reply_or_a_clear_refusal(
    raw_server: RawServer, method: str, data: bytes, extra: Metadata
) -> None:
    if method not in KNOWN_METHODS:
        allowed = {grpc.StatusCode.UNIMPLEMENTED}
    else:
        allowed = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND}
        parsed = _parse_execute_request(data) if method == SERVICE + "Execute" else None
        if parsed is not None and may_run_past_deadline(parsed):
            allowed.add(grpc.StatusCode.DEADLINE_EXCEEDED)
    try:
        reply = await raw_server.call_bytes(method, data, extra)
    except grpc.aio.AioRpcError as error:
        # gRPC's own health service says NOT_FOUND (an unknown service name) without words.
        assert_clear_refusal(error, allowed, explained=method.startswith(SERVICE))
    else:
        assert method in KNOWN_METHODS, method
        assert_raw_reply(method, data, reply)
    await raw_server.assert_serves()


async def test_the_same_server_survived_every_example(raw_server: RawServer) -> None:
    """Runs after the fuzzing tests of its flavour: the server held since the first
    example is the one that answers now (none was restarted behind the tests' back)."""
    await raw_server.assert_same_server()
    await raw_server.assert_serves()
