"""The Anthropic and OpenAI adapters, through the official SDKs, over real HTTP.

The endpoint is :mod:`tests.support.model_server`, a local server we wrote that speaks
the shape of both providers' APIs: these tests prove what the adapters send, how they count and
price, retry and fail, and that an API key never leaks, not how the real providers behave.
"""

from __future__ import annotations

import inspect
import io
import json
import logging
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from anthropic.resources.messages import AsyncMessages

from orchestrator.config import Settings
from orchestrator.errors import (
    ModelAuthError,
    ModelError,
    ModelRateLimited,
    ModelRejected,
    ModelTimeout,
)
from orchestrator.models.anthropic_adapter import AnthropicModel
from orchestrator.models.base import ChatParams, Message, ModelAdapter
from orchestrator.models.factory import open_model
from orchestrator.models.ledger import MeteredModel, UsageLedger, usage_scope
from orchestrator.models.openai_adapter import OpenAIModel
from orchestrator.models.pricing import PriceTable
from orchestrator.secrets import RedactingFilter
from tests.support.model_server import ANTHROPIC_PATH, OPENAI_PATH, ModelServer

pytestmark = [
    pytest.mark.integration,
    # The SDK warns that this model retires in 2026; the name is only a label here.
    pytest.mark.filterwarnings("ignore:The model 'claude-3-5-haiku:DeprecationWarning"),
]

# A key the fixture refuses; shaped like a real one, so a leak would look like one.
WRONG_KEY = "sk-ant-api03-WRONGwrongWRONG-7f3a9c1e55d0b2a4c6e8"
CONVERSATION = (
    Message(role="system", content="You sort words alphabetically."),
    Message(role="user", content="Sort: pear apple fig"),
    Message(role="user", content="Answer with the words only."),
    Message(role="assistant", content="apple fig pear"),
    Message(role="user", content="Now sort: kiwi banana"),
)
PROMPT_WORDS = 4 + 4 + 5 + 3 + 4  # the fixture counts a token per word
SECRET_ENV = ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_COMPATIBLE_API_KEY")
SETTINGS_ENV = (
    "CONFIG_FILE",
    "MODEL_PRICES_FILE",
    "OPENAI_BASE_URL",
    "ANTHROPIC_BASE_URL",
    "MODEL_MAX_RETRIES",
    "MODEL_TIMEOUT_S",
)
LOGGERS = ("anthropic", "openai", "httpx", "httpx2", "httpcore", "httpcore2", "orchestrator")

# anthropic 2.x dropped `temperature` and `top_p` from messages.create(); the adapter sends
# them only to an SDK that still takes them.
SDK_SAMPLES = "temperature" in inspect.signature(AsyncMessages.create).parameters


@dataclass(frozen=True)
class Remote:
    """One provider as these tests use it."""

    name: str
    model: str
    path: str
    key_variable: str
    price: tuple[float, float]  # dollars per million input, output tokens (published list)

    @property
    def spec(self) -> str:
        return f"{self.name}:{self.model}"

    def base_url(self, server: ModelServer) -> str:
        return server.url if self.name == "anthropic" else server.openai_url

    def adapter(
        self,
        server: ModelServer,
        *,
        api_key: str | None = None,
        timeout_s: float = 5.0,
        max_retries: int = 0,
    ) -> ModelAdapter:
        kind = AnthropicModel if self.name == "anthropic" else OpenAIModel
        return kind(
            self.spec,
            self.model,
            api_key=server.api_key if api_key is None else api_key,
            base_url=self.base_url(server),
            timeout_s=timeout_s,
            max_retries=max_retries,
            prices=PriceTable(),
        )

    def settings(self, server: ModelServer, **extra: Any) -> Settings:
        fields: dict[str, Any] = {
            f"{self.name}_base_url": self.base_url(server),
            f"{self.name}_api_key": server.api_key,
        }
        return Settings(**fields, **extra)

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.price[0] + completion_tokens * self.price[1]) / 1e6


ANTHROPIC = Remote(
    "anthropic", "claude-3-5-haiku-20241022", ANTHROPIC_PATH, "ANTHROPIC_API_KEY", (0.80, 4.00)
)
OPENAI = Remote("openai", "gpt-4o-mini", OPENAI_PATH, "OPENAI_API_KEY", (0.15, 0.60))


