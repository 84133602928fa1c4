"""What is particular to the process backend: its environment, namespaces, template
recovery and isolation levels. The shared contract suite is in test_contract.py."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from orchestrator.errors import IsolationTooWeak
from orchestrator.sandboxes import ExecRequest, IsolationLevel, Status
from orchestrator.sandboxes.process import ProcessBackend, ProcessIsolation
from tests.support.backends import TOOL

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


def _parent(pid: int) -> int:
    """The parent's pid, or 0 for a process that has exited since it was listed."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except OSError:
        return 0


def _cmdline(pid: int) -> bytes:
    """The command line, or b"" for a process that has exited since it was listed
    (a worker that just finished its call)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


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
            if b"sandbox.template" in _cmdline(p)
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


async def test_a_tools_input_schema_is_read_inside_the_sandbox() -> None:
    source = (
        "def area(width: float, height: float = 1.0, *, label: str = 'box') -> float:\n"
        "    return width * height\n"
    )
    async with ProcessBackend(ProcessIsolation.UNSHARE) as backend:
        described = await backend.describe("schema", source, "area")
        assert described.status is Status.OK, described.error
        assert described.input_schema == {
            "type": "object",
            "properties": {
                "width": {"type": "number"},
                "height": {"type": "number", "default": 1.0},
                "label": {"type": "string", "default": "box"},
            },
            "required": ["width"],
            "additionalProperties": False,
        }
        missing = await backend.describe("schema", source, "volume")
        assert missing.status is Status.ERROR
        assert missing.error is not None
        assert "volume" in missing.error.message
        hostile = await backend.describe("schema", "import os\ndef f(): pass\n", "f")
        assert hostile.status is Status.POLICY_VIOLATION
        # The sandbox still serves calls after describing.
        result = await backend.execute(
            "schema", ExecRequest(source=source, entrypoint="area", args={"width": 2.0})
        )
        assert (result.status, result.value) == (Status.OK, 2.0)
