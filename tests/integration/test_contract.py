"""The ``latm exec`` contract against every backend flavour: process (bubblewrap,
unshare) and docker (runc, gVisor). Every status is produced by a real tool in a real
sandbox, and after each fault the tenant is served normally again."""

from __future__ import annotations

import asyncio
import statistics
import time

import grpc
import pytest
from latm.sandbox.v1 import sandbox_pb2, sandbox_pb2_grpc

from orchestrator.errors import InvalidRequest, ToolNotFound
from orchestrator.sandboxes import ExecRequest, Status
from orchestrator.sandboxes.base import SandboxBackend
from orchestrator.sandboxes.docker import DockerBackend, DockerSandbox
from orchestrator.sandboxes.process import ProcessBackend
from tests.support.backends import TOOL

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

SEGFAULT = "it = iter([])\nfor _ in range(1000000):\n    it = map(abs, it)\nans = next(it, None)"

FAULTS = [
    ("1 / 0", {}, Status.ERROR, "ZeroDivisionError"),
    ("import os", {}, Status.POLICY_VIOLATION, "PolicyViolation"),
    ("ans = ().__class__", {}, Status.POLICY_VIOLATION, "PolicyViolation"),
    ("while True:\n    pass", {"timeout_ms": 500}, Status.TIMEOUT, "TimeoutExceeded"),
    (
        "while True:\n    pass",
        {"timeout_ms": 10_000, "cpu_ms": 1000},
        Status.TIMEOUT,
        "CpuTimeExceeded",
    ),
    ("ans = bytearray(10 ** 9)", {"memory_mb": 64}, Status.MEMORY_LIMIT, "MemoryError"),
    (
        "a = []\nwhile True:\n    a.append('x' * 10 ** 6)",
        {"memory_mb": 64},
        Status.MEMORY_LIMIT,
        "MemoryError",
    ),
    ("while True:\n    print('flood' * 100)", {}, Status.OUTPUT_LIMIT, "OutputLimitExceeded"),
    ("ans = 'x' * (10 ** 7)", {}, Status.OUTPUT_LIMIT, "ResultTooLarge"),
    (SEGFAULT, {}, Status.CRASHED, "WorkerCrashed"),
    ("ans = {1, 2} - 'not a set'", {}, Status.ERROR, "TypeError"),
]


async def normal_wall_ms(backend: SandboxBackend, tenant: str, n: int = 15) -> float:
    walls = []
    for i in range(n):
        result = await backend.execute(
            tenant, ExecRequest(source=TOOL, call="double(x)", args={"x": i})
        )
        assert result.status is Status.OK
        assert result.value == i * 2
        walls.append(result.usage.wall_ms)
    return statistics.median(walls)


async def sandbox_identity(backend: SandboxBackend, tenant: str) -> object:
    """What serves ``tenant`` now: a server's pid, or the container a call would get."""
    if isinstance(backend, ProcessBackend):
        await backend.execute(tenant, ExecRequest(source=TOOL, call="double(1)"))
        return backend.server_pid(tenant)
    assert isinstance(backend, DockerBackend)
    sandbox = await backend.acquire(tenant)
    await backend.release(sandbox, faulted=False)
    assert isinstance(sandbox, DockerSandbox)
    return sandbox.container_id


async def wait_removed(backend: DockerBackend, container_id: str, within_s: float = 15) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        ids = {c.id for c in await asyncio.to_thread(backend.own_containers)}
        if container_id not in ids:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"container {container_id[:12]} was not removed after its fault")


