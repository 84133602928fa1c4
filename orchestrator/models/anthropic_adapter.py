"""``anthropic:MODEL`` through the official ``anthropic`` SDK (the Messages API).

System messages become the request's ``system`` field; consecutive messages of one role are
joined, since the API wants user and assistant turns to alternate. ``temperature`` and
``top_p`` are sent only where the installed SDK still takes them (anthropic 2.x does not).
"""

from __future__ import annotations

import inspect
from typing import Any

from orchestrator.errors import ModelAuthError, ModelError
from orchestrator.models._sdk import SdkModel, read_reply
from orchestrator.models.base import ChatParams, Message, PriceLookup, RawCompletion

# Messages API stop reasons, in chat-completions words.
_FINISH = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length"}


class AnthropicModel(SdkModel):
    """Claude models through the Messages API."""

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
        if not api_key:
            raise ModelAuthError.missing("anthropic", "ANTHROPIC_API_KEY or LATM_ANTHROPIC_API_KEY")
        super().__init__(
            spec,
            model,
            api_key=api_key,
            base_url=base_url,
            default_host="api.anthropic.com",
            timeout_s=timeout_s,
            max_retries=max_retries,
            prices=prices,
        )
        import anthropic  # imported on first use

        self._sdk = anthropic
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key, base_url=base_url, timeout=timeout_s, max_retries=max_retries
        )
        # Newer SDKs (2.x) dropped the sampling arguments along with the models that took
        # them; send them only to an SDK that still has them.
        accepted = inspect.signature(self._client.messages.create).parameters
        self._sampling = {name for name in ("temperature", "top_p") if name in accepted}

    async def _complete(self, messages: list[Message], params: ChatParams) -> RawCompletion:
        system, turns = to_messages_api(messages)
        request: dict[str, Any] = {
            "model": self.model,
            "messages": turns,
            "max_tokens": params.max_tokens,
        }
        if "temperature" in self._sampling:
            request["temperature"] = min(params.temperature, 1.0)  # the API's range is 0..1
        if system:
            request["system"] = system
        if params.top_p is not None and "top_p" in self._sampling:
            request["top_p"] = params.top_p
        if params.stop:
            request["stop_sequences"] = list(params.stop)
        response = await self._call(
            self._client.messages.create(**request), self._sdk.AnthropicError
        )
        return read_reply(self.where, lambda: self._read(response))

    def _read(self, response: Any) -> RawCompletion:
        text = "".join(block.text for block in response.content if block.type == "text")
        if response.usage is None:
            raise ModelError(
                f"{self.where} answered without token usage",
                public="the model endpoint answered without token usage",
            )
        return RawCompletion(
            text=text,
            model=response.model or self.model,
            prompt_tokens=response.usage.input_tokens,
            completion_tokens=response.usage.output_tokens,
            finish_reason=_FINISH.get(response.stop_reason or "", response.stop_reason or "stop"),
        )


def to_messages_api(messages: list[Message]) -> tuple[str, list[dict[str, str]]]:
    """Split out the system prompt and merge same-role neighbours into alternating turns."""
    system = "\n\n".join(m.content for m in messages if m.role == "system")
    turns: list[dict[str, str]] = []
    for message in messages:
        if message.role == "system":
            continue
        if turns and turns[-1]["role"] == message.role:
            turns[-1]["content"] += "\n\n" + message.content
        else:
            turns.append({"role": message.role, "content": message.content})
    if not turns or turns[0]["role"] != "user":
        turns.insert(0, {"role": "user", "content": "(continue)"})
    return system, turns
