"""Fuzzing fixtures and oracles: hypothesis profiles, one backend per flavour, and a
raw gRPC channel to one real sandbox server of each flavour.

Every flavour CI has runs here: bubblewrap processes, Docker with runc and Docker with
gVisor (``runsc``; its server is reached through the reverse tunnel, bytes unchanged).
Example counts are modest so the whole suite takes a few minutes; set
``LATM_FUZZ_EXAMPLES=N`` to run N examples per test for a long local run. Under
``CI=true`` the runs are derandomized, so CI is reproducible.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
import pytest
import pytest_asyncio
from hypothesis import HealthCheck, example, settings
from latm.sandbox.v1 import sandbox_pb2, sandbox_pb2_grpc

from orchestrator.errors import InvalidRequest
from orchestrator.sandboxes import ExecRequest, ExecResult, Status
from orchestrator.sandboxes.base import Sandbox, SandboxBackend
from orchestrator.sandboxes.docker import DockerSandbox
from orchestrator.sandboxes.pool import PoolConfig
from orchestrator.sandboxes.process import ProcessBackend
from sandbox.limits import DEFAULT_LIMITS, MAX_LIMITS
from sandbox.policy import MAX_SOURCE_BYTES
from sandbox.server import MAX_CALL_BYTES
from tests.conftest import IN_CI
from tests.support.backends import TOOL, close_backend, docker_marks, make_backend

FLAVOURS = ["process-bwrap", "docker-runc", "docker-runsc"]
FLAVOUR_PARAMS = [pytest.param(f, marks=docker_marks(f), id=f) for f in FLAVOURS]
TENANT = "fuzz"
RAW_TENANT = "fuzz-raw"

Test = TypeVar("Test", bound=Callable[..., Any])

EXAMPLES_ENV = "LATM_FUZZ_EXAMPLES"
_SLOW_DATA = [
    HealthCheck.too_slow,
    HealthCheck.data_too_large,
    HealthCheck.filter_too_much,
    HealthCheck.large_base_example,
]
settings.register_profile(
    "latm-fuzz-ci", derandomize=True, database=None, deadline=None, suppress_health_check=_SLOW_DATA
)
settings.register_profile("latm-fuzz", deadline=None, suppress_health_check=_SLOW_DATA)
PROFILE = "latm-fuzz-ci" if IN_CI else "latm-fuzz"


def examples(default: int) -> int:
    """Examples per test: ``default``, or ``LATM_FUZZ_EXAMPLES`` for a long run."""
    return int(os.environ.get(EXAMPLES_ENV) or default)


def fuzz_settings(default_examples: int) -> settings:
    return settings(settings.get_profile(PROFILE), max_examples=examples(default_examples))


def with_examples(cases: list[dict[str, Any]]) -> Callable[[Test], Test]:
    """Run these cases (keyword arguments of the test) first, in every run: the seeds
    of past findings, which random draws would only sometimes reach."""

    def decorate(test: Test) -> Test:
        for case in reversed(cases):
            test = example(**case)(test)
        return test

    return decorate


Metadata = tuple[tuple[str, str | bytes], ...]

# Long runs get time in proportion (pytest-timeout's default is 120 s a test).
TIMEOUT_S = 180 + 2 * int(os.environ.get(EXAMPLES_ENV) or 0)

# The RPC deadline of one fuzzed request. A request whose effective time limit reaches it
# may legitimately end in DEADLINE_EXCEEDED; any other request must be answered before.
RAW_DEADLINE_S = 8.0
# How much more than a call's own time limit the answer may take (fork, start-up, load).
ANSWER_SLACK_MS = 2500


@pytest_asyncio.fixture(loop_scope="package", scope="package", params=FLAVOUR_PARAMS)
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[SandboxBackend]:
    """One backend per flavour with the shipped allow-list, shared by the fuzz suite."""
    flavour = request.param
    options: dict[str, Any] = {}
    if flavour.startswith("docker"):
        options["pool"] = PoolConfig(min_idle=1, max_size=2)
    shared = make_backend(flavour, **options)
    try:
        yield shared
    finally:
        await close_backend(request, shared)


@dataclass
class RawServer:
    """One real sandbox server, spoken to over its own socket without the orchestrator."""

    backend: SandboxBackend
    sandbox: Sandbox
    channel: grpc.aio.Channel

    @property
    def stub(self) -> sandbox_pb2_grpc.SandboxServiceAsyncStub:
        return sandbox_pb2_grpc.SandboxServiceStub(self.channel)

    async def call_bytes(self, method: str, data: bytes, metadata: Metadata = ()) -> bytes:
        """Send ``data`` as the request of ``method`` unchanged (identity serializers)."""
        call = self.channel.unary_unary(method, request_serializer=None, response_deserializer=None)
        reply: bytes = await call(data, timeout=RAW_DEADLINE_S, metadata=metadata)
        return reply

    async def assert_serves(self) -> None:
        """The server (still) answers a known-good call correctly."""
        request = sandbox_pb2.ExecuteRequest(source=TOOL, call="double(21)")
        reply = await self.stub.Execute(request, timeout=30)
        assert reply.status == sandbox_pb2.STATUS_OK, reply
        assert json.loads(reply.value_json) == 42

    async def assert_same_server(self) -> None:
        """The process (or container) that served the first example serves the last."""
        if isinstance(self.sandbox, DockerSandbox):
            container = self.sandbox.container
            await asyncio.to_thread(container.reload)
            assert container.status == "running", container.status
        else:
            assert isinstance(self.backend, ProcessBackend)
            server = self.backend._servers[self.sandbox.tenant]
            assert server.alive(), server.log_tail()

    async def describe(self) -> str:
        """What to print when a test failed: the container's id and logs, or the log tail."""
        if isinstance(self.sandbox, DockerSandbox):
            logs = await asyncio.to_thread(self.sandbox.container.logs, tail=40)
            text = bytes(logs).decode("utf-8", "replace")
            return f"container {self.sandbox.container_id}:\n{text}"
        assert isinstance(self.backend, ProcessBackend)
        return self.backend._servers[self.sandbox.tenant].log_tail()