@pytest.fixture(
    params=[
        pytest.param(ANTHROPIC, id="anthropic"),
        pytest.param(OPENAI, id="openai"),
    ]
)
def provider(request: pytest.FixtureRequest) -> Remote:
    remote: Remote = request.param
    return remote


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No API key, base URL or config from this machine; an empty secrets folder (returned)."""
    for name in SECRET_ENV:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(f"LATM_{name}", raising=False)
    for name in SETTINGS_ENV:
        monkeypatch.delenv(f"LATM_{name}", raising=False)
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    monkeypatch.setenv("LATM_SECRETS_DIR", str(secrets))
    monkeypatch.chdir(tmp_path)  # no .env file
    return secrets


@pytest.fixture
def debug_log() -> Iterator[io.StringIO]:
    """Everything the SDKs, HTTP stacks and orchestrator log at DEBUG, through the redactor."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setLevel(logging.DEBUG)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    levels = {name: logging.getLogger(name).level for name in LOGGERS}
    root.addHandler(handler)
    for name in LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


async def ask(model: ModelAdapter, params: ChatParams | None = None) -> None:
    """One completion whose result the test does not need (it expects an error)."""
    async with model:
        await model.complete(CONVERSATION, params)


# --- completions ---


async def test_completion_counts_and_prices(provider: Remote, model_server: ModelServer) -> None:
    model_server.reply = "banana kiwi"
    async with provider.adapter(model_server) as model:
        done = await model.complete(CONVERSATION)
    assert done.text == "banana kiwi"
    assert done.model == provider.model
    assert done.finish_reason == "stop"
    assert done.usage.prompt_tokens == PROMPT_WORDS
    assert done.usage.completion_tokens == 2
    assert done.priced
    assert done.cost_usd == pytest.approx(provider.cost(PROMPT_WORDS, 2), rel=1e-9)
    assert done.cost_usd > 0
    assert model_server.attempts(provider.path) == 1


async def test_anthropic_request_shape(model_server: ModelServer) -> None:
    params = ChatParams(max_tokens=100, temperature=1.5, top_p=0.9, stop=("END", "\n\n"))
    async with ANTHROPIC.adapter(model_server) as model:
        await model.complete(CONVERSATION, params)
        await model.complete([Message(role="user", content="hello")])
    first, second = model_server.requests
    assert first.path == ANTHROPIC_PATH
    sent = {first.headers.get("x-api-key"), first.headers.get("authorization")}
    assert sent & {model_server.api_key, f"Bearer {model_server.api_key}"}  # SDK-version dependent
    assert first.headers["anthropic-version"]
    assert first.body["model"] == ANTHROPIC.model
    assert first.body["system"] == "You sort words alphabetically."
    assert first.body["messages"] == [
        {"role": "user", "content": "Sort: pear apple fig\n\nAnswer with the words only."},
        {"role": "assistant", "content": "apple fig pear"},
        {"role": "user", "content": "Now sort: kiwi banana"},
    ]
    assert first.body["max_tokens"] == 100
    if SDK_SAMPLES:
        assert first.body["temperature"] == 1.0  # the Messages API's range is 0..1
        assert first.body["top_p"] == 0.9
    else:
        assert "temperature" not in first.body
        assert "top_p" not in first.body
    assert first.body["stop_sequences"] == ["END", "\n\n"]
    assert second.body["messages"] == [{"role": "user", "content": "hello"}]
    assert second.body["max_tokens"] == ChatParams().max_tokens
    for absent in ("system", "stop_sequences", "top_p"):
        assert absent not in second.body


async def test_openai_request_shape(model_server: ModelServer) -> None:
    params = ChatParams(max_tokens=100, temperature=1.5, stop=("END",), seed=7)
    async with OPENAI.adapter(model_server) as model:
        await model.complete(CONVERSATION, params)
        await model.complete([Message(role="user", content="hello")])
    first, second = model_server.requests
    assert first.path == OPENAI_PATH
    assert first.headers["authorization"] == f"Bearer {model_server.api_key}"
    assert first.body["model"] == OPENAI.model
    assert first.body["messages"] == [{"role": m.role, "content": m.content} for m in CONVERSATION]
    assert first.body["max_tokens"] == 100
    assert first.body["temperature"] == 1.5
    assert first.body["stop"] == ["END"]
    assert first.body["seed"] == 7
    for absent in ("stop", "seed", "top_p"):
        assert absent not in second.body


