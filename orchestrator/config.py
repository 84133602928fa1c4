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

    @field_validator("min_isolation")
    @classmethod
    def _known_level(cls, value: str) -> str:
        IsolationLevel.parse(value)
        return value.lower()

    @property
    def min_isolation_level(self) -> IsolationLevel:
        return IsolationLevel.parse(self.min_isolation)
