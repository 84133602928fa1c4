"""The ``docker`` backend: sandbox servers in hardened containers (runc or gVisor), pooled.

Every container is started with: no network (``--network none``), a read-only
root, a small size-limited ``/tmp`` tmpfs (noexec), all capabilities dropped,
``no-new-privileges``, a non-root user, pids / memory (swap equal to memory) /
CPU limits, Docker's default seccomp profile, no core dumps, an empty
environment beyond the image's own, and one host mount only: its private socket
folder. Labels name the platform, tenant, pool and owning process, so a later
start can tell its own leftovers from another live orchestrator's.

Transport. Under runc the server listens on a Unix socket in its mounted folder
and the orchestrator connects to it. Under gVisor a socket listened on inside the
sandbox is unreachable from the host, so the server dials out instead, to a
socket the orchestrator listens on, through a reverse tunnel
(:mod:`orchestrator.sandboxes.tunnel`); the orchestrator's side stays plain gRPC.

Pools. One :class:`~orchestrator.sandboxes.pool.WarmPool` per (tenant, image,
runtime): containers are never shared across tenants, and one whose call hit a
fault is destroyed, never handed out again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import secrets
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.errors import InvalidRequest, SandboxUnavailable
from orchestrator.images import docker_client
from orchestrator.sandboxes.base import Sandbox, SandboxBackend, acquire_connected
from orchestrator.sandboxes.client import SandboxClient
from orchestrator.sandboxes.docker_options import DockerOptions, Runtime, Transport
from orchestrator.sandboxes.owners import owner_id, owner_is_gone
from orchestrator.sandboxes.owners import start_time as _start_time
from orchestrator.sandboxes.pool import WarmPool
from orchestrator.sandboxes.tunnel import TunnelHost
from orchestrator.sandboxes.values import IsolationLevel
from orchestrator.telemetry import SANDBOX_STARTS

if TYPE_CHECKING:
    import docker
    from docker.models.containers import Container

log = logging.getLogger(__name__)

PLATFORM = "latm"
LABEL_PLATFORM = "io.latm.platform"
LABEL_TENANT = "io.latm.tenant"
LABEL_POOL = "io.latm.pool"
LABEL_OWNER = "io.latm.owner"  # the orchestrator process: HOST/PID/START
LABEL_INSTANCE = "io.latm.instance"  # one backend object within that process
LABEL_RUNTIME = "io.latm.runtime"
SANDBOX_UID = 10001
MOUNT_POINT = "/run/latm"
TOKEN_FILE = "dial.token"  # noqa: S105 - a file name; the token is made per container
START_TIMEOUT_S = 30.0
GVISOR_PIDS_OVERHEAD = 256
SLUG_MAX = 24
# A Unix socket's path holds at most 107 bytes (sockaddr_un's 108 with the final NUL); the
# longest one below the backend's folder is /latm-<tenant slug>-<runtime>-<8 hex>/sandbox.sock.
UNIX_PATH_MAX = 107
SOCKET_TAIL = len("/latm-") + SLUG_MAX + len("-runsc-") + 8 + len("/sandbox.sock")


def _engine_errors() -> tuple[type[Exception], ...]:
    """What the Docker SDK raises when the engine fails or cannot be reached: its own
    errors, and the ``requests`` ones it lets through unwrapped (those are ``OSError``)."""
    import docker.errors

    return (docker.errors.DockerException, OSError)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:SLUG_MAX] or "t"


class DockerSandbox(Sandbox):
    """One pooled container and the way to reach its server."""

    def __init__(  # noqa: PLR0917 - one container's parts, all required
        self,
        tenant: str,
        client: SandboxClient,
        runtime: Runtime,
        container: Container,
        folder: Path,
        tunnel: TunnelHost | None,
    ) -> None:
        super().__init__(tenant, client, runtime.label)
        self.runtime = runtime
        self.container = container
        self.folder = folder
        self.tunnel = tunnel
        self.started_at = time.monotonic()

    @property
    def container_id(self) -> str:
        return str(self.container.id)


class DockerBackend(SandboxBackend):
    """Hardened sandbox containers from warm pools, one pool per (tenant, image, runtime)."""

    name = "docker"

    def __init__(
        self,
        options: DockerOptions | None = None,
        min_isolation: IsolationLevel = IsolationLevel.RLIMITS,
        client: docker.DockerClient | None = None,
    ) -> None:
        super().__init__(min_isolation)
        self.options = options or DockerOptions()
        self.docker = client or docker_client()
        self.owner = owner_id()
        self.instance = secrets.token_hex(4)
        self._pools: dict[tuple[str, str, Runtime], WarmPool[DockerSandbox]] = {}
        self._unremoved: set[str] = set()  # containers to remove once the engine answers
        self._closed = False
        self.check_isolation()
        self._check_engine()
        self.root = self._socket_root()
        self.removed_orphans = self.remove_orphans()

    # --- set-up and clean-up ---------------------------------------------------

    @property
    def isolation(self) -> tuple[str, IsolationLevel]:
        return self.options.runtime.label, self.options.runtime.level

    def check_isolation(self) -> None:
        super().check_isolation()
        for runtime in self.options.tenant_runtimes.values():
            if runtime.level < self.min_isolation:
                from orchestrator.errors import IsolationTooWeak

                raise IsolationTooWeak.for_levels(runtime.label, self.min_isolation.name.lower())

    def _check_engine(self) -> None:
        import docker.errors

        try:
            runtimes = set(self.docker.info().get("Runtimes", {}))
        except _engine_errors() as exc:
            raise SandboxUnavailable(f"no Docker engine is reachable: {exc}") from None
        for runtime in {self.options.runtime, *self.options.tenant_runtimes.values()}:
            if runtime.value not in runtimes:
                raise SandboxUnavailable(
                    f"the container runtime '{runtime}' is not registered with the Docker "
                    "engine (see scripts/docker_engine.sh)"
                )
        try:
            self.docker.images.get(self.options.image)
        except docker.errors.ImageNotFound:
            raise SandboxUnavailable(
                f"the sandbox image {self.options.image} is not built; run: "
                "latm image build --offline-base"
            ) from None

    def _socket_root(self) -> Path:
        if self.options.socket_dir is not None:
            base = self.options.socket_dir
        elif os.geteuid() == 0:
            base = Path("/run/latm")
        else:
            base = Path(tempfile.gettempdir()) / f"latm-{os.geteuid()}"
        _, pid, start = self.owner.split("/")
        root = base / f"{pid}-{start}" / self.instance
        if len(str(root).encode()) + SOCKET_TAIL > UNIX_PATH_MAX:
            # Else every start would wait START_TIMEOUT_S for a socket it cannot reach.
            raise SandboxUnavailable(
                f"the socket folder {base} is too long: the sandboxes' socket paths below it "
                f"would pass the {UNIX_PATH_MAX}-byte limit of Unix socket paths; set "
                "LATM_DOCKER_SOCKET_DIR to a shorter folder"
            )
        base.mkdir(mode=0o711, parents=True, exist_ok=True)
        root.mkdir(mode=0o711, parents=True)
        return root

    def remove_orphans(self) -> int:
        """Remove containers and socket folders left by orchestrators that died."""
        removed = 0
        for container in self.docker.containers.list(
            all=True, filters={"label": f"{LABEL_PLATFORM}={PLATFORM}"}, ignore_removed=True
        ):
            owner = container.labels.get(LABEL_OWNER, "")
            if owner != self.owner and owner_is_gone(owner):
                log.info("removing orphaned sandbox container %s", container.name)
                with contextlib.suppress(Exception):
                    container.remove(force=True)
                    removed += 1
        for folder in self.root.parent.parent.iterdir():
            pid, _, start = folder.name.partition("-")
            if pid.isdigit() and _start_time(int(pid)) != start:
                shutil.rmtree(folder, ignore_errors=True)
        return removed

    def own_containers(self) -> list[Container]:
        return list(
            self.docker.containers.list(
                all=True,
                filters={"label": f"{LABEL_INSTANCE}={self.instance}"},
                ignore_removed=True,
            )
        )

    async def close(self) -> None:
        self._closed = True
        pools, self._pools = self._pools, {}
        await asyncio.gather(*(pool.close() for pool in pools.values()))
        # Anything left (a start interrupted half-way) goes too, if the engine answers.
        try:
            left = await asyncio.to_thread(self.own_containers)
        except _engine_errors() as exc:
            log.warning("could not list this backend's containers to remove them: %s", exc)
            left = []
        for container in left:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(container.remove, force=True)
        shutil.rmtree(self.root, ignore_errors=True)
        with contextlib.suppress(OSError):
            self.root.parent.rmdir()  # the process's folder, once no backend uses it

    # --- pools -----------------------------------------------------------------

    def stats(self) -> dict[str, int]:
        pools = list(self._pools.values())
        return {"idle": sum(p.idle for p in pools), "busy": sum(p.busy for p in pools)}

    def runtime_for(self, tenant: str) -> Runtime:
        return self.options.tenant_runtimes.get(tenant, self.options.runtime)

    def pool(self, tenant: str) -> WarmPool[DockerSandbox]:
        if not tenant:
            raise InvalidRequest("a tenant is required")
        if self._closed:
            raise SandboxUnavailable("the docker backend is closed")
        runtime = self.runtime_for(tenant)
        key = (tenant, self.options.image, runtime)
        pool = self._pools.get(key)
        if pool is None:
            name = f"{_slug(tenant)}-{runtime.value}"

            async def create() -> DockerSandbox:
                return await self._start(tenant, runtime, name)

            pool = WarmPool(name, self.options.pool, create, self._stop, self._healthy)
            self._pools[key] = pool
        return pool

    async def acquire(self, tenant: str) -> Sandbox:
        pool = self.pool(tenant)
        return await acquire_connected(pool)

    async def release(self, sandbox: Sandbox, faulted: bool) -> None:
        assert isinstance(sandbox, DockerSandbox)
        runtime = sandbox.runtime
        pool = self._pools.get((sandbox.tenant, self.options.image, runtime))
        if pool is None:  # backend closed meanwhile
            await self._stop(sandbox)
            return
        await pool.release(sandbox, faulted)

    # --- one container ---------------------------------------------------------

    def _transport(self, runtime: Runtime) -> Transport:
        if self.options.transport is Transport.AUTO:
            return Transport.TUNNEL if runtime is Runtime.RUNSC else Transport.DIRECT
        return self.options.transport

    def _container_config(  # noqa: PLR0917
        self, tenant: str, runtime: Runtime, pool: str, name: str, folder: Path, tunnel: bool
    ) -> dict[str, Any]:
        from docker.types import Mount, Ulimit

        limits = self.options.limits
        tmpfs, inodes = f"{limits.tmpfs_mb}m", limits.tmpfs_inodes
        # Through the tunnel the server listens in the abstract namespace: a socket file
        # in /tmp could be replaced by anything else running as the sandbox's uid.
        listen = "unix-abstract:latm-sandbox" if tunnel else f"unix:{MOUNT_POINT}/sandbox.sock"
        # -I: the working folder (/tmp, writable) is not on the module path.
        command = ["python", "-I", "-m", "sandbox", "--listen", listen]
        if tunnel:
            command += ["--dial", f"unix:{MOUNT_POINT}/tunnel.sock"]
            command += ["--dial-token-file", f"{MOUNT_POINT}/{TOKEN_FILE}"]
        command += [f"--prefork={self.options.prefork}"]
        # The container's own tmpfs mounts: emptied between calls by the template.
        command += ["--scratch=/tmp", "--scratch=/dev/shm"]
        command += [f"--allow-module={m}" for m in self.options.allow_modules]
        return {
            "image": self.options.image,
            "command": command,
            "name": name,
            "hostname": "sandbox",
            "user": f"{SANDBOX_UID}:{SANDBOX_UID}",
            "environment": {},  # only the image's own variables: no secret of ours
            "network_mode": "none",
            "read_only": True,
            # Sized in bytes and in files (runc's kernel enforces nr_inodes; under gVisor
            # the Sentry's files live in the container's memory cgroup instead).
            "tmpfs": {"/tmp": f"rw,noexec,nosuid,nodev,size={tmpfs},nr_inodes={inodes},mode=1777"},  # noqa: S108
            "shm_size": f"{limits.tmpfs_mb}m",
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges:true"],  # default seccomp stays on
            "pids_limit": self._pids_limit(runtime),
            "mem_limit": f"{limits.memory_mb}m",
            "memswap_limit": f"{limits.memory_mb}m",
            "nano_cpus": int(limits.cpus * 1e9),
            "ulimits": [
                Ulimit(name="core", soft=0, hard=0),
                Ulimit(name="nofile", soft=limits.nofile, hard=limits.nofile),
            ],
            "ipc_mode": "private",
            "runtime": runtime.value,
            "mounts": [Mount(MOUNT_POINT, str(folder), type="bind")],
            "labels": {
                LABEL_PLATFORM: PLATFORM,
                LABEL_TENANT: tenant,
                LABEL_POOL: pool,
                LABEL_RUNTIME: runtime.value,
                LABEL_OWNER: self.owner,
                LABEL_INSTANCE: self.instance,
            },
            "stop_signal": "SIGTERM",
            "detach": True,
        }

    def _pids_limit(self, runtime: Runtime) -> int:
        """Under gVisor's ptrace platform the pids cgroup also counts the Sentry's own
        host threads and one stub process per address space: about 60 before the
        first call. The processes of the sandboxed code still each cost one stub,
        so the limit still bounds them, with that overhead added."""
        if runtime is Runtime.RUNSC:
            return self.options.limits.pids + GVISOR_PIDS_OVERHEAD
        return self.options.limits.pids

    async def _start(self, tenant: str, runtime: Runtime, pool: str) -> DockerSandbox:
        """Create and start one container; return once its server answers health checks."""
        await self._remove_unremoved()
        SANDBOX_STARTS.labels(self.name).inc()
        name = f"latm-{pool}-{secrets.token_hex(4)}"
        folder = self.root / name
        folder.mkdir(mode=0o700)
        if os.geteuid() == 0:
            os.chown(folder, SANDBOX_UID, SANDBOX_UID)
        use_tunnel = self._transport(runtime) is Transport.TUNNEL
        tunnel: TunnelHost | None = None
        container: Container | None = None
        client: SandboxClient | None = None
        try:
            if use_tunnel:
                token = secrets.token_hex(32).encode()
                _write_token(folder / TOKEN_FILE, token)
                tunnel = TunnelHost(folder / "tunnel.sock", self.root / f"{name}.sock", token)
                await tunnel.start()
                if os.geteuid() == 0:
                    os.chown(tunnel.tunnel_path, SANDBOX_UID, SANDBOX_UID)
                target = tunnel.target
            else:
                target = f"unix:{folder}/sandbox.sock"
            config = self._container_config(tenant, runtime, pool, name, folder, use_tunnel)
            try:
                container = await asyncio.to_thread(self.docker.containers.run, **config)
            except _engine_errors() as exc:
                raise SandboxUnavailable(f"could not start a sandbox container: {exc}") from None
            assert container is not None
            await self._wait_for_socket(container, folder, tunnel)
            client = SandboxClient(target, fast_reconnect=True)
            await self._wait_ready(client, container)
            _lock_folder(folder)
        except BaseException:
            if client is not None:
                await client.close()
            await self._discard(container, folder, tunnel)
            raise
        return DockerSandbox(tenant, client, runtime, container, folder, tunnel)

    async def _wait_for_socket(
        self, container: Container, folder: Path, tunnel: TunnelHost | None
    ) -> None:
        """Wait until the server is reachable, or its container has exited."""
        deadline = time.monotonic() + START_TIMEOUT_S
        next_check = time.monotonic() + 0.5
        while time.monotonic() < deadline:
            if tunnel is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(tunnel.dialled.wait(), 0.25)
                    return
            elif (folder / "sandbox.sock").exists():
                return
            else:
                await asyncio.sleep(0.003)
            if time.monotonic() >= next_check:
                next_check = time.monotonic() + 0.5
                await self._check_started(container)
        raise SandboxUnavailable(
            f"sandbox container {container.name} did not become ready in {START_TIMEOUT_S:.0f} s"
        )

    async def _wait_ready(self, client: SandboxClient, container: Container) -> None:
        """Wait for the server's health check; fail early if its container exits."""
        ready = asyncio.ensure_future(client.wait_ready(START_TIMEOUT_S))
        try:
            while not ready.done():
                await asyncio.wait({ready}, timeout=0.5)
                if not ready.done():
                    await self._check_started(container)
            ready.result()
        finally:
            ready.cancel()

    async def _check_started(self, container: Container) -> None:
        """Fail when the container has exited (with its last log lines) or is gone."""
        try:
            await asyncio.to_thread(container.reload)
            if container.status in ("created", "running"):
                return
            logs = await asyncio.to_thread(container.logs, tail=20)
        except _engine_errors() as exc:
            raise SandboxUnavailable(
                f"sandbox container {container.name} was lost during start-up: {exc}"
            ) from None
        text = bytes(logs).decode("utf-8", "replace").strip()
        raise SandboxUnavailable(
            f"sandbox container {container.name} exited during start-up: {text}"
        )

    async def _healthy(self, sandbox: DockerSandbox) -> bool:
        return await sandbox.client.healthy()

    async def _stop(self, sandbox: DockerSandbox) -> None:
        await sandbox.client.close()
        await self._discard(sandbox.container, sandbox.folder, sandbox.tunnel)

    async def _discard(
        self, container: Container | None, folder: Path, tunnel: TunnelHost | None
    ) -> None:
        if container is not None:
            await self._remove(str(container.id))
        if tunnel is not None:
            await tunnel.close()
        shutil.rmtree(folder, ignore_errors=True)

    async def _remove(self, container_id: str) -> bool:
        """Remove a container; one the engine cannot remove now (it is down or restarting)
        is remembered and removed before the next start. False when it is still there."""
        import docker.errors

        try:
            await asyncio.to_thread(self.docker.api.remove_container, container_id, force=True)
        except docker.errors.NotFound:
            pass
        except _engine_errors() as exc:
            if container_id not in self._unremoved:
                log.warning("could not remove container %s yet: %s", container_id[:12], exc)
            self._unremoved.add(container_id)
            return False
        self._unremoved.discard(container_id)
        return True

    async def _remove_unremoved(self) -> None:
        for container_id in list(self._unremoved):
            if not await self._remove(container_id):
                return  # the engine still does not answer


def _write_token(path: Path, token: bytes) -> None:
    """The dial token, readable by the sandbox's uid only (its server reads and removes
    it at start, before any tool code runs)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
    with os.fdopen(descriptor, "wb") as file:
        file.write(token)
    if os.geteuid() == 0:
        os.chown(path, SANDBOX_UID, SANDBOX_UID)


def _lock_folder(folder: Path) -> None:
    """Once the server is reachable, its mounted folder (a host folder) stops being
    writable by the sandbox's user: tool code given file access by the operator
    could otherwise fill the host's disk through it, or replace the socket. The
    socket inside stays connectable (the group's search bit: under gVisor the server
    dials the tunnel's socket in it). Only root can take the folder back."""
    if os.geteuid() == 0:
        os.chown(folder, 0, SANDBOX_UID)
        os.chmod(folder, 0o710)  # noqa: S103 - search only, for the sandbox's group
