"""Load time, first-token latency, generation speed and memory of the cached local models.

For each cached, verified GGUF model (``latm models list``), through the same child server the
platform uses (:class:`LocalModelServer`: llama-cpp-python's OpenAI-compatible server) and the
official ``openai`` SDK:

* load: spawn -> the server's first successful answer (``LocalModelServer.load_s``), N starts;
* first token: a short chat completion, streamed, timed to the first chunk carrying content;
  once with a prompt made unique per run (llama.cpp cannot reuse a cached prefix: the whole
  prompt is processed) and once with the same prompt repeated (its prefix is reused);
* generation: a 128-token completion, completion tokens over the time from the first content
  chunk to the last; the token count comes from ``usage.completion_tokens`` of a non-streamed
  identical request (temperature 0, so the same text), the content chunks are counted too;
* memory: VmRSS and PSS of the server process after load and again after the runs.

Prints a table and writes JSON (``bench/results/models.json``).

    .venv/bin/python bench/models.py                          # every cached model
    .venv/bin/python bench/models.py --model smollm2-135m --runs 3
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import statistics
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from openai import AsyncOpenAI, OpenAIError
from openai.types import CompletionUsage
from openai.types.chat import ChatCompletion, ChatCompletionMessageParam
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import write_report  # noqa: E402 - after the path set-up
from bench.sandbox_latency import _fmt, machine_info, percentile  # noqa: E402
from orchestrator.config import Settings  # noqa: E402
from orchestrator.errors import ModelError  # noqa: E402
from orchestrator.models.catalog import CachedModel, list_cached  # noqa: E402
from orchestrator.models.local import LocalModelServer  # noqa: E402

DEFAULT_OUT = ROOT / "bench" / "results" / "models.json"
SYSTEM = "You are a concise Python assistant. Answer with code only."
SHORT_QUESTION = "Which Python call returns the length of a list named items?"
SHORT_MAX_TOKENS = 8
LONG_QUESTION = (
    "Write a Python function slugify(title: str) -> str that lowercases the title, replaces "
    "every run of non-alphanumeric characters with a single hyphen and strips hyphens from "
    "both ends. Include type hints and a docstring."
)
LONG_MAX_TOKENS = 128
REQUEST_TIMEOUT_S = 300.0


@dataclass
class Streamed:
    """One streamed completion, timed from just before the request."""

    first_s: float  # to the first chunk carrying content
    last_s: float  # to the last chunk carrying content
    chunks: int  # chunks carrying content
    text: str


def _messages(question: str, nonce: int | None = None) -> list[ChatCompletionMessageParam]:
    # A nonce at the very start of the prompt leaves llama.cpp no cached prefix to reuse
    # beyond the chat template's first few tokens.
    system = SYSTEM if nonce is None else f"Session {nonce}. {SYSTEM}"
    return [{"role": "system", "content": system}, {"role": "user", "content": question}]


async def stream_once(
    client: AsyncOpenAI, alias: str, messages: list[ChatCompletionMessageParam], max_tokens: int
) -> Streamed:
    began = time.perf_counter()
    first = last = 0.0
    parts: list[str] = []
    stream = await client.chat.completions.create(
        model=alias, messages=messages, temperature=0, max_tokens=max_tokens, stream=True
    )
    async for chunk in stream:
        content = chunk.choices[0].delta.content if chunk.choices else None
        if content:
            last = time.perf_counter() - began
            first = first or last
            parts.append(content)
    if not parts:
        raise ModelError(f"{alias}: the stream carried no content")
    return Streamed(first, last, len(parts), "".join(parts))


def series(values: list[float], digits: int = 1) -> dict[str, Any]:
    """Median, p90 and range of a series, with the values themselves."""
    return {
        "median": round(statistics.median(values), digits),
        "p90": round(percentile(values, 90), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
        "values": [round(v, digits) for v in values],
    }


def _proc_kb(path: str) -> dict[str, int]:
    """The ``Key:  N kB`` lines of a /proc file; empty where unreadable."""
    try:
        text = Path(path).read_text()
    except OSError:
        return {}
    fields: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        words = rest.split()
        if len(words) == 2 and words[1] == "kB":
            fields[key] = int(words[0])
    return fields


def server_memory(server: LocalModelServer) -> dict[str, Any]:
    """Resident memory of the server process: RSS (anonymous and file-backed) and PSS."""
    if server.process is None:
        return {}
    pid = server.process.pid
    status, rollup = _proc_kb(f"/proc/{pid}/status"), _proc_kb(f"/proc/{pid}/smaps_rollup")

    def mb(fields: dict[str, int], key: str) -> float | None:
        return round(fields[key] / 1024, 1) if key in fields else None

    return {
        "rss_mb": mb(status, "VmRSS"),
        "rss_anon_mb": mb(status, "RssAnon"),
        "rss_file_mb": mb(status, "RssFile"),
        "pss_mb": mb(rollup, "Pss"),
        "hwm_mb": mb(status, "VmHWM"),
    }


async def _start(cached: CachedModel, args: argparse.Namespace) -> LocalModelServer:
    server = LocalModelServer(
        cached.path,
        alias=cached.name,
        threads=args.threads,
        n_ctx=args.ctx,
        start_timeout_s=args.start_timeout,
    )
    await server.start()
    return server


async def measure_loads(cached: CachedModel, args: argparse.Namespace) -> list[float]:
    """Load times of ``args.starts - 1`` servers, each stopped at once (the last start is
    the measured server's, in :func:`bench_model`)."""
    loads: list[float] = []
    for _ in range(args.starts - 1):
        server = await _start(cached, args)
        try:
            assert server.load_s is not None
            loads.append(server.load_s)
        finally:
            await server.stop()
    return loads


async def bench_model(
    cached: CachedModel, args: argparse.Namespace, console: Console
) -> dict[str, Any]:
    result: dict[str, Any] = {"file": cached.path.name, "size_mb": round(cached.size / 2**20, 1)}
    loads = await measure_loads(cached, args)
    server = await _start(cached, args)
    try:
        assert server.load_s is not None
        loads.append(server.load_s)
        result["threads"], result["n_ctx"] = server.threads, server.n_ctx
        result["load_s"] = series(loads, 3)
        result["memory_after_load"] = server_memory(server)
        console.print(f"  {cached.name}: loads {[round(v, 2) for v in loads]} s")
        async with AsyncOpenAI(
            base_url=server.base_url,
            api_key=server.api_key,
            timeout=REQUEST_TIMEOUT_S,
            max_retries=0,
        ) as client:
            result.update(await _latency_and_speed(client, server.alias, args))
        result["memory_after_runs"] = server_memory(server)
        result["server_alive_at_end"] = server.alive()
    finally:
        await server.stop()
    return result


async def _latency_and_speed(
    client: AsyncOpenAI, alias: str, args: argparse.Namespace
) -> dict[str, Any]:
    short, long_ = _messages(SHORT_QUESTION), _messages(LONG_QUESTION)
    # The first request after load pays one-off costs (buffers, page faults on the weights).
    warm = await stream_once(client, alias, _messages(SHORT_QUESTION, -1), SHORT_MAX_TOKENS)
    cold = [
        await stream_once(client, alias, _messages(SHORT_QUESTION, i), SHORT_MAX_TOKENS)
        for i in range(args.runs)
    ]
    await stream_once(client, alias, short, SHORT_MAX_TOKENS)  # puts its prefix in the cache
    cached = [await stream_once(client, alias, short, SHORT_MAX_TOKENS) for _ in range(args.runs)]
    probe = await client.chat.completions.create(
        model=alias, messages=_messages(SHORT_QUESTION, 0), temperature=0, max_tokens=1
    )
    prompt_tokens = _usage(probe).prompt_tokens

    # A first, uncounted, long generation: after it, the reference and every counted run
    # start from the same cache state (the prompt's prefix reused). From different states
    # (the whole prompt processed in one batch, or all but its last token reused) greedy
    # decoding can pick different tokens, and the reference would not match the runs.
    await stream_once(client, alias, long_, LONG_MAX_TOKENS)
    reference = await client.chat.completions.create(
        model=alias, messages=long_, temperature=0, max_tokens=LONG_MAX_TOKENS
    )
    ref_text = reference.choices[0].message.content or ""
    usage = _usage(reference)
    completion_tokens = usage.completion_tokens
    gens = [await stream_once(client, alias, long_, LONG_MAX_TOKENS) for _ in range(args.runs)]
    matches = [g.text == ref_text for g in gens]
    # Tokens after the first one, over the time from the first to the last content chunk.
    speeds = [
        ((completion_tokens if same else g.chunks) - 1) / max(g.last_s - g.first_s, 1e-9)
        for g, same in zip(gens, matches, strict=True)
    ]
    cold_ms = [c.first_s * 1000 for c in cold]
    return {
        "first_token_first_request_ms": round(warm.first_s * 1000, 1),
        "first_token_ms": series(cold_ms),
        "first_token_cached_prefix_ms": series([c.first_s * 1000 for c in cached]),
        "short_prompt_tokens": prompt_tokens,
        "prompt_tokens_per_s": round(prompt_tokens / (statistics.median(cold_ms) / 1000), 1),
        "generation": {
            "max_tokens": LONG_MAX_TOKENS,
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": completion_tokens,
            "finish_reason": reference.choices[0].finish_reason,
            "content_chunks": [g.chunks for g in gens],
            "stream_matches_non_streamed": matches,
            "tokens_source": "usage.completion_tokens of the non-streamed identical request"
            if all(matches)
            else "content chunks where the streamed text differed from the non-streamed one",
            "tokens_per_s": series(speeds, 2),
            "generation_s": series([g.last_s - g.first_s for g in gens], 3),
            "sample": ref_text[:400],
        },
    }


def _usage(completion: ChatCompletion) -> CompletionUsage:
    if completion.usage is None:
        raise ModelError(f"{completion.model}: the server reported no token usage")
    return completion.usage


# ------------------------------------------------------------------ reporting


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def build_report(
    args: argparse.Namespace, results: dict[str, Any], started: dt.datetime
) -> dict[str, Any]:
    machine = machine_info()
    machine["mem_total_mb"] = round(_proc_kb("/proc/meminfo").get("MemTotal", 0) / 1024)
    machine["llama_cpp_python"] = _version("llama_cpp_python")
    machine["openai"] = _version("openai")
    return {
        "benchmark": "models",
        "date": started.date().isoformat(),
        "timestamp": started.isoformat(timespec="seconds"),
        "duration_s": round((dt.datetime.now(dt.UTC) - started).total_seconds(), 1),
        "machine": machine,
        "settings": {
            "starts": args.starts,
            "runs": args.runs,
            "threads": args.threads or "all cores (LocalModelServer's default)",
            "n_ctx": args.ctx,
            "models_dir": str(args.models_dir),
            "system_prompt": SYSTEM,
            "short_question": SHORT_QUESTION,
            "short_max_tokens": SHORT_MAX_TOKENS,
            "long_question": LONG_QUESTION,
            "long_max_tokens": LONG_MAX_TOKENS,
            "temperature": 0,
        },
        "method": {
            "load_s": "Popen of `python -m llama_cpp.server` -> first successful "
            "GET /v1/models (LocalModelServer.load_s); the weights load before it listens",
            "first_token_ms": "request sent -> first streamed chunk with content; the system "
            "prompt starts with a per-run nonce, so the whole prompt is processed each run",
            "first_token_cached_prefix_ms": "the same, with one prompt repeated: llama.cpp "
            "reuses the cached prefix and processes only the last prompt token",
            "prompt_tokens_per_s": "short_prompt_tokens / median first_token_ms: a lower bound, "
            "the time also holds one decode step and the HTTP round trip",
            "tokens_per_s": "(tokens - 1) / (last content chunk - first content chunk), "
            "streamed; tokens: usage.completion_tokens of a non-streamed identical request "
            "made from the same cache state, for the runs whose text matches it (all, so far; "
            "else that run's content chunks, one token each in this server's stream)",
            "memory": "/proc/PID/status VmRSS (RssAnon + RssFile; the weights are mmapped, so "
            "file-backed) and /proc/PID/smaps_rollup Pss of the server process",
        },
        "models": results,
        "failures": sum(1 for r in results.values() if "error" in r),
    }


def _get(data: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict) or key not in data:
            return None
        data = data[key]
    return data


def print_report(console: Console, report: dict[str, Any], out: Path) -> None:
    machine = report["machine"]
    console.print(
        f"[bold]local models[/bold]  cpu={machine['cpu_model'] or '?'}  "
        f"cores={machine['nproc_usable']}  llama-cpp-python={machine['llama_cpp_python']}  "
        f"starts={report['settings']['starts']}  runs={report['settings']['runs']}  "
        f"loadavg {machine.get('loadavg_at_start')} -> {machine['loadavg_at_end']}"
    )
    table = Table()
    columns = (
        "model", "threads", "load s", "1st token ms", "p90", "cached ms", "prompt tok/s",
        "gen tok/s", "RSS MB", "PSS MB", "RSS after MB",
    )  # fmt: skip
    for column in columns:
        table.add_column(column, justify="left" if column == "model" else "right")
    for name, result in report["models"].items():
        if "error" in result:
            table.add_row(name, "[red]error[/red]", result["error"][:80])
            continue
        table.add_row(
            name,
            str(result["threads"]),
            _fmt(_get(result, "load_s", "median"), 2),
            _fmt(_get(result, "first_token_ms", "median"), 0),
            _fmt(_get(result, "first_token_ms", "p90"), 0),
            _fmt(_get(result, "first_token_cached_prefix_ms", "median"), 0),
            _fmt(result.get("prompt_tokens_per_s"), 0),
            _fmt(_get(result, "generation", "tokens_per_s", "median"), 1),
            _fmt(_get(result, "memory_after_load", "rss_mb"), 1),
            _fmt(_get(result, "memory_after_load", "pss_mb"), 1),
            _fmt(_get(result, "memory_after_runs", "rss_mb"), 1),
        )
    console.print(table)
    for name, result in report["models"].items():
        generation = result.get("generation")
        if generation:
            console.print(
                f"{name}: {generation['completion_tokens']} completion tokens "
                f"({generation['finish_reason']}), chunks {generation['content_chunks']}, "
                f"stream == non-streamed: {all(generation['stream_matches_non_streamed'])}"
            )
    console.print(f"wrote {out} in {report['duration_s']} s")


# ------------------------------------------------------------------------ main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    settings = Settings()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="NAME",
        help="a cached model to run (repeatable; default: every verified cached model)",
    )
    parser.add_argument("--starts", type=int, default=3, help="server starts per model")
    parser.add_argument("--runs", type=int, default=5, help="runs per latency/speed series")
    parser.add_argument(
        "--threads",
        type=int,
        default=settings.local_threads,
        help="server threads (default LATM_LOCAL_THREADS; 0: all cores)",
    )
    parser.add_argument("--ctx", type=int, default=settings.local_ctx, help="context length")
    parser.add_argument("--models-dir", type=Path, default=settings.models_dir)
    parser.add_argument("--start-timeout", type=float, default=settings.local_start_timeout_s)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON output path")
    parser.add_argument("--quick", action="store_true", help="one start, two runs (for tests)")
    args = parser.parse_args(argv)
    if args.quick:
        args.starts, args.runs = 1, 2
    if args.starts < 1 or args.runs < 1:
        parser.error("--starts and --runs must be at least 1")
    verified = {m.name: m for m in list_cached(args.models_dir) if m.verified}
    unknown = [name for name in args.model if name not in verified]
    if unknown:
        parser.error(
            f"not cached and verified in {args.models_dir}: {', '.join(unknown)}; "
            f"available: {', '.join(verified) or 'none (latm models fetch NAME)'}"
        )
    args.selected = [verified[name] for name in dict.fromkeys(args.model or verified)]
    if not args.selected:
        parser.error(f"no verified model in {args.models_dir}; run: latm models fetch NAME")
    return args


async def run_all(args: argparse.Namespace, console: Console) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for cached in args.selected:
        console.print(f"running: {cached.name} ({cached.path.name})")
        try:
            results[cached.name] = await bench_model(cached, args, console)
        except (ModelError, OpenAIError, OSError) as exc:
            results[cached.name] = {"error": f"{type(exc).__name__}: {exc}"}
            console.print(f"[red]{cached.name} failed: {exc}[/red]")
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console() if sys.stdout.isatty() else Console(width=140)
    started = dt.datetime.now(dt.UTC)
    load_before = [round(v, 2) for v in os.getloadavg()]
    results = asyncio.run(run_all(args, console))
    report = build_report(args, results, started)
    report["machine"]["loadavg_at_start"] = load_before
    write_report(report, args.out)
    print_report(console, report, args.out)
    return 1 if report["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
