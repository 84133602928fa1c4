"""Requests that do not decode are the caller's error: ``INVALID_ARGUMENT``, not ``UNKNOWN``.

gRPC's asyncio server answers a request message that its deserializer cannot parse
(corrupt wire format, a string field that is not UTF-8) with ``UNKNOWN: Unexpected
<class 'DecodeError'>``, as if the server had failed. This interceptor makes every
handler's deserializer return a marker instead of raising, and the handler refuse the
marker with ``INVALID_ARGUMENT`` and the parser's message, for every service of the
server (the sandbox, health and reflection services alike).
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

Behaviour = Callable[..., Any]
Context = grpc.aio.ServicerContext[Any, Any]
Prepare = Callable[[Any, Context], Awaitable[Any]]


class Undecodable:
    """What the tolerant deserializer returns for bytes it cannot parse."""

    def __init__(self, error: Exception) -> None:
        self.error = error


class RefuseUndecodable(grpc.aio.ServerInterceptor):
    """Answers requests that do not decode with ``INVALID_ARGUMENT``."""

    def __init__(self) -> None:
        self._handlers: dict[str, grpc.RpcMethodHandler] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None or handler.request_deserializer is None:
            return handler
        method: str = handler_call_details.method
        guarded = self._handlers.get(method)
        if guarded is None:  # a method's handler never changes: wrap it once
            guarded = self._handlers[method] = _guarded(handler)
        return guarded


def _guarded(handler: Any) -> Any:
    kind = next(
        name
        for name in ("unary_unary", "unary_stream", "stream_unary", "stream_stream")
        if getattr(handler, name) is not None
    )
    behaviour = getattr(handler, kind)
    if not (inspect.iscoroutinefunction(behaviour) or inspect.isasyncgenfunction(behaviour)):
        return handler  # a synchronous handler: ours are all asynchronous
    prepare = _checked_stream if kind.startswith("stream") else _checked_request
    return handler._replace(
        request_deserializer=tolerant(handler.request_deserializer),
        **{kind: _same_kind(behaviour, prepare)},
    )


def tolerant(deserializer: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    """``deserializer`` returning :class:`Undecodable` instead of raising."""

    def deserialize(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception as exc:  # noqa: BLE001 - whatever the parser raises, the bytes were bad
            return Undecodable(exc)

    return deserialize


async def _checked_request(request: Any, context: Context) -> Any:
    if isinstance(request, Undecodable):
        await context.abort(
            grpc.StatusCode.INVALID_ARGUMENT, f"the request does not decode: {request.error}"
        )
    return request


async def _checked_stream(requests: AsyncIterator[Any], context: Context) -> AsyncIterator[Any]:
    async def checked() -> AsyncIterator[Any]:
        async for request in requests:
            yield await _checked_request(request, context)

    return checked()


def _same_kind(behaviour: Behaviour, prepare: Prepare) -> Behaviour:
    """``behaviour`` with its request (or request stream) checked first; a coroutine
    stays a coroutine and an async generator an async generator, which is how the
    server tells how to drive a handler."""
    if inspect.isasyncgenfunction(behaviour):

        async def generator(request: Any, context: Context) -> AsyncIterator[Any]:
            async for reply in behaviour(await prepare(request, context), context):
                yield reply

        return generator

    async def coroutine(request: Any, context: Context) -> Any:
        return await behaviour(await prepare(request, context), context)

    return coroutine
