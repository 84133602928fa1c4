"""The orchestrator's exceptions: those of the API, from the client package.

The classes, the gRPC table and :func:`from_rpc_error` live in ``latm_client.errors`` so that
a service calling the API can catch them without installing the orchestrator; they are the
same objects here, so ``except ToolNotFound`` catches what either side raises.
"""

from __future__ import annotations

from latm_client.errors import (
    ERROR_TYPE_KEY,
    GRPC_ERRORS,
    STATUS_DETAILS_KEY,
    Cancelled,
    DeadlineExceeded,
    InvalidRequest,
    IsolationTooWeak,
    LatmError,
    MissingDependencyError,
    ModelAuthError,
    ModelError,
    ModelNotAvailable,
    ModelRateLimited,
    ModelRejected,
    ModelTimeout,
    PermissionDenied,
    PoolExhausted,
    PreconditionFailed,
    QuotaExceeded,
    RegistryUnavailable,
    ResourceExhausted,
    SandboxUnavailable,
    ScriptExhausted,
    ToolNotFound,
    Unauthenticated,
    Unavailable,
    error_class,
    from_rpc_error,
    metadata_value,
    retry_after_s,
)

__all__ = [
    "ERROR_TYPE_KEY",
    "GRPC_ERRORS",
    "STATUS_DETAILS_KEY",
    "Cancelled",
    "DeadlineExceeded",
    "InvalidRequest",
    "IsolationTooWeak",
    "LatmError",
    "MissingDependencyError",
    "ModelAuthError",
    "ModelError",
    "ModelNotAvailable",
    "ModelRateLimited",
    "ModelRejected",
    "ModelTimeout",
    "PermissionDenied",
    "PoolExhausted",
    "PreconditionFailed",
    "QuotaExceeded",
    "RegistryUnavailable",
    "ResourceExhausted",
    "SandboxUnavailable",
    "ScriptExhausted",
    "ToolNotFound",
    "Unauthenticated",
    "Unavailable",
    "error_class",
    "from_rpc_error",
    "metadata_value",
    "retry_after_s",
]
