"""The LATM orchestrator: the trusted side. It never executes model-written code;
every call goes to a sandbox backend over gRPC."""

from orchestrator.errors import (
    InvalidRequest,
    IsolationTooWeak,
    LatmError,
    MissingDependencyError,
    SandboxUnavailable,
    ToolNotFound,
)

__version__ = "0.1.0"

__all__ = [
    "InvalidRequest",
    "IsolationTooWeak",
    "LatmError",
    "MissingDependencyError",
    "SandboxUnavailable",
    "ToolNotFound",
    "__version__",
]