@pytest.mark.parametrize(
    ("params", "text", "finish"),
    [
        (ChatParams(max_tokens=2), "one two", "length"),
        (ChatParams(stop=("three",)), "one two ", "stop"),
        (ChatParams(), "one two three four", "stop"),
    ],
    ids=["max-tokens", "stop-sequence", "end-turn"],
)
async def test_finish_reason(
    provider: Remote, model_server: ModelServer, params: ChatParams, text: str, finish: str
) -> None:
    model_server.reply = "one two three four"
    async with provider.adapter(model_server) as model:
        done = await model.complete(CONVERSATION, params)
    assert (done.text, done.finish_reason) == (text, finish)
    assert done.usage.completion_tokens == len(text.split())
    answered = model_server.requests[0].response  # what the fixture really said
    if provider is ANTHROPIC:
        expected = {"length": "max_tokens", "stop": "stop_sequence" if params.stop else "end_turn"}
        assert answered["stop_reason"] == expected[finish]
    else:
        assert answered["choices"][0]["finish_reason"] == finish


# --- retries and failures ---


async def test_rate_limit_retried_then_served(provider: Remote, model_server: ModelServer) -> None:
    model_server.fail(429, times=2, retry_after=0.01)
    async with provider.adapter(model_server, max_retries=2) as model:
        done = await model.complete(CONVERSATION)
    assert done.text == model_server.reply
    assert model_server.attempts(provider.path) == 3
    assert [r.status for r in model_server.requests] == [429, 429, 200]


async def test_rate_limit_outlasting_retries(provider: Remote, model_server: ModelServer) -> None:
    model_server.fail(429, times=10, retry_after=0.01)
    with pytest.raises(ModelRateLimited, match="HTTP 429, 2 attempts"):
        await ask(provider.adapter(model_server, max_retries=1))
    assert model_server.attempts(provider.path) == 2


@pytest.mark.parametrize("status", [500, 503, 529])
async def test_server_error_retried_then_reported(
    provider: Remote, model_server: ModelServer, status: int
) -> None:
    model_server.fail(status, times=10, retry_after=0.01)
    with pytest.raises(ModelError) as caught:
        await ask(provider.adapter(model_server, max_retries=2))
    assert type(caught.value) is ModelError  # not ModelRejected, not ModelTimeout
    assert f"HTTP {status}" in str(caught.value)
    assert "3 attempts" in str(caught.value)
    assert model_server.attempts(provider.path) == 3


async def test_server_error_then_recovery(provider: Remote, model_server: ModelServer) -> None:
    model_server.fail(529, retry_after=0.01)
    async with provider.adapter(model_server, max_retries=1) as model:
        done = await model.complete(CONVERSATION)
    assert done.text == model_server.reply
    assert model_server.attempts(provider.path) == 2


async def test_bad_request_rejected_without_retry(
    provider: Remote, model_server: ModelServer
) -> None:
    model_server.fail(400, times=10, message="prompt is too long: 250000 tokens > 200000 maximum")
    with pytest.raises(ModelRejected) as caught:
        await ask(provider.adapter(model_server, max_retries=2))
    assert "HTTP 400" in str(caught.value)
    assert "prompt is too long" in str(caught.value)
    assert model_server.attempts(provider.path) == 1


async def test_wrong_key_is_never_quoted(
    provider: Remote, model_server: ModelServer, debug_log: io.StringIO
) -> None:
    model = provider.adapter(model_server, api_key=WRONG_KEY, max_retries=2)
    with pytest.raises(ModelAuthError) as caught:
        await ask(model)
    error = caught.value
    logging.getLogger("orchestrator.models").error("completion failed", exc_info=error)

    (request,) = model_server.requests  # a refused key is not retried
    assert request.status == 401
    assert WRONG_KEY in json.dumps(request.response)  # the fixture did quote it back
    assert "HTTP 401" in str(error)
    # No SDK exception (whose text quotes the key) rides along for an error reporter to find.
    assert error.__cause__ is None
    assert error.__context__ is None
    log = debug_log.getvalue()
    assert provider.path in log, "the DEBUG logs were not captured"
    tail = WRONG_KEY[-12:]  # a leak may be partial
    printed = "".join(traceback.format_exception(error))
    for text in (str(error), repr(error), printed, log):
        assert tail not in text


