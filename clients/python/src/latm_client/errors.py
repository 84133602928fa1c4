"""The API's errors: one root, a few meaningful subclasses, one gRPC table.

The orchestrator raises these same classes (``orchestrator.errors`` re-exports them) and
names the class in the trailing metadata of a failed call; :func:`from_rpc_error` turns
that call back into the class, so ``except ToolNotFound`` reads the same on both sides.
"""

from __future__ import annotations

from typing import Any, ClassVar

import grpc
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2, status_pb2

# The trailing metadata key that names the exact error type, so that a client can raise the
# same class the server did (the status code alone is shared by several).
ERROR_TYPE_KEY = "latm-error-type"
# Where gRPC carries the rich status (google.rpc.Status with its details).
STATUS_DETAILS_KEY = "grpc-status-details-bin"


class LatmError(Exception):
    """Root of every error the orchestrator raises on purpose."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL
    by_name: ClassVar[dict[str, type[LatmError]]] = {}

    def __init__(self, message: str = "", *, public: str | None = None) -> None:
        super().__init__(message)
        # What a caller of the public API may read, where the message holds more (an
        # internal address, a provider's own text): that stays in the server's log.
        self.public = public

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        LatmError.by_name[cls.__name__] = cls

    @property
    def public_message(self) -> str:
        return self.public if self.public is not None else str(self)

    def to_dict(self) -> dict[str, Any]:
        """Compact form for callers and models: the type and the message."""
        return {"type": type(self).__name__, "message": str(self)}


class InvalidRequest(LatmError):
    """The caller asked for something malformed (bad arguments, oversize input)."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class ToolNotFound(LatmError):
    """No such tool (or not visible to this tenant)."""

    code = grpc.StatusCode.NOT_FOUND


class RequestNotFound(LatmError):
    """No request of that id was answered by a tool for this tenant (or it was forgotten)."""

    code = grpc.StatusCode.NOT_FOUND


class Unauthenticated(LatmError):
    """No API key, or one that is unknown, malformed or revoked (never quoted back)."""

    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(LatmError):
    """The caller is known but may not do this (e.g. plaintext from a remote address)."""

    code = grpc.StatusCode.PERMISSION_DENIED


class ResourceExhausted(LatmError):
    """Some resource ran out; ``retry_after_s`` says when trying again makes sense."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED

    def __init__(
        self, message: str, retry_after_s: float | None = None, *, public: str | None = None
    ) -> None:
        super().__init__(message, public=public)
        self.retry_after_s = retry_after_s


class QuotaExceeded(ResourceExhausted):
    """The tenant is over one of its quotas (rate, concurrency or sandbox limits)."""


class PreconditionFailed(LatmError):
    """The deployment is not in a state to serve this (missing model, key, dependency)."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class DeadlineExceeded(LatmError):
    """The caller's deadline passed before the work finished; the work was stopped."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED


class Cancelled(LatmError):
    """The caller cancelled the call; the work was stopped."""

    code = grpc.StatusCode.CANCELLED


class Unavailable(LatmError):
    """The service cannot answer right now (shutting down, a dependency unreachable)."""

    code = grpc.StatusCode.UNAVAILABLE


class RegistryUnavailable(Unavailable):
    """The registry's database could not be reached, migrated or written."""


class SandboxUnavailable(LatmError):
    """No sandbox could be started or reached."""

    code = grpc.StatusCode.UNAVAILABLE


class PoolExhausted(SandboxUnavailable):
    """Every sandbox of a pool stayed busy until the caller's deadline."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED

    @classmethod
    def for_pool(cls, pool: str, size: int, waited_s: float) -> PoolExhausted:
        return cls(
            f"pool exhausted: all {size} sandboxes of pool {pool} stayed busy for "
            f"{waited_s:.1f} s; retry later or raise the pool's max size"
        )


class IsolationTooWeak(SandboxUnavailable):
    """The isolation available here is below the deployment's minimum."""

    code = grpc.StatusCode.FAILED_PRECONDITION

    @classmethod
    def for_levels(cls, available: str, minimum: str) -> IsolationTooWeak:
        return cls(
            f"isolation '{available}' is below the configured minimum '{minimum}'; install "
            "bubblewrap or use the docker backend, or lower LATM_MIN_ISOLATION"
        )


