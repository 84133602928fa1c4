"""``local:NAME_OR_GGUF_PATH``: llama.cpp's OpenAI-compatible server as a child process.

The weights load in the child, never in the orchestrator. The child listens on loopback only,
on a free port, and answers only requests that carry a random per-process key, so another
local user cannot borrow it. It inherits no secrets: its environment is built from scratch.
It is stopped with its whole process group on :meth:`LocalModelServer.stop`, and the kernel
kills it should the orchestrator die first (``PR_SET_PDEATHSIG``, set by the child itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO

from orchestrator.errors import MissingDependencyError, ModelError
from orchestrator.models.admission import FairQueue
from orchestrator.models.base import ChatParams, Message, ModelAdapter, PriceLookup, RawCompletion
from orchestrator.models.ledger import current_scope
from orchestrator.models.openai_adapter import OpenAIModel

log = logging.getLogger(__name__)
LOOPBACK = "127.0.0.1"
# The child's first act: ask the kernel for SIGKILL when its parent dies, check the parent
# did not die before that, then become llama.cpp's server. (Done in the child rather than in a
# preexec_fn, which would force a plain fork() in a process where gRPC threads run.)
_CHILD = """
import ctypes, os, runpy, signal, sys
ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
if os.getppid() != int(sys.argv[1]):
    sys.exit(1)
sys.argv = ["llama_cpp.server", *sys.argv[2:]]
runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)
"""
# What the child may inherit: enough to run Python and find its libraries, nothing else.
_PASS_ENV = ("PATH", "LANG", "LC_ALL", "TMPDIR", "HOME")


class LocalModelServer:
    """One llama.cpp server process serving one GGUF file."""

    def __init__(
        self,
        model_path: Path,
        *,
        alias: str,
        threads: int = 0,
        n_ctx: int = 8192,
        lookup_tokens: int = 0,
        start_timeout_s: float = 120.0,
    ) -> None:
        if importlib.util.find_spec("llama_cpp") is None:
            raise MissingDependencyError.for_extra("llama-cpp-python", "local")
        self.model_path = model_path
        self.alias = alias
        self.threads = threads or os.cpu_count() or 1
        self.n_ctx = n_ctx
        self.lookup_tokens = lookup_tokens
        self.start_timeout_s = start_timeout_s
        self.api_key = secrets.token_urlsafe(24)
        self.process: subprocess.Popen[bytes] | None = None
        self.port: int | None = None
        self.load_s: float | None = None
        self.starts = 0
        self._log: IO[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/v1"

    async def start(self) -> str:
        """Start the server and wait until it answers; returns its base URL."""
        self._log = tempfile.TemporaryFile(prefix="latm-llama-")  # noqa: SIM115 - closed in stop
        self.starts += 1
        self.port = _free_port()
        env = {name: os.environ[name] for name in _PASS_ENV if name in os.environ}
        env["API_KEY"] = self.api_key  # read by the server's settings; kept off its argv
        started = time.monotonic()
        self.process = subprocess.Popen(
            [
                sys.executable, "-c", _CHILD, str(os.getpid()),
                "--model", str(self.model_path), "--model_alias", self.alias,
                "--host", LOOPBACK, "--port", str(self.port),
                "--n_threads", str(self.threads), "--n_ctx", str(self.n_ctx),
                "--verbose", "false",
                *self._lookup_args(),
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,  # uvicorn's access log: a line per request, unbounded
            stderr=self._log,  # start-up and errors
            start_new_session=True,
        )  # fmt: skip
        try:
            await self._wait_ready(started + self.start_timeout_s)
        except ModelError:
            tail = self.log_tail()
            await self.stop()
            raise ModelError(
                f"the local model server did not start; its log ends: {tail}",
                public="the local model server did not start",
            ) from None
        self.load_s = time.monotonic() - started
        return self.base_url

    def _lookup_args(self) -> list[str]:
        """llama-cpp-python's prompt-lookup decoding: drafts taken from the text so far,
        each accepted only where the model itself would have produced it."""
        if not self.lookup_tokens:
            return []
        return [
            "--draft_model", "prompt-lookup-decoding",
            "--draft_model_num_pred_tokens", str(self.lookup_tokens),
        ]  # fmt: skip

    async def _wait_ready(self, deadline: float) -> None:
        import openai

        async with openai.AsyncOpenAI(
            api_key=self.api_key, base_url=self.base_url, timeout=2.0, max_retries=0
        ) as client:
            while time.monotonic() < deadline:
                if not self.alive():
                    raise ModelError("the local model server exited")
                with contextlib.suppress(openai.OpenAIError):
                    await client.models.list()
                    return
                await asyncio.sleep(0.1)
        raise ModelError(f"no answer within {self.start_timeout_s:g} s")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    async def exited_within(self, seconds: float) -> int | None:
        """The exit status if the server exits within ``seconds`` (negative: a signal)."""
        if self.process is None:
            return None
        try:
            return await asyncio.to_thread(self.process.wait, seconds)
        except subprocess.TimeoutExpired:
            return None

    def log_tail(self, size: int = 1500) -> str:
        if self._log is None or self._log.closed:
            return ""
        self._log.seek(0, os.SEEK_END)
        self._log.seek(max(0, self._log.tell() - size))
        lines = self._log.read().decode("utf-8", "replace").strip().splitlines()
        return " | ".join(line.strip() for line in lines[-3:])  # a traceback ends in its error

    async def stop(self) -> None:
        """Stop the server and everything it started; idempotent."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                await asyncio.to_thread(process.wait, 10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                await asyncio.to_thread(process.wait)
        if self._log is not None:
            self._log.close()


