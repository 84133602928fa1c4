"""Choose a sandbox backend by name; heavy dependencies are imported lazily."""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from orchestrator.errors import InvalidRequest, SandboxUnavailable
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
    raise SandboxUnavailable("the docker backend is not part of this build yet")
