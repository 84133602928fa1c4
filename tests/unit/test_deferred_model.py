"""A server's model that is not in the cache: deferred with one warning, refused with the
fetch command while missing, and opened by the first use after it is fetched."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import grpc
import pytest

from orchestrator.cli._runtime import role_models, stronger_model
from orchestrator.config import Settings
from orchestrator.errors import InvalidRequest, ModelNotAvailable
from orchestrator.models import Message, MeteredModel, UsageLedger, catalog
from orchestrator.models.deferred import DeferredModel, open_when_ready, require_ready

QWEN = "qwen2.5-coder-0.5b"
SMOL = "smollm2-135m"
FETCH = f"latm models fetch {QWEN}"


def settings(models_dir: Path) -> Settings:
    return Settings(models_dir=models_dir)


def fake_fetch(name: str, models_dir: Path) -> None:
    """What ``latm models fetch`` leaves for the cache check: a file of the pinned size
    (sparse: its bytes are never read here) and the manifest written after verification."""
    model = catalog.CATALOG[name]
    with (models_dir / model.filename).open("wb") as handle:
        handle.truncate(model.size)
    manifest = models_dir / f"{model.filename}.json"
    manifest.write_text(json.dumps({"name": name, "sha256": model.sha256, "size": model.size}))


async def test_a_missing_model_is_deferred_with_one_warning_naming_the_fetch(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="orchestrator.models.deferred"):
        user, maker = role_models(settings(tmp_path), f"local:{QWEN}", f"local:{QWEN}", defer=True)
    assert isinstance(user, DeferredModel)
    assert maker is user  # one spec, one adapter: one warning
    [record] = caplog.records
    assert FETCH in record.getMessage()
    assert "ExecuteTool" in record.getMessage()
    assert not user.available

    with pytest.raises(ModelNotAvailable) as refused:
        await user.complete([Message(role="user", content="2+3?")])
    assert refused.value.code is grpc.StatusCode.FAILED_PRECONDITION
    assert FETCH in refused.value.public_message
    assert str(tmp_path) not in refused.value.public_message  # the cache path stays in the log
    with pytest.raises(ModelNotAvailable, match=FETCH):
        require_ready(MeteredModel(user, UsageLedger()))
    await user.aclose()


async def test_the_stronger_user_shares_an_adapter_with_its_spec_and_else_is_deferred(
    tmp_path: Path,
) -> None:
    """LATM_USER_STRONGER_MODEL: unset, none (the engine hands on to the maker); the user's
    or the maker's spec, their adapter; another, its own (deferred in a server when missing)."""
    script = tmp_path / "user.json"
    script.write_text("[]")
    user, maker = role_models(settings(tmp_path), f"scripted:{script}", f"local:{QWEN}", defer=True)
    assert stronger_model(settings(tmp_path), user, maker) is None
    shared = Settings(models_dir=tmp_path, user_stronger_model=f"local:{QWEN}")
    assert stronger_model(shared, user, maker) is maker
    own = Settings(models_dir=tmp_path, user_stronger_model=f"local:{SMOL}")
    stronger = stronger_model(own, user, maker, defer=True)
    assert isinstance(stronger, DeferredModel)
    assert stronger.spec == f"local:{SMOL}"
    with pytest.raises(ValueError, match="user_stronger_model"):
        Settings(user_stronger_model="no-such-provider:x")
    assert maker is not None
    for model in (user, maker, stronger):
        await model.aclose()


def test_commands_other_than_serve_still_refuse_a_missing_model(tmp_path: Path) -> None:
    with pytest.raises(ModelNotAvailable, match=FETCH):
        role_models(settings(tmp_path), f"local:{QWEN}", None)


def test_what_no_fetch_cures_is_refused_at_once(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest, match="unknown local model"):
        open_when_ready("local:no-such-model", settings(tmp_path))
    script = tmp_path / "user.json"
    script.write_text("[]")
    ready = open_when_ready(f"scripted:{script}", settings(tmp_path))
    assert not isinstance(ready, DeferredModel)
    require_ready(ready, None)


async def test_a_model_fetched_after_the_start_is_opened_by_the_next_use(tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp", reason="a local model's server needs llama-cpp-python")
    from orchestrator.models.local import LocalModel

    model = open_when_ready(f"local:{SMOL}", settings(tmp_path))
    assert isinstance(model, DeferredModel)
    assert not model.available
    fake_fetch(SMOL, tmp_path)
    assert model.available
    opened = model.opened()
    assert isinstance(opened, LocalModel)
    assert opened.server.model_path == tmp_path / catalog.CATALOG[SMOL].filename
    assert opened.server.process is None  # opening starts nothing: the first completion does
    require_ready(model)
    await model.aclose()
