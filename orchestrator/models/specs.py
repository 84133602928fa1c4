"""Model spec strings: ``PROVIDER:TARGET``, parsed into a frozen value."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from urllib.parse import urlsplit

from orchestrator.errors import InvalidRequest

SPEC_FORMS = (
    "openai:MODEL, anthropic:MODEL, openai-compatible:BASE_URL#MODEL, "
    "local:NAME_OR_GGUF_PATH or scripted:FILE"
)


class Provider(enum.StrEnum):
    OPENAI = "openai"
    ANTHROPIC = "anthropic"
    OPENAI_COMPATIBLE = "openai-compatible"
    LOCAL = "local"
    SCRIPTED = "scripted"


@dataclass(frozen=True)
class ModelSpec:
    """A parsed spec. ``target`` is the model name, GGUF name or path, or script file."""

    provider: Provider
    target: str
    base_url: str | None = None

    @classmethod
    def parse(cls, spec: str) -> ModelSpec:
        provider_name, sep, rest = spec.strip().partition(":")
        try:
            provider = Provider(provider_name.lower())
        except ValueError:
            raise InvalidRequest(
                f"unknown model provider {provider_name!r} in {spec!r}; use {SPEC_FORMS}"
            ) from None
        if not sep or not rest:
            raise InvalidRequest(f"model spec {spec!r} names no model; use {SPEC_FORMS}")
        if provider is not Provider.OPENAI_COMPATIBLE:
            return cls(provider, rest)
        base_url, hash_sign, model = rest.rpartition("#")
        if not hash_sign or not base_url or not model:
            raise InvalidRequest(
                f"model spec {spec!r} needs a base URL and a model: "
                "openai-compatible:http://HOST:PORT/v1#MODEL"
            )
        url = urlsplit(base_url)
        if url.scheme not in ("http", "https") or not url.netloc:
            raise InvalidRequest(f"base URL {base_url!r} in {spec!r} is not an http(s) URL")
        if url.username or url.password:
            # Credentials in a URL end up in logs and error messages; keys go in the env.
            raise InvalidRequest(
                "put no credentials in a model spec's URL; set "
                "LATM_OPENAI_COMPATIBLE_API_KEY instead"
            )
        return cls(provider, model, base_url)

    def __str__(self) -> str:
        if self.base_url:
            return f"{self.provider}:{self.base_url}#{self.target}"
        return f"{self.provider}:{self.target}"
