"""Spec strings, prices and the usage ledger."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.errors import InvalidRequest
from orchestrator.models import (
    Completion,
    ModelSpec,
    Price,
    PriceTable,
    Provider,
    TokenUsage,
    UsageLedger,
    current_scope,
    usage_scope,
)


@pytest.mark.parametrize(
    ("spec", "provider", "target", "base_url"),
    [
        ("openai:gpt-4o", Provider.OPENAI, "gpt-4o", None),
        ("anthropic:claude-3-5-haiku-latest", Provider.ANTHROPIC, "claude-3-5-haiku-latest", None),
        (
            "openai-compatible:http://127.0.0.1:8080/v1#qwen",
            Provider.OPENAI_COMPATIBLE,
            "qwen",
            "http://127.0.0.1:8080/v1",
        ),
        ("local:qwen2.5-coder-0.5b", Provider.LOCAL, "qwen2.5-coder-0.5b", None),
        ("local:/models/a:b.gguf", Provider.LOCAL, "/models/a:b.gguf", None),
        ("scripted:tests/script.json", Provider.SCRIPTED, "tests/script.json", None),
    ],
)
def test_specs_parse(spec: str, provider: Provider, target: str, base_url: str | None) -> None:
    parsed = ModelSpec.parse(spec)
    assert (parsed.provider, parsed.target, parsed.base_url) == (provider, target, base_url)
    assert str(parsed) == spec


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("gpt-4o", "unknown model provider"),
        ("huggingface:foo", "unknown model provider 'huggingface'"),
        ("openai:", "names no model"),
        ("openai-compatible:http://host/v1", "needs a base URL and a model"),
        ("openai-compatible:ftp://host/v1#m", r"not an http\(s\) URL"),
        ("openai-compatible:https://user:sk-secret@host/v1#m", "no credentials"),
    ],
)
def test_bad_specs_are_refused_clearly(spec: str, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message) as caught:
        ModelSpec.parse(spec)
    assert "sk-secret" not in str(caught.value)


def test_longest_prefix_wins_and_local_models_are_free() -> None:
    table = PriceTable()
    assert table.price_for("openai:gpt-4o-mini-2024-07-18", "x") == Price(0.15, 0.60)
    assert table.price_for("openai:gpt-4o-2024-08-06", "x") == Price(2.50, 10.00)
    assert table.price_for("anthropic:claude-3-5-haiku-latest", "x") == Price(0.80, 4.00)
    assert table.price_for("local:qwen2.5-coder-0.5b", "x") == Price(0.0, 0.0)
    assert table.price_for("scripted:x.json", "x") == Price(0.0, 0.0)
    assert table.price_for("openai:some-new-model", "some-new-model") is None
    # The model the endpoint reports counts too (an alias that resolves to a priced model).
    assert table.price_for("openai:my-alias", "gpt-4o-mini") == Price(0.15, 0.60)


def test_price_cost_per_million() -> None:
    usage = TokenUsage(prompt_tokens=1_000, completion_tokens=500)
    assert Price(2.50, 10.00).cost(usage) == pytest.approx(0.0025 + 0.005)


def test_price_file_overrides_and_extends(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text(
        json.dumps(
            {
                "openai:gpt-4o": {"input": 1.0, "output": 2.0},
                "openai-compatible:llama-3.1-70b": {"input": 0.6, "output": 0.6},
            }
        )
    )
    table = PriceTable.load(path)
    assert table.price_for("openai:gpt-4o", "gpt-4o") == Price(1.0, 2.0)
    assert table.price_for("openai:gpt-4o-mini", "gpt-4o-mini") == Price(0.15, 0.60)
    spec = "openai-compatible:http://127.0.0.1:8000/v1#llama-3.1-70b-instruct"
    assert table.price_for(spec, "llama-3.1-70b-instruct") == Price(0.6, 0.6)


def test_price_file_in_toml(tmp_path: Path) -> None:
    path = tmp_path / "prices.toml"
    path.write_text('["anthropic:claude-x"]\ninput = 3\noutput = 15\n')
    assert PriceTable.load(path).price_for("anthropic:claude-x-1", "m") == Price(3.0, 15.0)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "cannot read the price file"),
        ("[1, 2]", "must map"),
        ('{"gpt-4o": {"input": 1, "output": 1}}', "is not 'provider:model'"),
        ('{"openai:gpt-4o": {"input": -1, "output": 1}}', "non-negative"),
        ('{"openai:gpt-4o": {"input": "1", "output": 1}}', "non-negative"),
    ],
)
def test_malformed_price_files_are_refused(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "prices.json"
    path.write_text(content)
    with pytest.raises(InvalidRequest, match=message):
        PriceTable.load(path)


def _completion(prompt: int, completion: int, cost: float, priced: bool = True) -> Completion:
    return Completion(
        text="x",
        model="m",
        usage=TokenUsage(prompt, completion, cost),
        latency_s=0.1,
        priced=priced,
    )


def test_ledger_sums_per_request_tool_and_tenant() -> None:
    ledger = UsageLedger()
    with usage_scope(tenant="acme", request_id="r1"):
        ledger.record(_completion(10, 5, 0.01))
        with usage_scope(tool="sort_words"):
            assert current_scope().request_id == "r1"
            ledger.record(_completion(20, 10, 0.02))
    with usage_scope(tenant="globex", tool="sort_words", request_id="r2"):
        ledger.record(_completion(1, 1, 0.0, priced=False))

    acme = ledger.for_tenant("acme")
    assert (acme.calls, acme.prompt_tokens, acme.completion_tokens) == (2, 30, 15)
    assert acme.cost_usd == pytest.approx(0.03)
    assert ledger.for_tool("acme", "sort_words").calls == 1
    assert ledger.for_tool("globex", "sort_words").unpriced_calls == 1
    assert ledger.for_request("r1").calls == 2
    assert ledger.for_request("unknown").calls == 0
    tenants = ledger.snapshot()["tenants"]
    assert isinstance(tenants, dict)
    assert set(tenants) == {"acme", "globex"}
    assert current_scope().tenant == "default"


def test_ledger_keeps_only_the_latest_requests() -> None:
    ledger = UsageLedger(max_requests=2)
    for request in ("a", "b", "c"):
        with usage_scope(request_id=request):
            ledger.record(_completion(1, 1, 0.0))
    assert ledger.for_request("a").calls == 0
    assert ledger.for_request("c").calls == 1
    assert ledger.for_tenant("default").calls == 3
