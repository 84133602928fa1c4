"""What is particular to the docker backend, on a real engine with runc and gVisor:
the hardening of every container, limits enforced by the container itself (checked
from inside it, past the sandbox's own layers), the warm pool, cleanup of orphans,
and a container killed in the middle of a call."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from orchestrator.errors import PoolExhausted
from orchestrator.sandboxes import ExecRequest, Status
from orchestrator.sandboxes.docker import (
    LABEL_OWNER,
    DockerBackend,
    DockerOptions,
    DockerSandbox,
    Runtime,
    owner_id,
)
from orchestrator.sandboxes.pool import PoolConfig
from tests.support.backends import require_docker

pytestmark = [pytest.mark.integration, pytest.mark.docker, pytest.mark.asyncio(loop_scope="module")]

TOOL = "def double(x):\n    return x * 2\n"
SECRET = "sk-test-secret-never-in-a-sandbox"
RUNTIMES = [Runtime.RUNC, Runtime.RUNSC]


@pytest_asyncio.fixture(loop_scope="module", scope="module", params=RUNTIMES, ids=str)
async def hardened(request: pytest.FixtureRequest) -> AsyncIterator[DockerBackend]:
    """A backend whose process environment holds secrets, with small limits."""
    runtime: Runtime = request.param
    require_docker(runtime.value)
    # The secrets stay in the orchestrator's environment while its containers start.
    os.environ["OPENAI_API_KEY"] = SECRET
    os.environ["LATM_DATABASE_URL"] = "postgresql://user:pw@db/latm"
    try:
        backend = DockerBackend(
            DockerOptions(runtime=runtime, pool=PoolConfig(min_idle=0), allow_modules=["socket"])
        )
        try:
            yield backend
        finally:
            await backend.close()
    finally:
        del os.environ["OPENAI_API_KEY"], os.environ["LATM_DATABASE_URL"]


async def container_of(backend: DockerBackend, tenant: str = "hardening") -> DockerSandbox:
    sandbox = await backend.acquire(tenant)
    await backend.release(sandbox, faulted=False)
    assert isinstance(sandbox, DockerSandbox)
    return sandbox


def exec_in(sandbox: DockerSandbox, script: str, timeout: float = 60) -> tuple[int, str]:
    """Run Python inside the container as its own (non-root) user, past every inner layer."""
    done = subprocess.run(
        ["docker", "exec", sandbox.container_id, "python", "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return done.returncode, (done.stdout + done.stderr).strip()


async def test_every_container_is_hardened(hardened: DockerBackend) -> None:
    sandbox = await container_of(hardened)
    await asyncio.to_thread(sandbox.container.reload)
    config: dict[str, Any] = sandbox.container.attrs["Config"]
    host: dict[str, Any] = sandbox.container.attrs["HostConfig"]
    runtime = hardened.options.runtime
    assert host["Runtime"] == runtime.value
    assert host["NetworkMode"] == "none"
    assert host["ReadonlyRootfs"] is True
    assert host["CapDrop"] == ["ALL"]
    assert host["CapAdd"] in (None, [])
    assert host["Privileged"] is False
    assert "no-new-privileges:true" in host["SecurityOpt"]
    assert not any("seccomp=unconfined" in opt for opt in host["SecurityOpt"])
    assert config["User"] == "10001:10001"
    assert host["Memory"] == 512 * 1024 * 1024
    assert host["MemorySwap"] == host["Memory"]
    assert host["NanoCpus"] == 1_000_000_000
    assert host["PidsLimit"] == hardened._pids_limit(runtime)
    assert "size=16m" in host["Tmpfs"]["/tmp"]
    assert "noexec" in host["Tmpfs"]["/tmp"]
    mounts = sandbox.container.attrs["Mounts"]
    assert [(m["Type"], m["Destination"]) for m in mounts] == [("bind", "/run/latm")]
    assert mounts[0]["Source"] == str(sandbox.folder)
    labels = config["Labels"]
    assert labels["io.latm.platform"] == "latm"
    assert labels["io.latm.tenant"] == "hardening"
    assert labels["io.latm.pool"] == f"hardening-{runtime.value}"
    assert labels[LABEL_OWNER] == owner_id()
    # The server is PID 1 (no dumpable init a worker could reach through /proc/1/mem).
    assert not config["Entrypoint"]
    assert config["Cmd"][:4] == ["python", "-I", "-m", "sandbox"]


async def test_no_secret_of_the_orchestrator_is_visible_inside(hardened: DockerBackend) -> None:
    sandbox = await container_of(hardened)
    env = " ".join(sandbox.container.attrs["Config"]["Env"])
    assert SECRET not in env
    assert "postgresql://" not in env
    code, output = await asyncio.to_thread(
        exec_in,
        sandbox,
        """
        import os
        seen = []
        for pid in os.listdir('/proc'):
            if pid.isdigit():
                try:
                    seen.append(open(f'/proc/{pid}/environ', 'rb').read())
                except OSError:
                    pass
        print(len(seen), any(b'sk-test' in e or b'postgresql' in e for e in seen))
        """,
    )
    assert code == 0, output
    count, leaked = output.split()
    # At least this process's own environment (the container's, as docker exec gives
    # it); under runc the server, template and zygote are not dumpable, so theirs are
    # closed to it (gVisor shows them: a known limit, and they hold no secret either).
    assert int(count) >= 1
    assert leaked == "False"


async def test_root_filesystem_is_read_only(hardened: DockerBackend) -> None:
    sandbox = await container_of(hardened)
    code, output = await asyncio.to_thread(
        exec_in,
        sandbox,
        """
        for path in ('/opt/latm/app/sandbox/policy.py', '/etc/passwd', '/x'):
            try:
                open(path, 'a').close()
                print('WROTE', path)
            except OSError as exc:
                print(exc.errno)
        """,
    )
    assert "WROTE" not in output, output
    assert code == 0


async def test_tmp_is_small_and_noexec(hardened: DockerBackend) -> None:
    sandbox = await container_of(hardened)
    _, output = await asyncio.to_thread(
        exec_in,
        sandbox,
        """
        import errno, os, subprocess
        try:
            with open('/tmp/big', 'wb') as f:
                for _ in range(64):
                    f.write(b'0' * (1 << 20))
                    f.flush()
            print('FILLED')
        except OSError as exc:
            print('full' if exc.errno == errno.ENOSPC else exc)
        finally:
            os.remove('/tmp/big')
        with open('/tmp/run.sh', 'w') as f:
            f.write('#!/bin/sh\\necho ran\\n')
        os.chmod('/tmp/run.sh', 0o755)
        try:
            subprocess.run(['/tmp/run.sh'], check=True)
            print('EXECUTED')
        except OSError as exc:
            print('noexec', exc.errno)
        """,
    )
    assert "full" in output, output
    assert "noexec" in output, output
    assert "EXECUTED" not in output


async def test_memory_limit_is_enforced_by_the_container(hardened: DockerBackend) -> None:
    """1 GiB in a 512 MiB container: refused (MemoryError), or the cgroup's OOM killer
    ends the process, or, under gVisor, the whole sandbox: never granted."""
    sandbox = await hardened.acquire("memory")
    assert isinstance(sandbox, DockerSandbox)
    try:
        code, output = await asyncio.to_thread(
            exec_in,
            sandbox,
            "blocks = [bytearray(64 << 20) for _ in range(16)]\nprint('GOT 1 GiB')",
            20,
        )
    except subprocess.TimeoutExpired:  # gVisor's exec waits on a sandbox the OOM killer ended
        await asyncio.to_thread(sandbox.container.reload)
        code, output = -1, f"container {sandbox.container.status}"
        assert sandbox.container.status != "running", output
    finally:
        await hardened.release(sandbox, faulted=True)
    assert "GOT 1 GiB" not in output
    assert code != 0  # MemoryError, or killed by the cgroup's OOM killer


async def test_pids_limit_is_enforced_by_the_container(hardened: DockerBackend) -> None:
    """A fork bomb stops below the limit. (Under gVisor the limit also bounds the
    Sentry's own host threads: reaching it can end the whole sandbox, never the host.)"""
    sandbox = await hardened.acquire("pids")
    assert isinstance(sandbox, DockerSandbox)
    limit = hardened._pids_limit(hardened.options.runtime)
    script = f"""
        import os, signal, sys, time
        children = []
        try:
            for _ in range({limit + 50}):
                pid = os.fork()
                if pid == 0:
                    time.sleep(60)
                    os._exit(0)
                children.append(pid)
                print(len(children), flush=True)
            print('FORKED', flush=True)
        except OSError as exc:
            print('stopped', flush=True)
        finally:
            for pid in children:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
        """
    try:
        _, output = await asyncio.to_thread(exec_in, sandbox, script, 30)
    except subprocess.TimeoutExpired as exc:
        output = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
    finally:
        await hardened.release(sandbox, faulted=True)
    counts = [int(line) for line in output.split() if line.isdigit()]
    assert "FORKED" not in output
    assert counts, output
    assert max(counts) < limit


async def test_no_network_inside(hardened: DockerBackend) -> None:
    """Listeners this test starts on the host (loopback and every address) are unreachable,
    both for tool code with ``socket`` allowed and for a process in the container."""
    listener = socket.socket()
    listener.bind(("0.0.0.0", 0))
    listener.listen()
    port = listener.getsockname()[1]
    gateway = _bridge_gateway()
    probe = (
        "import socket\n"
        "out = []\n"
        f"for host in ('127.0.0.1', {gateway!r}):\n"
        "    s = socket.socket()\n"
        "    s.settimeout(1)\n"
        "    try:\n"
        f"        s.connect((host, {port}))\n"
        "        out.append('connected')\n"
        "    except OSError as exc:\n"
        "        out.append('refused')\n"
        "ans = out\n"
    )
    try:
        result = await hardened.execute("net", ExecRequest(source="", call=probe))
        sandbox = await container_of(hardened, "net")
        code, output = await asyncio.to_thread(exec_in, sandbox, probe + "print(ans)")
        interfaces = await asyncio.to_thread(
            exec_in, sandbox, "import socket\nprint(sorted(n for _, n in socket.if_nameindex()))"
        )
    finally:
        listener.close()
    assert result.status is Status.OK, result
    assert result.value == ["refused", "refused"]
    assert code == 0, output
    assert "connected" not in output
    assert interfaces[1] == "['lo']"


def _bridge_gateway() -> str:
    """The host's address on Docker's default bridge (where a container with a network
    would reach the host); 127.0.0.1 when there is no bridge."""
    done = subprocess.run(
        ["docker", "network", "inspect", "bridge", "-f", "{{(index .IPAM.Config 0).Gateway}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() or "127.0.0.1"


# --- the pool -------------------------------------------------------------------------


@pytest_asyncio.fixture(loop_scope="module")
async def small_pool() -> AsyncIterator[DockerBackend]:
    require_docker()
    backend = DockerBackend(
        DockerOptions(
            pool=PoolConfig(min_idle=1, max_size=2, max_uses=3, acquire_timeout_s=1.0),
        )
    )
    try:
        yield backend
    finally:
        await backend.close()


async def test_pool_exhaustion_fails_clearly_and_fast(small_pool: DockerBackend) -> None:
    first = await small_pool.acquire("busy")
    second = await small_pool.acquire("busy")
    started = time.monotonic()
    with pytest.raises(PoolExhausted, match="pool exhausted"):
        await small_pool.acquire("busy")
    assert time.monotonic() - started < 3.0
    await small_pool.release(first, faulted=False)
    third = await small_pool.acquire("busy")  # freed: served again
    assert third is first
    for sandbox in (second, third):
        await small_pool.release(sandbox, faulted=False)


async def test_containers_are_replaced_after_max_uses() -> None:
    require_docker()
    async with DockerBackend(
        DockerOptions(pool=PoolConfig(min_idle=0, max_size=1, max_uses=3))
    ) as backend:
        pool = backend.pool("uses")
        seen: list[str] = []
        for i in range(7):
            sandbox = await backend.acquire("uses")
            assert isinstance(sandbox, DockerSandbox)
            result = await sandbox.execute(ExecRequest(source=TOOL, call=f"double({i})"))
            assert result.value == i * 2
            seen.append(sandbox.container_id)
            await backend.release(sandbox, faulted=False)
        # One container at a time, three calls each: A A A B B B C.
        assert [seen.index(c) for c in seen] == [0, 0, 0, 3, 3, 3, 6]
        assert pool.stats.reasons == {"max uses": 2}


async def test_min_idle_is_kept_warm_and_old_idle_containers_go() -> None:
    require_docker()
    async with DockerBackend(
        DockerOptions(pool=PoolConfig(min_idle=1, max_size=2, max_idle_s=0.5))
    ) as backend:
        pool = backend.pool("warm")
        await _until(lambda: pool.idle == 1, "a warm container")
        first = {m.container_id for m in pool.members()}
        await asyncio.sleep(0.7)
        await pool.check_idle()
        await _until(lambda: pool.idle == 1 and {m.container_id for m in pool.members()} != first)
        assert pool.stats.reasons.get("idle too long", 0) >= 1


async def test_a_container_failing_its_health_check_is_replaced() -> None:
    require_docker()
    async with DockerBackend(DockerOptions(pool=PoolConfig(min_idle=1, max_size=2))) as backend:
        pool = backend.pool("health")
        await _until(lambda: pool.idle == 1, "a warm container")
        (sick,) = pool.members()
        await asyncio.to_thread(sick.container.kill, signal.SIGKILL)
        await pool.check_idle()
        assert pool.stats.health_failures == 1
        await _until(lambda: pool.idle == 1 and sick not in pool.members(), "a replacement")
        result = await backend.execute("health", ExecRequest(source=TOOL, call="double(4)"))
        assert result.value == 8


@pytest.mark.parametrize("runtime", RUNTIMES, ids=str)
async def test_container_killed_mid_call(runtime: Runtime) -> None:
    """The caller gets `crashed` within its deadline, the pool replaces the container,
    and the next call succeeds."""
    require_docker(runtime.value)
    async with DockerBackend(
        DockerOptions(runtime=runtime, pool=PoolConfig(min_idle=1, max_size=2))
    ) as backend:
        await backend.execute("kill", ExecRequest(source=TOOL, call="double(1)"))
        pool = backend.pool("kill")
        await _until(lambda: pool.idle >= 1, "a warm container")
        sandbox = await backend.acquire("kill")
        assert isinstance(sandbox, DockerSandbox)
        call = asyncio.ensure_future(
            sandbox.execute(ExecRequest(source="", call="while True:\n    pass", timeout_ms=20_000))
        )
        await asyncio.sleep(0.5)
        started = time.monotonic()
        await asyncio.to_thread(sandbox.container.kill, signal.SIGKILL)
        result = await asyncio.wait_for(call, 20)
        assert time.monotonic() - started < 10
        assert result.status is Status.CRASHED
        assert result.error is not None
        await backend.release(sandbox, result.status.is_fault)
        after = await backend.execute("kill", ExecRequest(source=TOOL, call="double(5)"))
        assert after.value == 10
        assert sandbox not in pool.members()
        for _ in range(100):
            ids = {c.id for c in await asyncio.to_thread(backend.own_containers)}
            if sandbox.container_id not in ids:
                break
            await asyncio.sleep(0.1)
        assert sandbox.container_id not in ids, "the killed container was not removed"


# --- cleanup ----------------------------------------------------------------------------

ORPHAN_MAKER = """
import asyncio, os, sys
from orchestrator.sandboxes import ExecRequest
from orchestrator.sandboxes.docker import DockerBackend, DockerOptions
from orchestrator.sandboxes.pool import PoolConfig

async def main():
    backend = DockerBackend(DockerOptions(pool=PoolConfig(min_idle=2, max_size=2)))
    await backend.execute("orphans", ExecRequest(source="", call="1 + 1"))
    pool = backend.pool("orphans")
    while pool.idle < 2:
        await asyncio.sleep(0.05)
    print(os.getpid(), " ".join(m.container_id for m in pool.members()), flush=True)
    os.kill(os.getpid(), 9)  # die without any cleanup

asyncio.run(main())
"""


async def another_orchestrator(code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` as a separate orchestrator process."""
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_a_crashed_orchestrator_leaves_nothing_the_next_start_does_not_clean() -> None:
    require_docker()
    done = await another_orchestrator(ORPHAN_MAKER)
    assert done.returncode == -signal.SIGKILL, done.stderr
    done_pid, *orphans = done.stdout.split()
    assert len(orphans) == 2
    backend = DockerBackend()
    try:
        assert backend.removed_orphans >= 2
        remaining = {c.id for c in backend.docker.containers.list(all=True, ignore_removed=True)}
        assert not remaining & set(orphans)
        folders = {p.name for p in backend.root.parent.parent.iterdir()}
        assert not any(p.split("-")[0] == str(done_pid) for p in folders), folders
    finally:
        await backend.close()


async def test_containers_of_a_live_orchestrator_are_left_alone() -> None:
    require_docker()
    async with DockerBackend(DockerOptions(pool=PoolConfig(min_idle=0))) as first:
        await first.execute("live", ExecRequest(source="", call="1 + 1"))
        (theirs,) = first.own_containers()
        # A second orchestrator starts while this one is alive: it must not touch ours.
        starter = (
            "import asyncio\n"
            "from orchestrator.sandboxes.docker import DockerBackend\n"
            "backend = DockerBackend()\n"
            "print(backend.removed_orphans)\n"
            "asyncio.run(backend.close())\n"
        )
        done = await another_orchestrator(starter)
        assert done.returncode == 0, done.stderr
        assert theirs.id in {c.id for c in first.own_containers()}
        assert theirs.labels[LABEL_OWNER] == owner_id()
        assert first.root.is_dir()
    assert not first.own_containers()  # close() removed its own


async def _until(condition: Any, what: str = "the condition", within_s: float = 30) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


# --- configuration and clear errors --------------------------------------------------


async def test_runtime_per_tenant() -> None:
    require_docker("runsc")
    options = DockerOptions(tenant_runtimes={"acme": Runtime.RUNSC}, pool=PoolConfig(min_idle=0))
    async with DockerBackend(options) as backend:
        acme = await backend.execute("acme", ExecRequest(source=TOOL, call="double(2)"))
        other = await backend.execute("other", ExecRequest(source=TOOL, call="double(3)"))
        assert (acme.value, acme.isolation) == (4, "docker+runsc")
        assert (other.value, other.isolation) == (6, "docker+runc")
        runtimes = {c.labels["io.latm.tenant"]: c.attrs["HostConfig"]["Runtime"]
                    for c in backend.own_containers()}  # fmt: skip
        assert runtimes == {"acme": "runsc", "other": "runc"}


async def test_minimum_isolation_refuses_runc_when_gvisor_is_required() -> None:
    require_docker()
    from orchestrator.errors import IsolationTooWeak
    from orchestrator.sandboxes import IsolationLevel

    with pytest.raises(IsolationTooWeak, match="docker\\+runc"):
        DockerBackend(DockerOptions(runtime=Runtime.RUNC), min_isolation=IsolationLevel.GVISOR)
    backend = DockerBackend(DockerOptions(runtime=Runtime.RUNSC), IsolationLevel.GVISOR)
    await backend.close()


async def test_missing_image_is_a_clear_error() -> None:
    require_docker()
    from orchestrator.errors import SandboxUnavailable

    with pytest.raises(SandboxUnavailable, match="latm image build"):
        DockerBackend(DockerOptions(image="latm-sandbox:no-such-version"))


async def test_cli_without_an_engine_answers_crashed_with_the_reason(tmp_path: Any) -> None:
    tool = tmp_path / "tool.py"
    tool.write_text(TOOL)
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "exec", "--source", str(tool),
         "--call", "double(1)", "--backend", "docker"],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"},
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "crashed"
    assert result["error"]["type"] == "SandboxUnavailable"
    assert "no Docker engine is reachable" in result["error"]["message"]


async def test_a_container_that_dies_before_answering_fails_its_start_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Its socket appeared, then the container exited: the start fails within a
    second or so, not at the health check's 30 s limit."""
    require_docker("runc")
    from orchestrator.errors import SandboxUnavailable
    from orchestrator.sandboxes.client import SandboxClient

    appeared = DockerBackend._wait_for_socket

    async def then_killed(self: DockerBackend, container: Any, *args: Any) -> None:
        await appeared(self, container, *args)
        await asyncio.to_thread(container.kill)

    async def never_ready(self: SandboxClient, timeout_s: float) -> None:
        await asyncio.sleep(3600)

    monkeypatch.setattr(DockerBackend, "_wait_for_socket", then_killed)
    monkeypatch.setattr(SandboxClient, "wait_ready", never_ready)
    backend = DockerBackend(DockerOptions(pool=PoolConfig(min_idle=0, max_size=1)))
    try:
        started = time.monotonic()
        with pytest.raises(SandboxUnavailable, match="exited during start-up"):
            await backend.execute("t", ExecRequest(source="", call="ans = 1"))
        assert time.monotonic() - started < 10
        assert backend.own_containers() == []
    finally:
        await backend.close()
