"""The orchestrator's exceptions: one root, a few meaningful subclasses, one gRPC table."""

from __future__ import annotations

from typing import Any

import grpc


class LatmError(Exception):
    """Root of every error the orchestrator raises on purpose."""

    code: grpc.StatusCode = grpc.StatusCode.INTERNAL

    def to_dict(self) -> dict[str, Any]:
        """Compact form for callers and models: the type and the message."""
        return {"type": type(self).__name__, "message": str(self)}


class InvalidRequest(LatmError):
    """The caller asked for something malformed (bad arguments, oversize input)."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class ToolNotFound(LatmError):
    """No such tool (or not visible to this tenant)."""

    code = grpc.StatusCode.NOT_FOUND


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


class ModelRateLimited(ModelError):
    """The provider kept refusing with rate limits after every retry."""

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


# One table, used by servers and clients alike: status code <-> exception class.
GRPC_ERRORS: dict[grpc.StatusCode, type[LatmError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidRequest,
    grpc.StatusCode.NOT_FOUND: ToolNotFound,
    grpc.StatusCode.UNAVAILABLE: SandboxUnavailable,
    grpc.StatusCode.FAILED_PRECONDITION: IsolationTooWeak,
    grpc.StatusCode.RESOURCE_EXHAUSTED: PoolExhausted,
}


def from_rpc_error(error: grpc.RpcError) -> LatmError:
    """Turn a failed gRPC call into the matching typed error."""
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    details = error.details() if hasattr(error, "details") else str(error)
    return GRPC_ERRORS.get(code, LatmError)(details or code.name)
