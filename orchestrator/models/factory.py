"""From a spec string to a ready adapter."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.errors import ModelAuthError
from orchestrator.models import catalog
from orchestrator.models.base import ModelAdapter, PriceLookup
from orchestrator.models.ledger import MeteredModel, UsageLedger
from orchestrator.models.pricing import PriceTable
from orchestrator.models.specs import ModelSpec, Provider

if TYPE_CHECKING:
    from orchestrator.config import Settings


def open_model(
    spec: str,
    settings: Settings | None = None,
    *,
    prices: PriceLookup | None = None,
    ledger: UsageLedger | None = None,
) -> ModelAdapter:
    """The adapter for ``spec``. Nothing starts yet: a local server starts on first use.

    With ``ledger``, every completion is also recorded there under the current usage scope.
    """
    if settings is None:
        from orchestrator.config import Settings

        settings = Settings()
    parsed = ModelSpec.parse(spec)
    prices = prices or PriceTable.load(settings.model_prices_file)
    adapter = _build(str(parsed), parsed, settings, prices)
    return MeteredModel(adapter, ledger) if ledger is not None else adapter


def _build(spec: str, parsed: ModelSpec, settings: Settings, prices: PriceLookup) -> ModelAdapter:
    timeout_s, max_retries = settings.model_timeout_s, settings.model_max_retries
    if parsed.provider is Provider.SCRIPTED:
        from orchestrator.models.scripted import ScriptedModel

        return ScriptedModel(spec, Path(parsed.target), prices=prices)
    if parsed.provider is Provider.LOCAL:
        from orchestrator.models.local import LocalModel, LocalModelServer

        path, alias = resolve_local(parsed.target, settings.models_dir)
        server = LocalModelServer(
            path,
            alias=alias,
            threads=settings.local_threads,
            n_ctx=settings.local_ctx,
            lookup_tokens=settings.local_lookup_tokens,
            start_timeout_s=settings.local_start_timeout_s,
        )
        return LocalModel(spec, server, prices=prices, timeout_s=timeout_s, max_retries=max_retries)
    if parsed.provider is Provider.ANTHROPIC:
        from orchestrator.models.anthropic_adapter import AnthropicModel

        key = settings.anthropic_api_key
        return AnthropicModel(
            spec,
            parsed.target,
            api_key=key.get_secret_value() if key else None,
            base_url=settings.anthropic_base_url,
            prices=prices,
            timeout_s=timeout_s,
            max_retries=max_retries,
        )
    from orchestrator.models.openai_adapter import OpenAIModel

    if parsed.provider is Provider.OPENAI:
        key = settings.openai_api_key
        if key is None:
            raise ModelAuthError.missing("openai", "OPENAI_API_KEY or LATM_OPENAI_API_KEY")
        base_url = settings.openai_base_url
    else:
        key = settings.openai_compatible_api_key  # many such servers need none
        base_url = parsed.base_url
    return OpenAIModel(
        spec,
        parsed.target,
        api_key=key.get_secret_value() if key else None,
        base_url=base_url,
        prices=prices,
        timeout_s=timeout_s,
        max_retries=max_retries,
    )


def resolve_local(target: str, models_dir: Path) -> tuple[Path, str]:
    """A catalog name (from the cache) or a path to a GGUF file; and the name to serve it as."""
    if target in catalog.CATALOG:
        return catalog.cached_path(target, models_dir), target
    if target.endswith(".gguf") or "/" in target:
        path = catalog.check_gguf(Path(target).expanduser())
        return path, path.stem
    catalog.catalog_model(target)  # raises, listing the known names
    raise AssertionError("unreachable")