async def test_timeout(provider: Remote, model_server: ModelServer) -> None:
    model_server.hang(3.0)
    started = time.perf_counter()
    with pytest.raises(ModelTimeout, match=r"within 0\.5 s \(1 attempt\)"):
        await ask(provider.adapter(model_server, timeout_s=0.5, max_retries=0))
    assert time.perf_counter() - started < 2.0
    assert model_server.attempts(provider.path) == 1


async def test_connection_dropped_mid_request(provider: Remote, model_server: ModelServer) -> None:
    model_server.drop(times=10)
    started = time.perf_counter()
    with pytest.raises(ModelError) as caught:
        await ask(provider.adapter(model_server, max_retries=1))
    assert time.perf_counter() - started < 3.0
    assert type(caught.value) is ModelError
    assert "lost the connection" in str(caught.value)
    assert model_server.attempts(provider.path) == 2  # dropped connections are retried
    assert [r.status for r in model_server.requests] == [None, None]


# --- keys, the factory and the ledger ---


@pytest.mark.parametrize("key", [None, ""])
def test_anthropic_adapter_needs_a_key(key: str | None) -> None:
    with pytest.raises(ModelAuthError, match="ANTHROPIC_API_KEY"):
        AnthropicModel(ANTHROPIC.spec, ANTHROPIC.model, api_key=key)


@pytest.mark.usefixtures("clean_env")
@pytest.mark.parametrize("spec", ["openai:gpt-4o", "anthropic:claude-sonnet-4-5"])
def test_factory_without_key(spec: str) -> None:
    variable = "OPENAI_API_KEY" if spec.startswith("openai") else "ANTHROPIC_API_KEY"
    with pytest.raises(ModelAuthError, match=variable):
        open_model(spec)


async def test_factory_opens_a_working_adapter(
    provider: Remote, model_server: ModelServer, clean_env: Path
) -> None:
    model = open_model(provider.spec, provider.settings(model_server, model_max_retries=0))
    assert isinstance(model, AnthropicModel if provider is ANTHROPIC else OpenAIModel)
    async with model:
        done = await model.complete(CONVERSATION)
        assert done.text == model_server.reply
        assert done.priced
        assert done.cost_usd == pytest.approx(provider.cost(PROMPT_WORDS, 3), rel=1e-9)
        model_server.fail(500, times=10, retry_after=0.01)
        with pytest.raises(ModelError, match="HTTP 500"):
            await model.complete(CONVERSATION)
    assert model_server.attempts(provider.path) == 2  # model_max_retries=0: one try


async def test_factory_reads_key_from_secrets_folder(
    provider: Remote, model_server: ModelServer, clean_env: Path
) -> None:
    (clean_env / provider.key_variable).write_text(model_server.api_key + "\n")
    base_url: dict[str, Any] = {f"{provider.name}_base_url": provider.base_url(model_server)}
    async with open_model(provider.spec, Settings(**base_url)) as model:
        done = await model.complete(CONVERSATION)
    assert done.text == model_server.reply


async def test_ledger_bills_scope(
    provider: Remote, model_server: ModelServer, clean_env: Path
) -> None:
    ledger = UsageLedger()
    settings = provider.settings(model_server, model_max_retries=0)
    async with open_model(provider.spec, settings, ledger=ledger) as model:
        assert isinstance(model, MeteredModel)
        with usage_scope(tenant="acme", tool="sort_words", request_id="r1"):
            for _ in range(2):
                await model.complete(CONVERSATION)
        with usage_scope(tenant="globex", request_id="r2"):
            await model.complete(CONVERSATION)
    reply = len(model_server.reply.split())
    for totals in (
        ledger.for_tenant("acme"),
        ledger.for_tool("acme", "sort_words"),
        ledger.for_request("r1"),
    ):
        assert (totals.calls, totals.prompt_tokens, totals.completion_tokens) == (
            2,
            2 * PROMPT_WORDS,
            2 * reply,
        )
        assert totals.cost_usd == pytest.approx(2 * provider.cost(PROMPT_WORDS, reply), rel=1e-9)
        assert totals.unpriced_calls == 0
    assert ledger.for_tenant("globex").calls == 1
    assert ledger.for_request("r2").prompt_tokens == PROMPT_WORDS
    assert ledger.for_tool("globex", "sort_words").calls == 0
