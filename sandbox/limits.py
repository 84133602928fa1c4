"""Per-call limits: defaults, ceilings and how a request's values are resolved."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(frozen=True)
class Limits:
    """Resolved limits for one call (all fields set)."""

    timeout_ms: int = 5_000
    cpu_ms: int = 5_000
    memory_mb: int = 256
    max_output_bytes: int = 64 * 1024
    max_result_bytes: int = 1024 * 1024

    def resolve(self, requested: dict[str, int], ceiling: Limits) -> Limits:
        """Fill zeros from these defaults and clamp everything to ``ceiling``."""
        values = {}
        for f in fields(self):
            asked = int(requested.get(f.name) or 0)
            value = asked if asked > 0 else getattr(self, f.name)
            values[f.name] = min(value, getattr(ceiling, f.name))
        return Limits(**values)

    @property
    def cpu_seconds(self) -> int:
        """RLIMIT_CPU works in whole seconds."""
        return max(1, math.ceil(self.cpu_ms / 1000))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


DEFAULT_LIMITS = Limits()
# The least memory a call may ask for: below it the limit is too small to be a limit
# (the interpreter's own pages are not counted) and such a request is refused.
MIN_MEMORY_MB = 16
MAX_LIMITS = Limits(
    timeout_ms=60_000,
    cpu_ms=60_000,
    memory_mb=2048,
    max_output_bytes=1024 * 1024,
    max_result_bytes=8 * 1024 * 1024,
)
# Worker rlimits that are not per-call settings.
MAX_OPEN_FILES = 64
MAX_FILE_SIZE_BYTES = 1024 * 1024