@pytest.mark.parametrize(
    ("call", "limits", "status", "error_type"),
    FAULTS,
    ids=[f"{f[2].value}-{f[3]}-{i}" for i, f in enumerate(FAULTS)],
)
async def test_fault_then_the_tenant_is_served_normally(
    backend: SandboxBackend, call: str, limits: dict[str, int], status: Status, error_type: str
) -> None:
    """Process backend: the same server survives the fault. Docker backend: the
    container that saw a fault is destroyed, never reused, and a fresh one serves."""
    baseline = await normal_wall_ms(backend, "faults")
    before = await sandbox_identity(backend, "faults")
    sandbox = await backend.acquire("faults")
    result = await sandbox.execute(
        ExecRequest.model_validate({"source": TOOL, "call": call, **limits})
    )
    await backend.release(sandbox, result.status.is_fault)
    assert result.status is status, result
    assert result.error is not None
    assert result.error.type == error_type
    assert result.isolation == backend.isolation[0]
    after = await normal_wall_ms(backend, "faults")
    if isinstance(backend, DockerBackend):
        assert isinstance(sandbox, DockerSandbox)
        if status.is_fault:
            await wait_removed(backend, sandbox.container_id)
            assert await sandbox_identity(backend, "faults") != sandbox.container_id
        else:  # kept: still one of the pool's containers
            assert sandbox in backend.pool("faults").members()
    else:
        assert await sandbox_identity(backend, "faults") == before
    assert after <= max(5 * baseline, 25.0), (baseline, after)


async def test_ok_value_usage_and_stdout(backend: SandboxBackend) -> None:
    result = await backend.execute(
        "t1", ExecRequest(source=TOOL, call="print('hi')\nans = (double(2), 'x')")
    )
    assert result.status is Status.OK
    assert result.value == [4, "x"]  # tuples come back as lists
    assert result.stdout == "hi\n"
    assert result.usage.wall_ms > 0
    assert result.usage.max_rss_kb > 0


async def test_entrypoint_with_arguments(backend: SandboxBackend) -> None:
    result = await backend.execute(
        "t1", ExecRequest(source=TOOL, entrypoint="double", args={"x": 21})
    )
    assert (result.status, result.value) == (Status.OK, 42)


async def test_error_reports_line_and_origin(backend: SandboxBackend) -> None:
    result = await backend.execute("t1", ExecRequest(source=TOOL, call="x = 1\ny = x / 0"))
    assert result.error is not None
    assert (result.error.line, result.error.origin) == (2, "call")


async def test_an_exception_in_the_tools_own_code_is_the_tools_fault(
    backend: SandboxBackend,
) -> None:
    """Where the exception was raised says whose fault it is: inside the tool's function
    (``"tool"``: a case for its regression suite), in the call's own code, or before the
    tool ran (wrong keyword arguments), both ``"call"``."""
    source = 'def ratio(a, b):\n    """a over b."""\n    return a / b\n'
    inside = await backend.execute("t1", ExecRequest(source=source, call="ans = ratio(1, 0)"))
    assert inside.error is not None
    assert (inside.error.type, inside.error.origin, inside.error.line) == (
        "ZeroDivisionError",
        "tool",
        3,
    )
    called = await backend.execute(
        "t1", ExecRequest(source=source, entrypoint="ratio", args={"a": 1, "b": 0})
    )
    assert called.error is not None
    assert called.error.origin == "tool"
    misused = await backend.execute(
        "t1", ExecRequest(source=source, entrypoint="ratio", args={"a": 1})
    )
    assert misused.error is not None
    assert (misused.error.type, misused.error.origin) == ("TypeError", "call")
    own = await backend.execute("t1", ExecRequest(source=source, call="ans = 1 / 0"))
    assert own.error is not None
    assert own.error.origin == "call"


async def test_missing_ans_is_a_clear_error(backend: SandboxBackend) -> None:
    result = await backend.execute("t1", ExecRequest(source=TOOL, call="x = double(1)"))
    assert result.status is Status.ERROR
    assert result.error is not None
    assert "'ans'" in result.error.message


async def test_no_state_survives_between_calls(backend: SandboxBackend) -> None:
    for _ in range(3):
        result = await backend.execute("state", ExecRequest(source=TOOL, call="remember(5)"))
        assert result.value == [1, 5]


async def test_allowed_state_changes_do_not_reach_the_next_call(backend: SandboxBackend) -> None:
    tool = "import decimal\nimport random\n"
    change = "decimal.getcontext().prec = 2\nrandom.seed(7)\nans = str(decimal.Decimal(1) / 3)"
    first = await backend.execute("state", ExecRequest(source=tool, call=change))
    assert first.value == "0.33"
    after = await backend.execute(
        "state", ExecRequest(source=tool, call="str(decimal.Decimal(1) / 3)")
    )
    assert after.value == "0." + "3" * 28
    draws = [
        await backend.execute("state", ExecRequest(source=tool, call="random.random()"))
        for _ in range(2)
    ]
    assert draws[0].value != draws[1].value  # each worker reseeds; no seed carries over


