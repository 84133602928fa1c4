"""Every status of the ``latm exec`` contract, produced by a real tool in a real
sandbox server, and after each fault the same server answers a normal call."""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
from pathlib import Path

import grpc
import pytest
from latm.sandbox.v1 import sandbox_pb2, sandbox_pb2_grpc

from orchestrator.errors import InvalidRequest, IsolationTooWeak, ToolNotFound
from orchestrator.sandboxes import ExecRequest, IsolationLevel, Status
from orchestrator.sandboxes.process import ProcessBackend, ProcessIsolation

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]

TOOL = """
import math

SEEN = []


class Tally:
    total = 0


def double(x):
    return x * 2


def remember(x):
    SEEN.append(x)
    Tally.total += x
    return [len(SEEN), Tally.total]
"""

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


async def normal_wall_ms(backend: ProcessBackend, tenant: str, n: int = 15) -> float:
    walls = []
    for i in range(n):
        result = await backend.execute(
            tenant, ExecRequest(source=TOOL, call="double(x)", args={"x": i})
        )
        assert result.status is Status.OK
        assert result.value == i * 2
        walls.append(result.usage.wall_ms)
    return statistics.median(walls)


@pytest.mark.parametrize(
    ("call", "limits", "status", "error_type"),
    FAULTS,
    ids=[f"{f[2].value}-{f[3]}-{i}" for i, f in enumerate(FAULTS)],
)
async def test_fault_then_the_same_server_serves_normally(
    backend: ProcessBackend, call: str, limits: dict[str, int], status: Status, error_type: str
) -> None:
    baseline = await normal_wall_ms(backend, "faults")
    pid = backend.server_pid("faults")
    result = await backend.execute(
        "faults", ExecRequest.model_validate({"source": TOOL, "call": call, **limits})
    )
    assert result.status is status, result
    assert result.error is not None
    assert result.error.type == error_type
    assert result.isolation == backend.isolation[0]
    after = await normal_wall_ms(backend, "faults")
    assert backend.server_pid("faults") == pid
    assert after <= max(5 * baseline, 25.0), (baseline, after)


async def test_ok_value_usage_and_stdout(backend: ProcessBackend) -> None:
    result = await backend.execute(
        "t1", ExecRequest(source=TOOL, call="print('hi')\nans = (double(2), 'x')")
    )
    assert result.status is Status.OK
    assert result.value == [4, "x"]  # tuples come back as lists
    assert result.stdout == "hi\n"
    assert result.usage.wall_ms > 0
    assert result.usage.max_rss_kb > 0


async def test_entrypoint_with_arguments(backend: ProcessBackend) -> None:
    result = await backend.execute(
        "t1", ExecRequest(source=TOOL, entrypoint="double", args={"x": 21})
    )
    assert (result.status, result.value) == (Status.OK, 42)


async def test_error_reports_line_and_origin(backend: ProcessBackend) -> None:
    result = await backend.execute("t1", ExecRequest(source=TOOL, call="x = 1\ny = x / 0"))
    assert result.error is not None
    assert (result.error.line, result.error.origin) == (2, "call")


async def test_missing_ans_is_a_clear_error(backend: ProcessBackend) -> None:
    result = await backend.execute("t1", ExecRequest(source=TOOL, call="x = double(1)"))
    assert result.status is Status.ERROR
    assert result.error is not None
    assert "'ans'" in result.error.message


async def test_no_state_survives_between_calls(backend: ProcessBackend) -> None:
    for _ in range(3):
        result = await backend.execute("state", ExecRequest(source=TOOL, call="remember(5)"))
        assert result.value == [1, 5]


async def test_allowed_state_changes_do_not_reach_the_next_call(backend: ProcessBackend) -> None:
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
    backend: ProcessBackend,
) -> None:
    mutate = await backend.execute(
        "state", ExecRequest(source=TOOL, call="math.floor = lambda x: 42\nans = 1")
    )
    assert mutate.status is Status.POLICY_VIOLATION
    assert mutate.error is not None
    assert "changing module 'math'" in mutate.error.message
    check = await backend.execute("state", ExecRequest(source=TOOL, call="math.floor(2.5)"))
    assert check.value == 2


async def test_syntax_error_names_the_line(backend: ProcessBackend) -> None:
    result = await backend.execute("bad", ExecRequest(source="def f(:\n    pass\n", call="f()"))
    assert result.status is Status.ERROR
    assert result.error is not None
    assert result.error.type == "SyntaxError"
    assert result.error.line == 1


async def test_unknown_tool_id_is_not_found(backend: ProcessBackend) -> None:
    with pytest.raises(ToolNotFound, match="unknown tool id"):
        await backend.execute("bad", ExecRequest(tool_id="0" * 64, call="1"))


async def test_bad_requests_get_invalid_argument(backend: ProcessBackend) -> None:
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
    # ... and the server still serves.
    ok = await backend.execute("bad", ExecRequest(source=TOOL, call="double(4)"))
    assert ok.value == 8


async def test_non_json_arguments_are_refused_before_sending(backend: ProcessBackend) -> None:
    with pytest.raises(InvalidRequest, match="not JSON"):
        await backend.execute(
            "bad", ExecRequest(source=TOOL, call="double(x)", args={"x": object()})
        )


