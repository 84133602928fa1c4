"""What the ``docker`` backend runs with: data only, so the settings can hold it as a group
without importing Docker or gRPC. Each default and bound is stated here once."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from orchestrator.images import sandbox_image_tag
from orchestrator.sandboxes.base import IsolationLevel
from orchestrator.sandboxes.pool import PoolConfig


class Runtime(StrEnum):
    RUNC = "runc"
    RUNSC = "runsc"

    @property
    def level(self) -> IsolationLevel:
        return IsolationLevel.GVISOR if self is Runtime.RUNSC else IsolationLevel.CONTAINER

    @property
    def label(self) -> str:
        return f"docker+{self.value}"


class Transport(StrEnum):
    AUTO = "auto"  # direct for runc, tunnel for runsc
    DIRECT = "direct"  # the orchestrator connects to the server's socket
    TUNNEL = "tunnel"  # the server dials the orchestrator's socket


class ContainerLimits(BaseModel):
    """Each container's limits; the settings' ``docker.limits`` group."""

    model_config = ConfigDict(frozen=True)

    memory_mb: int = Field(default=512, ge=64, le=65536, description="container memory")
    cpus: float = Field(default=1.0, gt=0, le=64, description="container CPU quota")
    pids: int = Field(default=128, ge=16, le=32768, description="container pids limit")
    tmpfs_mb: int = Field(default=16, ge=1, le=4096, description="size of /tmp")
    tmpfs_inodes: int = Field(default=4096, ge=1, description="inodes of /tmp")
    nofile: int = Field(default=256, ge=1, description="open files per process")


IMAGE_HELP = "sandbox image (default, or empty: latm-sandbox:VERSION)"
# An image setting left empty is the default image: one rule for every backend's group.
SandboxImage = Annotated[str, AfterValidator(lambda value: value or sandbox_image_tag())]


class DockerSettings(BaseModel):
    """The settings' ``docker`` group: the image, runtimes, sockets, limits and warm pools."""

    model_config = ConfigDict(frozen=True)

    image: SandboxImage = Field(default_factory=sandbox_image_tag, description=IMAGE_HELP)
    runtime: Runtime = Field(default=Runtime.RUNC, description="container runtime")
    tenant_runtimes: dict[str, Runtime] = Field(
        default_factory=dict, description='per-tenant runtime, e.g. {"acme": "runsc"}'
    )
    transport: Transport = Field(
        default=Transport.AUTO,
        description="auto, direct (server listens) or tunnel (server dials out)",
    )
    socket_dir: Path | None = Field(
        default=None,
        description="host folder of the sandboxes' socket folders (default /run/latm as root); "
        "an orchestrator in a container needs it at the same path on the host",
    )
    limits: ContainerLimits = Field(default_factory=ContainerLimits)
    pool: PoolConfig = Field(default_factory=PoolConfig)


class DockerOptions(DockerSettings):
    """A backend's options: its settings group, and what it shares with the process backend."""

    prefork: int = 2
    allow_modules: list[str] = Field(default_factory=list)
