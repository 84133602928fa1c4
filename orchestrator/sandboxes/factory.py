"""Choose a sandbox backend by name; heavy dependencies are imported lazily."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from orchestrator.errors import InvalidRequest
from orchestrator.sandboxes.base import SandboxBackend

if TYPE_CHECKING:
    from orchestrator.config import Settings


class BackendName(StrEnum):
    PROCESS = "process"
    DOCKER = "docker"


def create_backend(
    name: str, settings: Settings | None = None, runtime: str | None = None
) -> SandboxBackend:
    """Build the backend called ``name`` from ``settings`` (environment by default)."""
    if settings is None:
        from orchestrator.config import Settings

        settings = Settings()
    try:
        backend = BackendName(name)
    except ValueError:
        choices = ", ".join(b.value for b in BackendName)
        raise InvalidRequest(f"unknown backend {name!r}; one of: {choices}") from None
    if backend is BackendName.PROCESS:
        if runtime:
            raise InvalidRequest("--runtime applies to the docker backend only")
        from orchestrator.sandboxes.process import ProcessBackend

        return ProcessBackend(
            settings.process_isolation,
            settings.min_isolation_level,
            settings.prefork,
            settings.allow_modules,
        )
    return _docker_backend(settings, runtime)


def _docker_backend(settings: Settings, runtime: str | None) -> SandboxBackend:
    from orchestrator.sandboxes.docker import (
        ContainerLimits,
        DockerBackend,
        DockerOptions,
        Runtime,
        Transport,
    )
    from orchestrator.sandboxes.pool import PoolConfig

    try:
        options = DockerOptions(
            runtime=Runtime(runtime or settings.docker_runtime),
            tenant_runtimes={t: Runtime(r) for t, r in settings.docker_tenant_runtimes.items()},
            transport=Transport(settings.docker_transport),
            limits=ContainerLimits(
                memory_mb=settings.docker_memory_mb,
                cpus=settings.docker_cpus,
                pids=settings.docker_pids,
                tmpfs_mb=settings.docker_tmpfs_mb,
            ),
            pool=PoolConfig(
                min_idle=settings.pool_min_idle,
                max_size=settings.pool_max_size,
                max_uses=settings.pool_max_uses,
                max_idle_s=settings.pool_max_idle_s,
                acquire_timeout_s=settings.pool_acquire_timeout_s,
            ),
            prefork=settings.prefork,
            allow_modules=settings.allow_modules,
            socket_root=settings.docker_socket_dir,
        )
    except ValueError as exc:
        raise InvalidRequest(f"docker backend settings: {exc}") from None
    if settings.docker_image:
        options.image = settings.docker_image
    return DockerBackend(options, settings.min_isolation_level)
