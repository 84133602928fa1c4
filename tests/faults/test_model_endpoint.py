"""A model endpoint that fails, through the real SDK adapters and the real API.

The endpoint is :class:`tests.faults.endpoint.FaultyEndpoint` on loopback (a test double: no
model provider is reachable here); the adapters are the official ``openai`` and ``anthropic``
SDKs. Each fault ends the caller's request with the error class its status names, never an
INTERNAL error or a hang; transient faults are retried inside the request; and the next
request on the same server is answered.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

import grpc
import pytest
from pydantic import SecretStr

from orchestrator.config import Settings
from orchestrator.errors import (
    LatmError,
    ModelError,
    ModelRateLimited,
    ModelTimeout,
)
from orchestrator.models import ModelAdapter, open_model
from tests.faults.endpoint import FaultyEndpoint
from tests.support.api import StartApi, use_maker
from tests.support.maker import SORT, maker_script, word_sorting
from tests.support.model_server import DEFAULT_KEY

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore:The model 'claude-3-5-haiku:DeprecationWarning"),
]

QUESTION = "What is 2 plus 3?"
REPLY = "Two plus three makes five. So the answer is 5."
RETRIES = 1  # each request is tried twice
ATTEMPTS = RETRIES + 1


def open_adapter(provider: str, endpoint: FaultyEndpoint, timeout_s: float = 5.0) -> ModelAdapter:
    """The provider's real SDK adapter, pointed at the endpoint, with short limits."""
    key = SecretStr(DEFAULT_KEY)
    settings = Settings(model_max_retries=RETRIES, model_timeout_s=timeout_s)
    if provider == "openai":
        spec = f"openai-compatible:{endpoint.openai_url}#fixture-model"
        return open_model(spec, settings.model_copy(update={"openai_compatible_api_key": key}))
    settings = settings.model_copy(
        update={"anthropic_base_url": endpoint.url, "anthropic_api_key": key}
    )
    return open_model("anthropic:claude-3-5-haiku-20241022", settings)


@dataclass(frozen=True)
class Fault:
    inject: Callable[[FaultyEndpoint], None]
    error: type[LatmError]
    code: grpc.StatusCode
    words: str  # a pattern the message must match


