"""The gRPC server's handle on its template process.

Starts ``python -m sandbox.template`` (a fresh interpreter: the threaded server is
never forked), sends it framed requests and matches the replies to waiting calls.
If the template dies, every call in flight fails as ``crashed`` and a new template
is started; tools are loaded into it again from the sources kept here.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, cast

from sandbox.contract import Answer, Request
from sandbox.template import HEADER, MAX_FRAME_BYTES, encode_frame

log = logging.getLogger(__name__)

# The template is pinged this often; one that has not answered within HANG_S (stopped,
# or stuck on a stopped zygote) is killed, and the next request starts a new one.
PING_INTERVAL_S = 1.0
HANG_S = 5.0


class TemplateDied(Exception):
    """The template process exited while a request was in flight."""


class _Adopted:
    """A template started before the event loop (``python -m sandbox`` does so, to
    overlap its start-up with the server's import of gRPC)."""

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self._popen = popen
        self.pid = popen.pid

    def kill(self) -> None:
        self._popen.kill()

    async def wait(self) -> int:
        return await asyncio.to_thread(self._popen.wait)


EarlyTemplate = tuple[subprocess.Popen[bytes], socket.socket]


def template_args(
    allow_modules: list[str] | None,
    prefork: int,
    keep: list[str] | None = None,
    scratch: list[str] | None = None,
) -> list[str]:
    return [
        *(f"--allow-module={m}" for m in allow_modules or []),
        f"--prefork={prefork}",
        *(f"--keep={path}" for path in keep or []),
        *(f"--scratch={path}" for path in scratch or []),
    ]


def listen_paths(listen: str) -> list[str]:
    """The file a ``unix:PATH`` listen address makes: the template must not remove it
    when it empties the scratch folders."""
    return [listen.removeprefix("unix:")] if listen.startswith("unix:") else []


class TemplateSupervisor:
    def __init__(
        self,
        allow_modules: list[str] | None = None,
        prefork: int = 2,
        early: EarlyTemplate | None = None,
        keep: list[str] | None = None,
        scratch: list[str] | None = None,
    ) -> None:
        self._args = template_args(allow_modules, prefork, keep, scratch)
        self._early = early
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Answer]] = {}
        self._process: asyncio.subprocess.Process | _Adopted | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._watch_task: asyncio.Task[None] | None = None
        self._ready: asyncio.Future[None] | None = None
        self._start_lock = asyncio.Lock()
        self._closing = False
        self.restarts = 0

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    async def start(self) -> None:
        async with self._start_lock:
            if self._writer is not None and not self._writer.is_closing():
                return
            if self._early is not None:  # adopt the one started before the loop
                popen, ours = self._early
                self._early = None
                self._process = _Adopted(popen)
            else:
                ours, theirs = socket.socketpair()
                self._process = await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-I",  # no working folder (a writable /tmp) on the module path
                    "-m",
                    "sandbox.template",
                    f"--fd={theirs.fileno()}",
                    *self._args,
                    pass_fds=[theirs.fileno()],
                )
                theirs.close()
            reader, self._writer = await asyncio.open_unix_connection(sock=ours)
            self._ready = asyncio.get_running_loop().create_future()
            self._reader_task = asyncio.create_task(self._read_loop(reader))
            await asyncio.wait_for(asyncio.shield(self._ready), timeout=30)
            self._watch_task = asyncio.create_task(self._watch(self._writer))

    async def _watch(self, writer: asyncio.StreamWriter) -> None:
        """Ping this template until it dies; kill it if it stops answering."""
        while self._writer is writer and not writer.is_closing():
            await asyncio.sleep(PING_INTERVAL_S)
            if self._writer is not writer or self._closing:
                return
            self._reap_orphans()
            try:
                await asyncio.wait_for(self.request({"op": "ping"}), HANG_S)
            except TimeoutError:
                log.warning("template process stopped answering for %.0f s; killing it", HANG_S)
                self._kill()
                return
            except TemplateDied:
                return

    def _reap_orphans(self) -> None:
        """Reap exited children other than the template. Where the server is PID 1 of
        its sandbox (bubblewrap's ``--as-pid-1``), a zygote or worker whose parent died
        is reparented to it; asyncio reaps only the template."""
        keep = self.pid
        for children in Path("/proc/self/task").glob("*/children"):
            with contextlib.suppress(OSError, ValueError):
                for pid in map(int, children.read_text().split()):
                    if pid != keep:
                        with contextlib.suppress(ChildProcessError):
                            os.waitpid(pid, os.WNOHANG)

    def _kill(self) -> None:
        """Kill the template: its reader then sees the end of its stream, answers the
        calls in flight as crashed, and the zygote and workers die with it."""
        if self._process is not None:
            with contextlib.suppress(ProcessLookupError):
                self._process.kill()

    async def request(self, message: Request) -> Answer:
        """Send one request and wait for its reply; restarts a dead template first."""
        if self._closing:
            raise TemplateDied("the sandbox server is shutting down")
        if self._writer is None or self._writer.is_closing():
            await self.start()
        assert self._writer is not None
        request_id = next(self._ids)
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            try:
                self._writer.write(encode_frame({**message, "id": request_id}))
                await self._writer.drain()
            except ConnectionError as exc:
                # It died before its reader saw the end of its stream; that reader will.
                raise TemplateDied("the template process died") from exc
            return await future
        finally:
            self._pending.pop(request_id, None)

    async def _read_loop(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                header = await reader.readexactly(HEADER.size)
                (size,) = HEADER.unpack(header)
                if size > MAX_FRAME_BYTES:
                    raise ValueError(f"oversized frame from template: {size}")
                message = _decode(await reader.readexactly(size))
                if message.get("op") == "ready":
                    if self._ready is not None and not self._ready.done():
                        self._ready.set_result(None)
                    continue
                future = self._pending.get(message.get("id", -1))
                if future is not None and not future.done():
                    future.set_result(cast(Answer, message))  # the template is ours
        except (asyncio.IncompleteReadError, ConnectionError, ValueError) as exc:
            log.warning("template process stopped answering: %s", exc)
        finally:
            await self._on_death()

    async def _on_death(self) -> None:
        if self._watch_task is not None:
            self._watch_task.cancel()
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(TemplateDied("the template process did not start"))
        for future in self._pending.values():
            if not future.done():
                future.set_exception(TemplateDied("the template process died"))
        process = self._process
        if process is not None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
        if not self._closing:
            self.restarts += 1

    async def close(self) -> None:
        self._closing = True
        if self._writer is not None:
            self._writer.close()
        if self._reader_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader_task


def _decode(body: bytes) -> dict[str, Any]:
    value = json.loads(body)
    if not isinstance(value, dict):
        raise ValueError("template sent a non-object frame")
    return value