async def test_rebinding_a_module_attribute_is_refused_and_harmless(
    backend: SandboxBackend,
) -> None:
    mutate = await backend.execute(
        "state", ExecRequest(source=TOOL, call="math.floor = lambda x: 42\nans = 1")
    )
    assert mutate.status is Status.POLICY_VIOLATION
    assert mutate.error is not None
    assert "changing module 'math'" in mutate.error.message
    check = await backend.execute("state", ExecRequest(source=TOOL, call="math.floor(2.5)"))
    assert check.value == 2


async def test_syntax_error_names_the_line(backend: SandboxBackend) -> None:
    result = await backend.execute("bad", ExecRequest(source="def f(:\n    pass\n", call="f()"))
    assert result.status is Status.ERROR
    assert result.error is not None
    assert result.error.type == "SyntaxError"
    assert result.error.line == 1


async def test_unknown_tool_id_is_not_found(backend: SandboxBackend) -> None:
    with pytest.raises(ToolNotFound, match="unknown tool id"):
        await backend.execute("bad", ExecRequest(tool_id="0" * 64, call="1"))


async def test_bad_requests_get_invalid_argument(backend: SandboxBackend) -> None:
    sandbox = await backend.acquire("bad")
    async with grpc.aio.insecure_channel(sandbox.client.target) as channel:
        stub = sandbox_pb2_grpc.SandboxServiceStub(channel)
        for request, fragment in [
            (
                sandbox_pb2.ExecuteRequest(source=TOOL, call="double(x)", args_json="{nope"),
                "not valid JSON",
            ),
            (
                sandbox_pb2.ExecuteRequest(source=TOOL, call="double(x)", args_json="[1]"),
                "JSON object",
            ),
            (sandbox_pb2.ExecuteRequest(source=TOOL, call="x" * 70_000), "larger than"),
            (sandbox_pb2.ExecuteRequest(tool_id="abc", call="1"), "64-character"),
            (sandbox_pb2.ExecuteRequest(source=TOOL), "give call code"),
            (sandbox_pb2.ExecuteRequest(source="x = 1\n" * 100_000, call="1"), "larger than"),
        ]:
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.Execute(request)
            assert info.value.code() is grpc.StatusCode.INVALID_ARGUMENT
            assert fragment in (info.value.details() or "")
    await backend.release(sandbox, faulted=False)
    # ... and the server still serves.
    ok = await backend.execute("bad", ExecRequest(source=TOOL, call="double(4)"))
    assert ok.value == 8


async def test_non_json_arguments_are_refused_before_sending(backend: SandboxBackend) -> None:
    with pytest.raises(InvalidRequest, match="not JSON"):
        await backend.execute(
            "bad", ExecRequest(source=TOOL, call="double(x)", args={"x": object()})
        )


async def test_concurrent_callers_all_get_their_own_answers(backend: SandboxBackend) -> None:
    results = await asyncio.gather(
        *(
            backend.execute("many", ExecRequest(source=TOOL, call="double(x)", args={"x": i}))
            for i in range(40)
        )
    )
    assert [r.value for r in results] == [i * 2 for i in range(40)]


async def test_tenants_get_separate_servers(backend: SandboxBackend) -> None:
    await backend.execute("tenant-a", ExecRequest(source=TOOL, call="double(1)"))
    await backend.execute("tenant-b", ExecRequest(source=TOOL, call="double(1)"))
    a = await sandbox_identity(backend, "tenant-a")
    b = await sandbox_identity(backend, "tenant-b")
    assert a != b
    if isinstance(backend, DockerBackend):
        for tenant in ("tenant-a", "tenant-b"):
            for member in backend.pool(tenant).members():
                assert member.container.labels["io.latm.tenant"] == tenant
