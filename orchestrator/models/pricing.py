"""Dollars per million tokens, by provider and model name prefix.

The defaults are providers' published list prices for common models; they drift, so a deployment
overrides or extends them with a JSON or TOML file (``LATM_MODEL_PRICES_FILE``)::

    {"openai:gpt-4o": {"input": 2.5, "output": 10.0},
     "openai-compatible:llama-3.1-70b": {"input": 0.6, "output": 0.6}}

Keys are ``PROVIDER:MODEL_PREFIX``; the longest matching prefix wins, so ``gpt-4o-mini-2024-07-18``
is priced as ``gpt-4o-mini``, not ``gpt-4o``. Local and scripted models cost nothing.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from pathlib import Path

from orchestrator.errors import InvalidRequest
from orchestrator.models.base import Price, PriceLookup
from orchestrator.models.specs import ModelSpec, Provider

# (input, output) US dollars per million tokens.
DEFAULT_PRICES: dict[str, tuple[float, float]] = {
    "openai:gpt-5-nano": (0.05, 0.40),
    "openai:gpt-5-mini": (0.25, 2.00),
    "openai:gpt-5": (1.25, 10.00),
    "openai:gpt-4.1-nano": (0.10, 0.40),
    "openai:gpt-4.1-mini": (0.40, 1.60),
    "openai:gpt-4.1": (2.00, 8.00),
    "openai:gpt-4o-mini": (0.15, 0.60),
    "openai:gpt-4o": (2.50, 10.00),
    "openai:gpt-4-turbo": (10.00, 30.00),
    "openai:gpt-4": (30.00, 60.00),
    "openai:gpt-3.5-turbo": (0.50, 1.50),
    "openai:o4-mini": (1.10, 4.40),
    "openai:o3-mini": (1.10, 4.40),
    "openai:o3": (2.00, 8.00),
    "openai:o1": (15.00, 60.00),
    "anthropic:claude-opus-4-5": (5.00, 25.00),
    "anthropic:claude-opus-4": (15.00, 75.00),
    "anthropic:claude-sonnet-4": (3.00, 15.00),
    "anthropic:claude-haiku-4": (1.00, 5.00),
    "anthropic:claude-3-7-sonnet": (3.00, 15.00),
    "anthropic:claude-3-5-sonnet": (3.00, 15.00),
    "anthropic:claude-3-5-haiku": (0.80, 4.00),
    "anthropic:claude-3-opus": (15.00, 75.00),
    "anthropic:claude-3-haiku": (0.25, 1.25),
}
FREE_PROVIDERS = frozenset({Provider.LOCAL, Provider.SCRIPTED})


class PriceTable(PriceLookup):
    """Prices by ``provider:model-prefix``; local and scripted models are free."""

    def __init__(self, prices: Mapping[str, Price] | None = None) -> None:
        self._prices = dict(prices) if prices is not None else default_prices()

    @classmethod
    def load(cls, path: Path | None = None) -> PriceTable:
        """The defaults, overridden and extended by the file at ``path`` when given."""
        prices = default_prices()
        if path is not None:
            prices.update(read_price_file(path))
        return cls(prices)

    def price_for(self, spec: str, model: str) -> Price | None:
        parsed = ModelSpec.parse(spec)
        if parsed.provider in FREE_PROVIDERS:
            return Price(0.0, 0.0)
        best: tuple[int, Price] | None = None
        for name in {parsed.target, model}:
            key = f"{parsed.provider}:{name}"
            for prefix, price in self._prices.items():
                if key.startswith(prefix) and (best is None or len(prefix) > best[0]):
                    best = (len(prefix), price)
        return best[1] if best else None

    def as_dict(self) -> dict[str, dict[str, float]]:
        return {
            key: {"input": price.input_per_mtok, "output": price.output_per_mtok}
            for key, price in sorted(self._prices.items())
        }


def default_prices() -> dict[str, Price]:
    return {key: Price(*pair) for key, pair in DEFAULT_PRICES.items()}


def read_price_file(path: Path) -> dict[str, Price]:
    """Parse a JSON or TOML price file; a malformed one is refused whole."""
    try:
        text = path.read_text(encoding="utf-8")
        raw = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except (OSError, ValueError) as exc:
        raise InvalidRequest(f"cannot read the price file {path}: {exc}") from None
    if not isinstance(raw, dict):
        raise InvalidRequest(f"price file {path} must map 'provider:model' to prices")
    prices: dict[str, Price] = {}
    for key, entry in raw.items():
        provider, _, model = key.partition(":")
        if provider not in set(Provider) or not model:
            raise InvalidRequest(f"price file {path}: {key!r} is not 'provider:model'")
        prices_ok = isinstance(entry, dict) and all(
            _is_price(entry.get(k)) for k in ("input", "output")
        )
        if not prices_ok:
            raise InvalidRequest(
                f"price file {path}: {key!r} needs non-negative 'input' and 'output' "
                "(dollars per million tokens)"
            )
        prices[key] = Price(float(entry["input"]), float(entry["output"]))
    return prices


def _is_price(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
