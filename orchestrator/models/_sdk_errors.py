"""One mapping from the official SDKs' exceptions to the platform's model errors.

The ``openai`` and ``anthropic`` SDKs share an exception hierarchy (both are generated the same
way), so one function serves both, given the SDK module. Messages name the endpoint and the HTTP
status, never a key: a provider's own message for a rejected key quotes part of it, so it is
dropped, and every other message passes through :func:`orchestrator.secrets.redact`.
"""

from __future__ import annotations

from collections.abc import Awaitable
from types import ModuleType
from typing import TypeVar

from orchestrator.errors import (
    ModelAuthError,
    ModelError,
    ModelRateLimited,
    ModelRejected,
    ModelTimeout,
)
from orchestrator.secrets import redact

_MAX_DETAIL = 300
T = TypeVar("T")


async def sdk_call(
    call: Awaitable[T],
    sdk: ModuleType,
    base: type[Exception],
    *,
    where: str,
    timeout_s: float,
    attempts: int,
) -> T:
    """Await an SDK call; its failures become platform errors with no SDK exception attached.

    The platform error is raised outside the ``except`` block, so neither ``__cause__`` nor
    ``__context__`` holds the SDK's exception, whose text may quote a key.
    """
    try:
        return await call
    except base as exc:
        error = map_sdk_error(exc, sdk, where=where, timeout_s=timeout_s, attempts=attempts)
    raise error


def map_sdk_error(  # noqa: PLR0911 - one return per kind of failure
    exc: Exception, sdk: ModuleType, *, where: str, timeout_s: float, attempts: int
) -> ModelError:
    """The platform error for an SDK exception raised after the SDK's own retries."""
    if isinstance(exc, sdk.APITimeoutError):
        return ModelTimeout(f"{where} gave no answer within {timeout_s:g} s ({_tries(attempts)})")
    if isinstance(exc, sdk.APIConnectionError):
        cause = exc.__cause__ or exc
        return ModelError(f"lost the connection to {where} ({_tries(attempts)}): {_detail(cause)}")
    if isinstance(exc, sdk.AuthenticationError | sdk.PermissionDeniedError):
        return ModelAuthError(
            f"{where} rejected the API key (HTTP {exc.status_code}); check the key in the "
            "environment or the secrets folder"
        )
    if isinstance(exc, sdk.RateLimitError):
        return ModelRateLimited(
            f"{where} kept answering 'rate limited' (HTTP 429, {_tries(attempts)}); "
            "retry later or raise the account's limits"
        )
    if isinstance(exc, sdk.APIStatusError):
        status = exc.status_code
        if status >= 500:
            return ModelError(f"{where} failed with HTTP {status} ({_tries(attempts)})")
        return ModelRejected(f"{where} refused the request (HTTP {status}): {_detail(exc)}")
    return ModelError(f"{where}: unexpected reply: {_detail(exc)}")


def _tries(attempts: int) -> str:
    return "1 attempt" if attempts == 1 else f"{attempts} attempts"


def _detail(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    text = redact(" ".join(str(message).split()))
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"
