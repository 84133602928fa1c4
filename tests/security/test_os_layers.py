"""Attack classes 13-15: reading secrets, reaching the network, gaining privilege.

With the shipped allow-list none of these can even be written (no ``os``, no
``open``, no ``socket``: the import allow-list stops them, see
test_language_escapes.py). These tests run with the operator's widened allow-list
(``os``, ``socket``, ``ctypes`` ...) so that the layers beneath are proven on their
own: an empty environment, the mount layout, network namespaces, non-root users,
dropped capabilities, ``no-new-privileges``, read-only roots and the worker's
seccomp filter. Every network check targets only listeners this test starts on
this machine (loopback and the Docker bridge gateway).
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.sandboxes import Status
from orchestrator.sandboxes.base import SandboxBackend
from orchestrator.sandboxes.docker import DockerBackend, DockerSandbox
from orchestrator.sandboxes.process import ProcessBackend
from tests.security.conftest import (
    SECRET,
    VICTIM,
    assert_contained,
    assert_healthy,
    attack,
)
from tests.support.serving import is_gvisor

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

READ_FILE = """
import os
def read(path):
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        return 'denied: ' + str(exc.errno)
    try:
        return os.read(fd, 1 << 16).decode('utf-8', 'replace')
    except OSError as exc:
        return 'denied: ' + str(exc.errno)
    finally:
        os.close(fd)