class LocalModel(ModelAdapter):
    """A GGUF model served by a child :class:`LocalModelServer`, spoken to over OpenAI's API."""

    def __init__(
        self,
        spec: str,
        server: LocalModelServer,
        *,
        timeout_s: float = 120.0,
        max_retries: int = 1,
        prices: PriceLookup | None = None,
    ) -> None:
        super().__init__(spec, prices=prices)
        self.server = server
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self._client: OpenAIModel | None = None
        self._starting = asyncio.Lock()
        # llama.cpp's server decodes one completion at a time: tenants take turns at it.
        self.queue = FairQueue(spec)

    async def start(self) -> OpenAIModel:
        """Start the server now rather than on the first completion.

        A server that has died since (crashed, killed) is replaced: one call's fault does
        not become every later call's.
        """
        async with self._starting:
            if self._client is not None and not self.server.alive():
                log.warning("the local model server for %s has exited; restarting it", self.spec)
                await self._close_client()
                await self.server.stop()
            if self._client is None:
                base_url = await self.server.start()
                self._client = OpenAIModel(
                    self.spec,
                    self.server.alias,
                    api_key=self.server.api_key,
                    base_url=base_url,
                    timeout_s=self.timeout_s,
                    max_retries=self.max_retries,
                )
            return self._client

    async def _complete(self, messages: list[Message], params: ChatParams) -> RawCompletion:
        client = await self.start()
        try:
            async with self.queue.turn(current_scope().tenant):
                return await client._complete(messages, params)
        except ModelError as exc:
            # A dropped connection: was it the server dying? (It may still be exiting.)
            lost = type(exc) is ModelError
            status = await self.server.exited_within(1.0) if lost else None
            if status is None:
                raise
            raise ModelError(
                f"the local model server for {self.spec} died mid-request "
                f"({_describe(status)}); the next call starts a new one"
            ) from None

    async def _close_client(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def aclose(self) -> None:
        await self._close_client()
        await self.server.stop()


def _describe(status: int | None) -> str:
    if status is None:
        return "exit status unknown"
    if status < 0:
        return f"killed by {signal.Signals(-status).name}"
    return f"exit status {status}"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return int(probe.getsockname()[1])
