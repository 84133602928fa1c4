"""What the engine commands share: building an engine from settings and flags."""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator

from orchestrator.cli._parser import CommandParser
from orchestrator.config import Settings
from orchestrator.latm.engine import Engine
from orchestrator.latm.user import UserConfig
from orchestrator.models import ModelAdapter, open_model
from orchestrator.models.deferred import open_when_ready
from orchestrator.registry import ToolRegistry
from orchestrator.sandboxes import create_backend


def add_common(parser: CommandParser, *, maker: bool = False) -> None:
    """Flags every engine command takes."""
    parser.take_tenant()
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
            "--attempts",
            type=int,
            default=3,
            help="attempts per stage (propose, verify); a sampling maker's candidate proposes "
            "once plus LATM_MAKER_REPAIRS",
        )


def open_registry(settings: Settings) -> ToolRegistry:
    url = settings.database_url.get_secret_value() if settings.database_url else None
    return ToolRegistry.open(url)


def role_models(
    settings: Settings, user_spec: str, maker_spec: str | None, *, defer: bool = False
) -> tuple[ModelAdapter, ModelAdapter | None]:
    """The user's and maker's adapters; one spec in both roles shares one adapter (and so one
    local model server).

    With ``defer`` (a server), a local model not in the cache, or without llama-cpp-python,
    is opened once it can be instead of refused now (see :mod:`orchestrator.models.deferred`).
    """

    def opener(spec: str) -> ModelAdapter:
        return open_when_ready(spec, settings) if defer else open_model(spec, settings)

    user = opener(user_spec)
    if maker_spec is None:
        return user, None
    return user, user if maker_spec == user_spec else opener(maker_spec)


def stronger_model(
    settings: Settings, user: ModelAdapter, maker: ModelAdapter | None, *, defer: bool = False
) -> ModelAdapter | None:
    """The stronger user's adapter (``LATM_USER_STRONGER_MODEL``), sharing the user's or the
    maker's where the spec is theirs; None when unset (the engine then hands on to the
    maker model)."""
    spec = settings.user_stronger_model
    if spec is None:
        return None
    for model in (user, maker):
        if model is not None and model.spec == spec:
            return model
    return open_when_ready(spec, settings) if defer else open_model(spec, settings)


@contextlib.asynccontextmanager
async def open_engine(args: argparse.Namespace, *, maker: bool = False) -> AsyncIterator[Engine]:
    """An engine for one command, from the settings and the command's flags."""
    settings = Settings()
    user, maker_model = role_models(
        settings,
        getattr(args, "user", None) or settings.user_model,
        (args.maker or settings.maker_model) if maker else None,
    )
    backend = create_backend(settings.backend, settings)
    registry = open_registry(settings)
    engine = Engine(
        backend=backend,
        registry=registry,
        user=user,
        maker=maker_model,
        stronger=stronger_model(settings, user, maker_model),
        max_attempts=getattr(args, "attempts", 3),
        user_config=UserConfig.from_settings(settings),
    )
    try:
        yield engine
    finally:
        await engine.aclose()
        await backend.close()
        registry.close()