# Each fault serves every attempt of one request, and nothing after it.
FAULTS = {
    "timeout": Fault(
        lambda e: e.hang(3.0, times=ATTEMPTS),
        ModelTimeout,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        r"no answer within 0\.5 s \(2 attempts\)",
    ),
    "429": Fault(
        lambda e: e.fail(429, times=ATTEMPTS),
        ModelRateLimited,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "HTTP 429, 2 attempts",
    ),
    "429-retry-after": Fault(
        lambda e: e.fail(429, times=ATTEMPTS, retry_after=0.2),
        ModelRateLimited,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "HTTP 429, 2 attempts",
    ),
    "500": Fault(
        lambda e: e.fail(500, times=ATTEMPTS),
        ModelError,
        grpc.StatusCode.UNAVAILABLE,
        r"HTTP 500 \(2 attempts\)",
    ),
    "garbage-json": Fault(
        lambda e: e.garbage(b'{"choices": [{"message": '),
        ModelError,
        grpc.StatusCode.UNAVAILABLE,
        "not a valid reply",
    ),
    "garbage-html": Fault(
        lambda e: e.garbage(b"<html>502 Bad Gateway</html>", content_type="text/html"),
        ModelError,
        grpc.StatusCode.UNAVAILABLE,
        "not a valid reply",
    ),
    "wrong-shape": Fault(
        lambda e: e.garbage(b'{"hello": "world", "usage": null}'),
        ModelError,
        grpc.StatusCode.UNAVAILABLE,
        "not a valid reply|answered with no choices",
    ),
    "cut-mid-body": Fault(
        lambda e: e.cut(times=ATTEMPTS),
        ModelError,
        grpc.StatusCode.UNAVAILABLE,
        "lost the connection",
    ),
    "cut-mid-chunks": Fault(
        lambda e: e.cut(chunked=True, times=ATTEMPTS),
        ModelError,
        grpc.StatusCode.UNAVAILABLE,
        "lost the connection",
    ),
    "dropped": Fault(
        lambda e: e.drop(times=ATTEMPTS),
        ModelError,
        grpc.StatusCode.UNAVAILABLE,
        "lost the connection",
    ),
}


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
@pytest.mark.parametrize("name", list(FAULTS))
async def test_a_failing_endpoint_gives_a_typed_status_then_recovers(
    start_api: StartApi, endpoint: FaultyEndpoint, provider: str, name: str
) -> None:
    fault = FAULTS[name]
    endpoint.reply = REPLY
    api = await start_api(user_model=open_adapter(provider, endpoint, timeout_s=0.5))
    fault.inject(endpoint)
    async with api.client() as client:
        started = time.monotonic()
        with pytest.raises(LatmError) as caught:
            await client.solve(QUESTION, timeout_s=20.0)
        elapsed = time.monotonic() - started
        assert type(caught.value) is fault.error, caught.value
        assert fault.error.code is fault.code
        assert re.search(fault.words, str(caught.value)), caught.value
        assert DEFAULT_KEY not in str(caught.value)
        # No internal address reaches the caller (the server's log keeps it).
        assert endpoint.url.split("://")[1].split("/")[0] not in str(caught.value)
        assert "127.0.0.1" not in str(caught.value)
        if isinstance(caught.value, ModelRateLimited):  # the provider's wait is passed on
            wanted = 0.2 if name == "429-retry-after" else None
            assert caught.value.retry_after_s == wanted
        assert elapsed < 8.0  # bounded by the model's timeout and retries, never a hang

        answer = await client.solve(QUESTION, timeout_s=20.0)
        assert (answer.answer, answer.route) == ("5", "direct")
        assert answer.usage["user"]["completion_tokens"] > 0


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
@pytest.mark.parametrize(
    "inject",
    [
        pytest.param(lambda e: e.fail(429, retry_after=0.3), id="429-retry-after"),
        pytest.param(lambda e: e.fail(503), id="503"),
        pytest.param(lambda e: e.cut(), id="cut-mid-body"),
        pytest.param(lambda e: e.drop(), id="dropped"),
    ],
)
async def test_a_transient_fault_is_retried_within_the_request(
    start_api: StartApi,
    endpoint: FaultyEndpoint,
    provider: str,
    inject: Callable[[FaultyEndpoint], None],
) -> None:
    endpoint.reply = REPLY
    api = await start_api(user_model=open_adapter(provider, endpoint))
    inject(endpoint)
    async with api.client() as client:
        answer = await client.solve(QUESTION, timeout_s=20.0)
    assert answer.answer == "5"
    assert endpoint.attempts() == 2
    first, second = endpoint.requests
    assert first.status != 200 or first.response in ("cut", None)
    assert second.status == 200


async def test_retry_after_is_honoured(start_api: StartApi, endpoint: FaultyEndpoint) -> None:
    endpoint.reply = REPLY
    api = await start_api(user_model=open_adapter("openai", endpoint))
    endpoint.fail(429, retry_after=1.0)
    async with api.client() as client:
        started = time.monotonic()
        assert (await client.solve(QUESTION)).answer == "5"
    assert time.monotonic() - started >= 1.0  # the SDK waited as long as it was told


async def test_a_maker_endpoint_failing_mid_make_publishes_nothing(
    start_api: StartApi, endpoint: FaultyEndpoint
) -> None:
    """The maker's endpoint answers the proposal, then fails: the stream ends with the
    model's status, nothing is published, the job's slot is freed, and the next job,
    with the endpoint back, publishes its tool."""
    api = await start_api()
    use_maker(api, open_adapter("openai", endpoint))
    propose, verify = maker_script(SORT)
    examples = word_sorting()
    endpoint.queue_replies(propose)
    endpoint.fail(500, times=ATTEMPTS)
    async with api.client() as client:
        events: list[str | None] = []

        async def make() -> None:
            async for event in client.make_tool("word_sorting", examples):
                events.append(event.WhichOneof("event"))

        with pytest.raises(ModelError, match="HTTP 500") as caught:
            await make()
        assert type(caught.value) is ModelError
        assert "attempt" in events
        assert await client.list_tools() == []
        assert api.server.service.quotas.in_flight("acme") == (0, 0)

        endpoint.queue_replies(propose, verify)
        events.clear()
        await make()
        assert events[-1] == "tool"
        assert [tool.name for tool in await client.list_tools()] == ["sort_words"]