"""


# --- 13. secrets ---------------------------------------------------------------------------


async def test_no_secret_in_any_environment_or_process(os_backend: SandboxBackend) -> None:
    """The orchestrator's environment holds secrets while the sandboxes start (see
    conftest). Layer: the backend starts servers with an empty environment (bwrap
    --clearenv; Docker: only the image's variables); the pid namespace hides the
    orchestrator's processes, so no /proc/PID/environ of the host can be read."""
    call = (
        "out = [repr(dict(os.environ))]\n"
        "for pid in os.listdir('/proc'):\n"
        "    if pid.isdigit():\n"
        "        out.append(read('/proc/' + pid + '/environ'))\n"
        "        out.append(read('/proc/' + pid + '/cmdline'))\n"
        "out.append(read('/proc/self/environ'))\n"
        "out.append(read('/proc/1/environ'))\n"
        "ans = out\n"
    )
    result = await attack(os_backend, call, READ_FILE)
    assert result.status is Status.OK, result
    assert_contained(result, {Status.OK})
    assert not any("postgresql://" in text for text in result.value)
    pids = await attack(
        os_backend, "ans = [p for p in os.listdir('/proc') if p.isdigit()]", READ_FILE
    )
    assert len(pids.value) < 20, pids  # its own few processes, not the host's
    await assert_healthy(os_backend, os_level=True)


@pytest.fixture
def host_secret_file(tmp_path: Path) -> Path:
    secret = tmp_path / "credentials"
    secret.write_text(SECRET)
    return secret


async def test_host_files_and_the_docker_socket_are_out_of_reach(
    os_backend: SandboxBackend, host_secret_file: Path
) -> None:
    """Layer: the mount namespace. bwrap binds only /usr, the Python installation and
    the sandbox's code, read-only; a container sees its image and one socket folder.
    The host's files, its /etc and the Docker socket do not exist inside."""
    paths = [
        str(host_secret_file),
        "/var/run/docker.sock",
        "/run/docker.sock",
        "/etc/shadow",
        "/root/.docker/config.json",
        "/proc/1/root/etc/shadow",
        "/proc/kcore",
    ]
    call = f"ans = [read(p) for p in {paths!r}]\n"
    result = await attack(os_backend, call, READ_FILE)
    assert result.status is Status.OK, result
    assert_contained(result, {Status.OK})
    assert all(text.startswith("denied") for text in result.value), result.value
    unix = (
        "import socket\nout = []\n"
        "for path in ('/var/run/docker.sock', '/run/docker.sock'):\n"
        "    s = socket.socket(socket.AF_UNIX)\n"
        "    try:\n        s.connect(path)\n        out.append('ESCAPED')\n"
        "    except OSError as exc:\n        out.append(exc.errno)\n"
        "ans = out\n"
    )
    assert_contained(await attack(os_backend, unix), {Status.OK})
    await assert_healthy(os_backend, os_level=True)


# --- 14. network ---------------------------------------------------------------------------


def bridge_gateway() -> str | None:
    """The host's address on Docker's default bridge, if there is one."""
    done = subprocess.run(
        ["docker", "network", "inspect", "bridge", "-f", "{{(index .IPAM.Config 0).Gateway}}"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() or None


@contextlib.contextmanager
def listeners() -> Iterator[tuple[socket.socket, socket.socket, int, int]]:
    """A TCP and a UDP listener (the UDP one stands in for a DNS server) on every
    address of this machine."""
    tcp = socket.socket()
    tcp.bind(("0.0.0.0", 0))  # loopback and the bridge gateway
    tcp.listen()
    tcp.setblocking(False)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("0.0.0.0", 0))
    udp.setblocking(False)
    try:
        yield tcp, udp, tcp.getsockname()[1], udp.getsockname()[1]
    finally:
        tcp.close()
        udp.close()


async def test_no_egress_dns_or_docker_api(os_backend: SandboxBackend) -> None:
    """TCP to loopback and to the bridge gateway (where a Docker API on TCP or any
    host service would listen), UDP datagrams to a DNS stand-in: nothing arrives.
    Layer: the network namespace (bwrap --unshare-net; Docker --network none;
    gVisor's own none network): only a loopback interface of the sandbox's own."""
    hosts = ["127.0.0.1"] + [h for h in [bridge_gateway()] if h]
    with listeners() as (tcp, udp, tcp_port, udp_port):
        call = (
            "import socket\nout = []\n"
            f"for host in {hosts!r}:\n"
            "    s = socket.socket()\n    s.settimeout(1)\n"
            "    try:\n"
            f"        s.connect((host, {tcp_port}))\n        out.append('ESCAPED tcp ' + host)\n"
            "    except OSError as exc:\n        out.append('tcp refused')\n"
            "    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
            "    try:\n"
            f"        u.sendto(b'ESCAPED dns query', (host, {udp_port}))\n"
            "    except OSError as exc:\n        out.append('udp refused')\n"
            "ans = [out, sorted(n for _, n in socket.if_nameindex())]\n"
        )
        result = await attack(os_backend, call, timeout_ms=10_000)
        assert_contained(result, {Status.OK})
        with pytest.raises(BlockingIOError):
            tcp.accept()
        with pytest.raises(BlockingIOError):
            udp.recvfrom(4096)
    assert result.value[1] == ["lo"], result.value
    await assert_healthy(os_backend, os_level=True)


async def test_other_sandboxes_are_unreachable(os_backend: SandboxBackend) -> None:
    """The victim tenant's server socket, by its host path, from the attacker's
    sandbox. Layer: one mount namespace (bwrap) or container per tenant: the other's
    socket folder is not mounted; and no network between sandboxes."""
    await assert_healthy(os_backend)  # both tenants have a live sandbox
    path = _socket_path(os_backend, VICTIM)
    call = (
        "import socket\ns = socket.socket(socket.AF_UNIX)\n"
        f"try:\n    s.connect({path!r})\n    ans = 'ESCAPED'\n"
        "except OSError as exc:\n    ans = exc.errno\n"
    )
    result = await attack(os_backend, call)
    assert_contained(result, {Status.OK})
    await assert_healthy(os_backend, os_level=True)


def _socket_path(backend: SandboxBackend, tenant: str) -> str:
    if isinstance(backend, ProcessBackend):
        return str(backend._servers[tenant].socket)
    assert isinstance(backend, DockerBackend)
    members = backend.pool(tenant).members()
    assert members
    member = members[0]
    assert isinstance(member, DockerSandbox)
    name = "tunnel.sock" if member.tunnel is not None else "sandbox.sock"
    return str(member.folder / name)


# --- 15. privilege -------------------------------------------------------------------------

PRIVILEGE = """
import ctypes
import os
libc = ctypes.CDLL(None, use_errno=True)
status = {}
for line in read('/proc/self/status').splitlines():
    key, _, value = line.partition(':')
    status[key] = value.strip()
attempts = {}
for name, action in [
    ('setuid', lambda: os.setuid(0)),
    ('setgid', lambda: os.setgid(0)),
    ('chroot', lambda: os.chroot('/tmp')),
]:
    try:
        action()
        attempts[name] = 'ESCAPED'
    except OSError as exc:
        attempts[name] = exc.errno
calls = [('unshare', (0x10000000,)), ('fork', ()), ('mount', (b'x', b'/tmp', b'tmpfs', 0, None))]
for name, args in calls:
    done = getattr(libc, name)(*args)
    attempts[name] = 'ESCAPED' if done >= 0 else ctypes.get_errno()
writes = {}
for path in ('/x', '/etc/x', '/usr/x', '/proc/sys/kernel/hostname', '/proc/sys/vm/x'):
    try:
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY))
        writes[path] = 'ESCAPED'
    except OSError as exc:
        writes[path] = exc.errno
nnp = status.get('NoNewPrivs', 'refused' if libc.prctl(39, 0, 0, 0, 0) < 0 else '?')
ans = {'uid': [os.getuid(), os.geteuid(), os.getgid()], 'status': status,
       'no_new_privs': nnp, 'attempts': attempts, 'writes': writes}
"""


async def test_no_root_capabilities_or_privilege_gain(os_backend: SandboxBackend) -> None:
    """Not root inside; no capability in any set; ``no_new_privs`` set (setuid
    binaries gain nothing); setuid/chroot/unshare/mount and fork (through ctypes,
    past Python) all fail; the root file system and /proc/sys are read-only.
    Layers: bwrap --uid 65534 --cap-drop ALL and --remount-ro /; Docker --user 10001
    --cap-drop ALL --security-opt no-new-privileges --read-only; gVisor's sentry
    beneath; the worker's seccomp filter (fork, unshare, mount)."""
    result = await attack(os_backend, PRIVILEGE, READ_FILE)
    assert_contained(result, {Status.OK})
    report = result.value
    assert 0 not in report["uid"], report
    for key in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        if key in report["status"]:  # gVisor reports fewer lines
            assert int(report["status"][key], 16) == 0, (key, report)
    # gVisor's /proc/self/status has no NoNewPrivs line, and the worker's filter refuses
    # prctl: a process without capabilities can only have installed that filter with
    # no_new_privs set.
    assert report["no_new_privs"] == "1" or (
        is_gvisor(os_backend) and report["no_new_privs"] == "refused"
    ), report
    assert all(isinstance(v, int) and v > 0 for v in report["attempts"].values()), report
    assert all(isinstance(v, int) and v > 0 for v in report["writes"].values()), report
    if not is_gvisor(os_backend):
        assert report["status"].get("Seccomp") == "2", report  # our filter, at least
    await assert_healthy(os_backend, os_level=True)
