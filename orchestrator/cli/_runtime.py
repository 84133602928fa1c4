"""What the engine commands share: building an engine from settings and flags."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator

from orchestrator.config import Settings
from orchestrator.latm.engine import Engine
from orchestrator.models import ModelAdapter, open_model
from orchestrator.registry import ToolRegistry
from orchestrator.sandboxes import create_backend

DEFAULT_TENANT = "default"


def add_common(parser: argparse.ArgumentParser, *, maker: bool = False) -> None:
    """Flags every engine command takes."""
    parser.add_argument("--tenant", default=DEFAULT_TENANT, help="tenant namespace")
    parser.add_argument(
        "--user", default=None, metavar="SPEC", help="user model spec (default LATM_USER_MODEL)"
    )
    if maker:
        parser.add_argument(
            "--maker",
            default=None,
            metavar="SPEC",
            help="maker model spec (default LATM_MAKER_MODEL)",
        )
        parser.add_argument(
            "--attempts", type=int, default=3, help="attempts per stage (propose, verify)"
        )


def open_registry(settings: Settings) -> ToolRegistry:
    url = settings.database_url.get_secret_value() if settings.database_url else None
    return ToolRegistry.open(url)


@contextlib.asynccontextmanager
async def open_engine(args: argparse.Namespace, *, maker: bool = False) -> AsyncIterator[Engine]:
    """An engine for one command; the same spec in two roles shares one adapter (one local
    model server)."""
    settings = Settings()
    models: dict[str, ModelAdapter] = {}

    def model(spec: str) -> ModelAdapter:
        if spec not in models:
            models[spec] = open_model(spec, settings)
        return models[spec]

    user = model(getattr(args, "user", None) or settings.user_model)
    maker_model = model(args.maker or settings.maker_model) if maker else None
    backend = create_backend(settings.backend, settings)
    registry = open_registry(settings)
    engine = Engine(
        backend=backend,
        registry=registry,
        user=user,
        maker=maker_model,
        max_attempts=getattr(args, "attempts", 3),
    )
    try:
        yield engine
    finally:
        await engine.aclose()
        await backend.close()
        registry.close()