@pytest_asyncio.fixture(loop_scope="package", scope="package")
async def raw_server(
    backend: SandboxBackend, request: pytest.FixtureRequest
) -> AsyncIterator[RawServer]:
    """A server of ``backend``'s flavour, held for the raw tests: a Unix socket under
    bubblewrap and runc, the tunnel's host socket under gVisor."""
    sandbox = await backend.acquire(RAW_TENANT)
    channel = grpc.aio.insecure_channel(sandbox.client.target)
    server = RawServer(backend, sandbox, channel)
    try:
        await server.assert_serves()
        yield server
    finally:
        if request.session.testsfailed:
            print(f"raw sandbox server ({backend.isolation[0]}): {await server.describe()}")
        await channel.close(None)
        # Fuzzed calls may have timed out or flooded: never hand this one out again.
        await backend.release(sandbox, faulted=True)


def is_unicode(text: str) -> bool:
    """False for text holding lone surrogates, which protobuf (and UTF-8) cannot carry."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def effective_timeout_ms(limits: sandbox_pb2.Limits) -> int:
    """The wall-clock limit the server gives a call with these requested limits."""
    asked = limits.timeout_ms or DEFAULT_LIMITS.timeout_ms
    return min(asked, MAX_LIMITS.timeout_ms)


def expected_refusal(request: ExecRequest) -> str | None:
    """Why the platform must refuse ``request`` as InvalidRequest, or None when it must
    run it and answer with a contract status."""
    texts = {"the tool source": request.source or "", "call code": request.call}
    for what, text in texts.items():
        if not is_unicode(text):
            return f"{what} is not Unicode text"
    if len((request.source or "").encode()) > MAX_SOURCE_BYTES:
        return "the source is over the size cap"
    if len(request.call.encode()) > MAX_CALL_BYTES:
        return "the call is over the size cap"
    return None


async def run_fuzzed(backend: SandboxBackend, request: ExecRequest) -> ExecResult | None:
    """Run one fuzzed request through the backend's public API and check the answer:
    a result in the contract's shape, or the refusal that ``expected_refusal`` names."""
    refusal = expected_refusal(request)
    if refusal is not None:
        with pytest.raises(InvalidRequest):
            await backend.execute(TENANT, request)
        return None
    result = await backend.execute(TENANT, request)
    assert_contract(result, backend)
    return result


# Error types no input may cause: the orchestrator reports a transport failure (the
# server hung or died) as SandboxUnavailable; the template answers a request it failed to
# handle (a bug of ours) with SandboxError.
SERVER_FAILURES = {"SandboxUnavailable", "SandboxError"}


def assert_contract(result: ExecResult, backend: SandboxBackend) -> None:
    """The result is one the ``latm exec`` contract allows, and the server produced it
    on purpose: not a transport failure, not a request it failed to handle."""
    assert result.status in set(Status), result
    assert result.isolation == backend.isolation[0], result
    if result.status is Status.OK:
        assert result.error is None, result
    else:
        assert result.error is not None, result
        assert result.error.type, result
        assert result.error.type not in SERVER_FAILURES, result
    # What `latm exec` prints must be printable: one JSON object, in UTF-8.
    json.loads(result.to_json().encode("utf-8"))


async def assert_tenant_served(backend: SandboxBackend) -> None:
    """After a fuzzed call, a known-good call of the same tenant works."""
    result = await backend.execute(TENANT, ExecRequest(source=TOOL, call="double(21)"))
    assert result.status is Status.OK, result
    assert result.value == 42
