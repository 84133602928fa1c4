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
    KUBERNETES = "kubernetes"


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
            settings.min_isolation,
            settings.prefork,
            settings.allow_modules,
        )
    if backend is BackendName.KUBERNETES:
        if runtime:
            raise InvalidRequest(
                "--runtime applies to the docker backend only; the kubernetes backend's is "
                "LATM_KUBERNETES__RUNTIME_CLASS"
            )
        return _kubernetes_backend(settings)
    return _docker_backend(settings, runtime)


def _kubernetes_backend(settings: Settings) -> SandboxBackend:
    from orchestrator.sandboxes.kubernetes import KubernetesBackend
    from orchestrator.sandboxes.kubernetes_options import KubernetesOptions

    options = KubernetesOptions(
        **dict(settings.kubernetes),
        prefork=settings.prefork,
        allow_modules=settings.allow_modules,
    )
    return KubernetesBackend(options, settings.min_isolation)


def _docker_backend(settings: Settings, runtime: str | None) -> SandboxBackend:
    from orchestrator.sandboxes.docker import DockerBackend
    from orchestrator.sandboxes.docker_options import DockerOptions, Runtime

    group = dict(settings.docker)  # the settings' group as it is, checked when it was read
    if runtime:
        try:
            group["runtime"] = Runtime(runtime)
        except ValueError as exc:
            raise InvalidRequest(f"docker backend settings: {exc}") from None
    options = DockerOptions(**group, prefork=settings.prefork, allow_modules=settings.allow_modules)
    return DockerBackend(options, settings.min_isolation)
