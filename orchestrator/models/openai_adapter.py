"""``openai:MODEL`` and ``openai-compatible:BASE_URL#MODEL`` through the official ``openai`` SDK.

The SDK does the retrying: it backs off exponentially (honouring ``Retry-After``) on rate
limits, server errors, timeouts and dropped connections, up to ``max_retries`` times.
"""

from __future__ import annotations

from typing import Any

from orchestrator.errors import ModelError
from orchestrator.models._sdk import SdkModel, read_reply
from orchestrator.models.base import ChatParams, Message, PriceLookup, RawCompletion
from orchestrator.models.scripted import estimate_tokens

# OpenAI-compatible servers that need no key still make the SDK send one.
NO_KEY = "no-key"


class OpenAIModel(SdkModel):
    """A chat-completions endpoint: OpenAI itself, vLLM, Ollama, LM Studio, llama.cpp."""

    def __init__(
        self,
        spec: str,
        model: str,
        *,
        api_key: str | None,
        base_url: str | None = None,
        timeout_s: float = 60.0,
        max_retries: int = 2,
        prices: PriceLookup | None = None,
    ) -> None:
        super().__init__(
            spec,
            model,
            api_key=api_key,
            base_url=base_url,
            default_host="api.openai.com",
            timeout_s=timeout_s,
            max_retries=max_retries,
            prices=prices,
        )
        import openai  # imported on first use: it takes a while and not every run needs it

        self._sdk = openai
        self._client = openai.AsyncOpenAI(
            api_key=api_key or NO_KEY,
            base_url=base_url,
            timeout=timeout_s,
            max_retries=max_retries,
        )

    async def _complete(self, messages: list[Message], params: ChatParams) -> RawCompletion:
        request: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
        }
        if params.top_p is not None:
            request["top_p"] = params.top_p
        if params.stop:
            request["stop"] = list(params.stop)
        if params.seed is not None:
            request["seed"] = params.seed
        response = await self._call(
            self._client.chat.completions.create(**request), self._sdk.OpenAIError
        )
        return read_reply(self.where, lambda: self._read(response, messages))

    def _read(self, response: Any, messages: list[Message]) -> RawCompletion:
        if not response.choices:
            raise ModelError(
                f"{self.where} answered with no choices",
                public="the model endpoint answered with no choices",
            )
        choice = response.choices[0]
        text = choice.message.content or ""
        usage = response.usage
        prompt = "\n".join(m.content for m in messages)
        return RawCompletion(
            text=text,
            model=response.model or self.model,
            prompt_tokens=usage.prompt_tokens if usage else estimate_tokens(prompt),
            completion_tokens=usage.completion_tokens if usage else estimate_tokens(text),
            finish_reason=choice.finish_reason or "stop",
        )