async def test_concurrent_callers_all_get_their_own_answers(backend: ProcessBackend) -> None:
    results = await asyncio.gather(
        *(
            backend.execute("many", ExecRequest(source=TOOL, call="double(x)", args={"x": i}))
            for i in range(40)
        )
    )
    assert [r.value for r in results] == [i * 2 for i in range(40)]


async def test_tenants_get_separate_servers(backend: ProcessBackend) -> None:
    await backend.execute("tenant-a", ExecRequest(source=TOOL, call="double(1)"))
    await backend.execute("tenant-b", ExecRequest(source=TOOL, call="double(1)"))
    assert backend.server_pid("tenant-a") != backend.server_pid("tenant-b")


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


async def test_no_secret_reaches_the_sandbox_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret-never-in-a-sandbox")
    monkeypatch.setenv("LATM_DATABASE_URL", "postgresql://user:pw@db/latm")
    async with ProcessBackend(ProcessIsolation.BWRAP) as backend:
        await backend.execute("env", ExecRequest(source=TOOL, call="double(1)"))
        pid = backend.server_pid("env")
        assert pid is not None
        environments = []
        for process in _descendants(pid):
            try:
                environments.append(Path(f"/proc/{process}/environ").read_bytes())
            except OSError:
                continue
        assert len(environments) >= 3  # bwrap, the server, the template (and spares)
        for environ in environments:
            assert b"sk-test-secret" not in environ
            assert b"postgresql://" not in environ
            assert set(environ.split(b"\0")) - {b""} <= {
                b"PATH=/usr/bin:/bin",
                b"PWD=/",  # bwrap's --chdir
                b"LC_CTYPE=C.UTF-8",  # Python's own locale coercion (PEP 538)
            }


async def test_no_network_inside_the_sandbox() -> None:
    """A listener this test starts on loopback is unreachable from the sandbox."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    probe = (
        "import socket\n"
        "s = socket.socket()\n"
        "s.settimeout(1)\n"
        "try:\n"
        f"    s.connect(('127.0.0.1', {port}))\n"
        "    ans = 'connected'\n"
        "except OSError as exc:\n"
        "    ans = 'refused: ' + str(exc)\n"
    )
    try:
        async with ProcessBackend(ProcessIsolation.BWRAP, allow_modules=["socket"]) as backend:
            result = await backend.execute("net", ExecRequest(source="", call=probe))
    finally:
        listener.close()
    assert result.status is Status.OK, result
    assert result.value.startswith("refused"), result.value


async def test_abrupt_worker_exits_are_crashes_and_the_server_survives() -> None:
    """With ``os`` allowed by the operator, a tool can kill its own worker."""
    async with ProcessBackend(ProcessIsolation.BWRAP, allow_modules=["os"]) as backend:
        for call in ("import os\nos.abort()", "import os\nos.kill(os.getpid(), 9)"):
            result = await backend.execute("crash", ExecRequest(source=TOOL, call=call))
            assert result.status is Status.CRASHED
            assert result.error is not None
            assert "killed by SIG" in result.error.message
        ok = await backend.execute("crash", ExecRequest(source=TOOL, call="double(5)"))
        assert ok.value == 10


async def test_fork_from_tool_code_is_refused() -> None:
    async with ProcessBackend(ProcessIsolation.BWRAP, allow_modules=["os"]) as backend:
        result = await backend.execute(
            "fork", ExecRequest(source=TOOL, call="import os\nans = os.fork()")
        )
        # Refused by RLIMIT_NPROC when the server runs unprivileged; as root here the
        # pid namespace still contains it and the worker's group is killed after the call.
        assert result.status in {Status.ERROR, Status.OK, Status.CRASHED}
        ok = await backend.execute("fork", ExecRequest(source=TOOL, call="double(5)"))
        assert ok.value == 10


async def test_minimum_isolation_is_enforced() -> None:
    with pytest.raises(IsolationTooWeak, match="below the configured minimum"):
        ProcessBackend(ProcessIsolation.NONE, min_isolation=IsolationLevel.NAMESPACES)


async def test_rlimits_only_mode_reports_its_weaker_isolation() -> None:
    async with ProcessBackend(ProcessIsolation.NONE) as backend:
        result = await backend.execute("weak", ExecRequest(source=TOOL, call="double(3)"))
    assert (result.value, result.isolation) == (6, "process")


async def test_template_death_is_survived() -> None:
    async with ProcessBackend(ProcessIsolation.NONE) as backend:
        await backend.execute("tpl", ExecRequest(source=TOOL, call="double(1)"))
        pid = backend.server_pid("tpl")
        assert pid is not None
        templates = [
            p
            for p in _descendants(pid)
            if b"sandbox.template" in Path(f"/proc/{p}/cmdline").read_bytes()
            and _parent(p) == pid  # spare workers share the cmdline; their parent differs
        ]
        assert len(templates) == 1
        os.kill(templates[0], 9)
        results = [
            await backend.execute("tpl", ExecRequest(source=TOOL, call="double(2)"))
            for _ in range(3)
        ]
        assert results[-1].value == 4  # the tool was reloaded into a new template
        assert all(r.status in {Status.OK, Status.CRASHED} for r in results)