class MissingDependencyError(LatmError):
    """An optional dependency of the chosen backend is not installed."""

    code = grpc.StatusCode.FAILED_PRECONDITION

    @classmethod
    def for_extra(cls, package: str, extra: str) -> MissingDependencyError:
        return cls(f"{package} is not installed; run: pip install 'latm[{extra}]'")


class ModelError(LatmError):
    """A model endpoint failed: unreachable, erroring, or its server died mid-request."""

    code = grpc.StatusCode.UNAVAILABLE


class ModelAuthError(ModelError):
    """The API key for a model provider is missing or was rejected (never quoted).

    A deployment fault, not the caller's: FAILED_PRECONDITION, so that it is never confused
    with a caller's own credentials being refused.
    """

    code = grpc.StatusCode.FAILED_PRECONDITION

    @classmethod
    def missing(cls, provider: str, variables: str) -> ModelAuthError:
        return cls(
            f"no API key for {provider}: set {variables} in the environment or put it in "
            "the secrets folder (LATM_SECRETS_DIR)"
        )


class ModelRateLimited(ModelError, ResourceExhausted):
    """The provider kept refusing with rate limits after every retry; ``retry_after_s`` is
    the wait its last answer asked for (``Retry-After``), passed on to the caller."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class ModelTimeout(ModelError):
    """The model did not answer within the configured timeout."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED


class ModelRejected(ModelError):
    """The provider refused the request itself (bad model name, context too long)."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class ScriptExhausted(ModelError):
    """A scripted model was asked for more responses than its script holds."""

    code = grpc.StatusCode.OUT_OF_RANGE


class ModelNotAvailable(ModelError):
    """A local model is not cached, or its files failed verification."""

    code = grpc.StatusCode.FAILED_PRECONDITION


# One table, used by servers and clients alike. Server side, every error class carries its
# status code (``LatmError.code``) and the server names the class in trailing metadata;
# client side, that name picks the class back when its code agrees, else this table does.
GRPC_ERRORS: dict[grpc.StatusCode, type[LatmError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidRequest,
    grpc.StatusCode.NOT_FOUND: ToolNotFound,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.FAILED_PRECONDITION: PreconditionFailed,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.CANCELLED: Cancelled,
    grpc.StatusCode.INTERNAL: LatmError,
}


def error_class(code: grpc.StatusCode, type_name: str | None = None) -> type[LatmError]:
    """The class for a failed call: the named one when it exists and its code agrees,
    else the table's class for the code (the root class for codes not in the table)."""
    named = LatmError.by_name.get(type_name or "")
    if named is not None and named.code is code:
        return named
    return GRPC_ERRORS.get(code, LatmError)


def from_rpc_error(error: grpc.RpcError) -> LatmError:
    """Turn a failed gRPC call into the matching typed error."""
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    details = error.details() if hasattr(error, "details") else str(error)
    trailing = error.trailing_metadata() if hasattr(error, "trailing_metadata") else None
    cls = error_class(code, metadata_value(trailing, ERROR_TYPE_KEY))
    message = details or code.name
    if issubclass(cls, ResourceExhausted):
        return cls(message, retry_after_s=retry_after_s(error))
    return cls(message)


def metadata_value(metadata: Any, name: str) -> str | None:
    """The value of ``name`` in gRPC metadata (pairs, plain or named), or None."""
    value = _metadata_raw(metadata, name)
    if value is None or isinstance(value, str):
        return value
    return bytes(value).decode(errors="replace")


def _metadata_raw(metadata: Any, name: str) -> str | bytes | None:
    for item in metadata or ():
        key, value = tuple(item)
        if key == name:
            return value
    return None


def retry_after_s(error: grpc.RpcError) -> float | None:
    """The RetryInfo hint of a failed call (google.rpc.RetryInfo in the rich status)."""
    trailing = error.trailing_metadata() if hasattr(error, "trailing_metadata") else None
    raw = _metadata_raw(trailing, STATUS_DETAILS_KEY)
    if not isinstance(raw, bytes):
        return None
    try:
        status = status_pb2.Status.FromString(raw)
    except DecodeError:
        return None
    for detail in status.details:
        info = error_details_pb2.RetryInfo()
        if detail.Unpack(info):
            return info.retry_delay.ToTimedelta().total_seconds()
    return None
