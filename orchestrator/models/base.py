"""What every model adapter takes and returns, and the small interface they share.

Adapters live on the trusted side of the platform: they talk to model endpoints and hand back
text. Nothing here executes what a model writes.
"""

from __future__ import annotations

import abc
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.errors import InvalidRequest

Role = Literal["system", "user", "assistant"]


class Message(BaseModel):
    """One chat message."""

    model_config = ConfigDict(frozen=True)

    role: Role = Field(description="system, user or assistant")
    content: str = Field(description="the message text")


class ChatParams(BaseModel):
    """Sampling parameters; unset ones take the endpoint's defaults."""

    model_config = ConfigDict(frozen=True)

    max_tokens: int = Field(default=512, ge=1, le=65536, description="completion token cap")
    temperature: float = Field(default=0.0, ge=0.0, le=2.0, description="sampling temperature")
    top_p: float | None = Field(default=None, gt=0.0, le=1.0, description="nucleus sampling")
    stop: tuple[str, ...] = Field(default=(), max_length=4, description="stop sequences")
    seed: int | None = Field(default=None, description="sampling seed, where supported")


@dataclass(frozen=True)
class TokenUsage:
    """Tokens of one completion (or a sum of several) and what they cost."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_dict(self) -> dict[str, int | float]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost_usd": round(self.cost_usd, 8),
        }

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.cost_usd + other.cost_usd,
        )


@dataclass(frozen=True)
class Completion:
    """A model's answer with its accounting."""

    text: str
    model: str
    usage: TokenUsage
    latency_s: float
    finish_reason: str = "stop"
    priced: bool = True  # False when no price is known for the model: cost_usd is then 0

    @property
    def cost_usd(self) -> float:
        return self.usage.cost_usd

    def to_dict(self) -> dict[str, object]:
        return {
            "text": self.text,
            "model": self.model,
            "prompt_tokens": self.usage.prompt_tokens,
            "completion_tokens": self.usage.completion_tokens,
            "cost_usd": round(self.usage.cost_usd, 8),
            "priced": self.priced,
            "latency_s": round(self.latency_s, 4),
            "finish_reason": self.finish_reason,
        }


class ModelAdapter(abc.ABC):
    """An async chat-completion endpoint.

    Subclasses fill :meth:`_complete`; the base times the call and prices it. Use as an async
    context manager, or call :meth:`aclose`, to release connections and child processes.
    """

    # Whether a temperature above 0 gives a different reply each time (a scripted model
    # replays its script in order instead, so sampling it would only consume replies).
    samples = True

    def __init__(self, spec: str, *, prices: PriceLookup | None = None) -> None:
        self.spec = spec
        self.prices = prices

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec!r})"

    async def complete(
        self, messages: list[Message] | tuple[Message, ...], params: ChatParams | None = None
    ) -> Completion:
        """Send ``messages`` and return the model's reply with tokens, cost and latency."""
        if not messages:
            raise InvalidRequest("a completion needs at least one message")
        started = time.perf_counter()
        raw = await self._complete(list(messages), params or ChatParams())
        latency = time.perf_counter() - started
        price = self.prices.price_for(self.spec, raw.model) if self.prices else None
        usage = TokenUsage(raw.prompt_tokens, raw.completion_tokens)
        if price is not None:
            usage = TokenUsage(usage.prompt_tokens, usage.completion_tokens, price.cost(usage))
        return Completion(
            text=raw.text,
            model=raw.model,
            usage=usage,
            latency_s=latency,
            finish_reason=raw.finish_reason,
            priced=price is not None,
        )

    @abc.abstractmethod
    async def _complete(self, messages: list[Message], params: ChatParams) -> RawCompletion:
        """Ask the endpoint; map its failures to :class:`~orchestrator.errors.ModelError`."""

    async def aclose(self) -> None:  # noqa: B027 - adapters without resources need nothing
        """Release connections and processes."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


@dataclass(frozen=True)
class RawCompletion:
    """What an endpoint said, before pricing."""

    text: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str = "stop"


class PriceLookup(abc.ABC):
    """Anything that can price a model (see :class:`orchestrator.models.pricing.PriceTable`)."""

    @abc.abstractmethod
    def price_for(self, spec: str, model: str) -> Price | None:
        """The price of ``model`` reached through ``spec``, or None when unknown."""


@dataclass(frozen=True)
class Price:
    """Dollars per million input and output tokens."""

    input_per_mtok: float
    output_per_mtok: float

    def cost(self, usage: TokenUsage) -> float:
        return (
            usage.prompt_tokens * self.input_per_mtok
            + usage.completion_tokens * self.output_per_mtok
        ) / 1_000_000
