"""What the official SDK adapters share, and one mapping from their exceptions to the platform's
model errors.

The ``openai`` and ``anthropic`` SDKs share an exception hierarchy (both are generated the same
way), so one function serves both, given the SDK module. Messages name the endpoint and the HTTP
status, never a key: a provider's own message for a rejected key quotes part of it, so it is
dropped, and every other message passes through :func:`orchestrator.secrets.redact`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable
from types import ModuleType
from typing import Any, TypeVar
from urllib.parse import urlsplit

from orchestrator.errors import (
    ModelAuthError,
    ModelError,
    ModelRateLimited,
    ModelRejected,
    ModelTimeout,
)
from orchestrator.models.base import ModelAdapter, PriceLookup
from orchestrator.secrets import redact, register_secret

_MAX_DETAIL = 300
T = TypeVar("T")


class SdkModel(ModelAdapter):
    """What the two SDK adapters share: endpoint, timeout, retries, key registration, and
    calls whose failures become platform errors. Subclasses set ``_sdk`` and ``_client``."""

    _sdk: ModuleType
    _client: Any

    def __init__(
        self,
        spec: str,
        model: str,
        *,
        api_key: str | None,
        base_url: str | None,
        default_host: str,
        timeout_s: float,
        max_retries: int,
        prices: PriceLookup | None,
    ) -> None:
        super().__init__(spec, prices=prices)
        register_secret(api_key)
        self.model = model
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.where = endpoint(base_url) if base_url else default_host

    async def _call(self, call: Awaitable[T], base: type[Exception]) -> T:
        return await sdk_call(
            call,
            self._sdk,
            base,
            where=self.where,
            timeout_s=self.timeout_s,
            attempts=self.max_retries + 1,
        )

    async def aclose(self) -> None:
        await self._client.close()


def endpoint(base_url: str) -> str:
    """The endpoint as it may appear in messages: scheme, host and port only."""
    parts = urlsplit(base_url)
    return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")


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
    except json.JSONDecodeError as exc:  # a JSON content type over a body that is not JSON
        error = not_a_reply(where, exc)
    raise error


def read_reply(where: str, read: Callable[[], T]) -> T:
    """``read()`` the fields of a reply: one that lacks them or has them of the wrong type
    (the SDKs do not validate replies, and a proxy may answer 200 with an HTML page) becomes
    a :class:`ModelError` rather than an ``AttributeError`` or ``TypeError``."""
    try:
        return read()
    except (AttributeError, TypeError, ValueError, KeyError, IndexError) as exc:
        error = not_a_reply(where, exc)
    raise error


def not_a_reply(where: str, exc: Exception) -> ModelError:
    return ModelError(
        f"{where} answered with something that is not a valid reply: {_detail(exc)}",
        public="the model endpoint answered with something that is not a valid reply",
    )


def map_sdk_error(  # noqa: PLR0911 - one return per kind of failure
    exc: Exception, sdk: ModuleType, *, where: str, timeout_s: float, attempts: int
) -> ModelError:
    """The platform error for an SDK exception raised after the SDK's own retries."""
    tries = _tries(attempts)
    if isinstance(exc, sdk.APITimeoutError):
        public = f"the model gave no answer within {timeout_s:g} s ({tries})"
        return ModelTimeout(
            f"{where} gave no answer within {timeout_s:g} s ({tries})", public=public
        )
    if isinstance(exc, sdk.APIConnectionError):
        cause = exc.__cause__ or exc
        return ModelError(
            f"lost the connection to {where} ({tries}): {_detail(cause)}",
            public=f"lost the connection to the model endpoint ({tries})",
        )
    if isinstance(exc, sdk.AuthenticationError | sdk.PermissionDeniedError):
        return ModelAuthError(
            f"{where} rejected the API key (HTTP {exc.status_code}); check the key in the "
            "environment or the secrets folder",
            public="the model provider rejected the platform's API key (a deployment fault)",
        )
    if isinstance(exc, sdk.RateLimitError):
        return ModelRateLimited(
            f"{where} kept answering 'rate limited' (HTTP 429, {tries}); "
            "retry later or raise the account's limits",
            retry_after_s=_retry_after_s(exc),
            public=f"the model endpoint kept answering 'rate limited' (HTTP 429, {tries}); "
            "retry later",
        )
    if isinstance(exc, sdk.APIStatusError):
        status = exc.status_code
        if status >= 500:
            return ModelError(
                f"{where} failed with HTTP {status} ({tries})",
                public=f"the model endpoint failed with HTTP {status} ({tries})",
            )
        return ModelRejected(
            f"{where} refused the request (HTTP {status}): {_detail(exc)}",
            public=f"the model endpoint refused the request (HTTP {status})",
        )
    return ModelError(
        f"{where}: unexpected reply: {_detail(exc)}",
        public="the model endpoint gave an unexpected reply",
    )


def _retry_after_s(exc: Exception) -> float | None:
    """The wait a refusal asked for: ``retry-after-ms``, or ``retry-after`` in seconds (an
    HTTP date there is not used)."""
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    for name, per_second in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        try:
            wait = float(headers[name]) / per_second
        except (KeyError, ValueError):
            continue
        if math.isfinite(wait) and wait >= 0:
            return wait
    return None


def _tries(attempts: int) -> str:
    return "1 attempt" if attempts == 1 else f"{attempts} attempts"


def _detail(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    text = redact(" ".join(str(message).split()))
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"
