"""``scripted:FILE`` models, model settings and secret redaction."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pytest

from orchestrator.config import Settings
from orchestrator.errors import InvalidRequest, ModelRejected, ScriptExhausted
from orchestrator.models import ChatParams, Message, UsageLedger, open_model, usage_scope
from orchestrator.secrets import RedactingFilter, redact, register_secret

ASK = [Message(role="user", content="Sort: pear apple")]


def _script(tmp_path: Path, items: object) -> str:
    path = tmp_path / "script.json"
    path.write_text(json.dumps(items))
    return f"scripted:{path}"


async def test_responses_come_in_order_then_run_out(tmp_path: Path) -> None:
    spec = _script(tmp_path, ["first answer", {"response": "second"}])
    async with open_model(spec) as model:
        first = await model.complete(ASK)
        second = await model.complete(ASK, ChatParams(max_tokens=5))
        with pytest.raises(ScriptExhausted, match="has 2 responses; call 3"):
            await model.complete(ASK)
    assert (first.text, second.text) == ("first answer", "second")
    assert first.usage.prompt_tokens == 4  # Sort, :, pear, apple
    assert first.usage.completion_tokens == 2
    assert first.cost_usd == 0.0
    assert first.priced
    assert first.model == "scripted/script.json"


async def test_expectations_on_the_prompt(tmp_path: Path) -> None:
    spec = _script(
        tmp_path,
        [
            {"response": "ok", "expect": ["pear"], "expect_regex": r"Sort:\s+\w+"},
            {"response": "never", "expect": "banana"},
        ],
    )
    async with open_model(spec) as model:
        assert (await model.complete(ASK)).text == "ok"
        with pytest.raises(ModelRejected, match="step 2: the prompt lacks 'banana'"):
            await model.complete(ASK)


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ({"response": "x"}, "must be a JSON array"),
        ([1], "item 1: expected a string"),
        (["ok", {"response": "x", "expect": [3]}], "item 2"),
        ([{"response": "x", "typo": 1}], "item 1"),
        ([{"response": "x", "expect_regex": "("}], "bad regex"),
    ],
)
def test_malformed_scripts_are_refused(tmp_path: Path, items: object, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        open_model(_script(tmp_path, items))


def test_a_missing_script_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest, match="cannot read model script"):
        open_model(f"scripted:{tmp_path / 'absent.json'}")


async def test_an_empty_conversation_is_refused(tmp_path: Path) -> None:
    async with open_model(_script(tmp_path, ["x"])) as model:
        with pytest.raises(InvalidRequest, match="at least one message"):
            await model.complete([])


async def test_metered_completions_land_in_the_ledger(tmp_path: Path) -> None:
    ledger = UsageLedger()
    async with open_model(_script(tmp_path, ["a b", "c"]), ledger=ledger) as model:
        with usage_scope(tenant="acme", tool="sort_words", request_id="r1"):
            await model.complete(ASK)
            await model.complete(ASK)
    totals = ledger.for_request("r1")
    assert (totals.calls, totals.prompt_tokens, totals.completion_tokens) == (2, 8, 3)
    assert ledger.for_tool("acme", "sort_words") == totals


def test_api_keys_come_from_the_environment_or_secrets_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("OPENAI_API_KEY", "LATM_OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "OPENAI_API_KEY").write_text("sk-from-the-secrets-folder")
    monkeypatch.setenv("LATM_SECRETS_DIR", str(secrets))
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-from-env-123")
    settings = Settings()
    assert settings.openai_api_key is not None
    assert settings.openai_api_key.get_secret_value() == "sk-from-the-secrets-folder"
    assert settings.anthropic_api_key is not None
    assert settings.anthropic_api_key.get_secret_value() == "sk-ant-from-env-123"
    assert "sk-" not in repr(settings)
    monkeypatch.setenv("LATM_OPENAI_API_KEY", "sk-env-wins")
    assert Settings().openai_api_key.get_secret_value() == "sk-env-wins"  # type: ignore[union-attr]


def test_a_config_file_sets_options_but_never_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "latm.toml"
    config.write_text('maker_model = "openai:gpt-4o"\nmodel_timeout_s = 5\n')
    monkeypatch.setenv("LATM_CONFIG_FILE", str(config))
    settings = Settings()
    assert (settings.maker_model, settings.model_timeout_s) == ("openai:gpt-4o", 5.0)
    monkeypatch.setenv("LATM_MODEL_TIMEOUT_S", "7")
    assert Settings().model_timeout_s == 7.0  # the environment outranks the file
    config.write_text('OPENAI_API_KEY = "sk-committed-by-mistake"\n')
    with pytest.raises(InvalidRequest, match="API keys are read only from") as caught:
        Settings()
    assert "sk-committed" not in str(caught.value)


def test_a_bad_model_spec_in_settings_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LATM_USER_MODEL", "gpt4")
    with pytest.raises(ValueError, match="unknown model provider"):
        Settings()


def test_redaction_masks_registered_and_key_shaped_secrets() -> None:
    register_secret("correct-horse-battery")
    register_secret("abc")  # too short to mask safely: ignored
    text = redact("key correct-horse-battery, sk-proj-ABCDEFGH1234, Bearer eyJhbGciOi.x abc")
    assert "correct-horse" not in text
    assert "sk-proj" not in text
    assert "eyJhbGciOi" not in text
    assert text.endswith("abc")


def test_log_records_are_redacted_by_the_filter() -> None:
    register_secret("super-secret-value-42")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("latm.test.redaction")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("request with key %s", "super-secret-value-42")
        try:
            raise RuntimeError("bad key super-secret-value-42")
        except RuntimeError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    output = stream.getvalue()
    assert "request with key [redacted]" in output
    assert "RuntimeError: bad key [redacted]" in output
    assert "super-secret-value-42" not in output
