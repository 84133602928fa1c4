"""Settings, from environment variables (``LATM_*``) and an optional ``.env`` file."""

from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from orchestrator.sandboxes.base import IsolationLevel


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="LATM_", env_file=".env", extra="ignore", frozen=True
    )

    backend: str = Field(default="process", description="sandbox backend: process or docker")
    process_isolation: str = Field(
        default="auto", description="process backend wrapper: auto, bwrap, unshare or none"
    )
    min_isolation: str = Field(
        default="rlimits",
        description="refuse to run below this: rlimits, namespaces, container or gvisor",
    )
    prefork: int = Field(default=2, ge=0, le=64, description="spare workers per sandbox")
    allow_modules: list[str] = Field(
        default_factory=list, description="extra importable modules (operator's choice)"
    )

    # --- the docker backend ---
    docker_image: str = Field(
        default="", description="sandbox image (default latm-sandbox:VERSION)"
    )
    docker_runtime: str = Field(default="runc", description="container runtime: runc or runsc")
    docker_tenant_runtimes: dict[str, str] = Field(
        default_factory=dict, description='per-tenant runtime, e.g. {"acme": "runsc"}'
    )
    docker_transport: str = Field(
        default="auto", description="auto, direct (server listens) or tunnel (server dials out)"
    )
    docker_memory_mb: int = Field(default=512, ge=64, le=65536, description="container memory")
    docker_cpus: float = Field(default=1.0, gt=0, le=64, description="container CPU quota")
    docker_pids: int = Field(default=128, ge=16, le=32768, description="container pids limit")
    docker_tmpfs_mb: int = Field(default=16, ge=1, le=4096, description="size of /tmp")
    pool_min_idle: int = Field(default=1, ge=0, le=64, description="warm containers kept idle")
    pool_max_size: int = Field(default=4, ge=1, le=256, description="containers per pool")
    pool_max_uses: int = Field(
        default=200, ge=1, description="calls before a container is replaced"
    )
    pool_max_idle_s: float = Field(default=300.0, gt=0, description="idle age before removal")
    pool_acquire_timeout_s: float = Field(
        default=30.0, gt=0, description="wait for a free container before 'pool exhausted'"
    )

    @field_validator("docker_runtime")
    @classmethod
    def _known_runtime(cls, value: str) -> str:
        if value not in ("runc", "runsc"):
            raise ValueError(f"unknown container runtime {value!r}; one of: runc, runsc")
        return value

    @field_validator("docker_tenant_runtimes")
    @classmethod
    def _known_runtimes(cls, value: dict[str, str]) -> dict[str, str]:
        for runtime in value.values():
            cls._known_runtime(runtime)
        return value

    @field_validator("min_isolation")
    @classmethod
    def _known_level(cls, value: str) -> str:
        IsolationLevel.parse(value)
        return value.lower()

    @property
    def min_isolation_level(self) -> IsolationLevel:
        return IsolationLevel.parse(self.min_isolation)
