"""Changes one replica makes that the others must hear of at once: PostgreSQL's NOTIFY.

A write that makes other replicas' caches stale (a tool published, imported or deleted; a
key revoked or rotated; a tenant's quotas changed) sends a notice on a channel, in the
same transaction, so it is delivered exactly when the change is committed. Each serving
replica keeps one connection that LISTENs to the channels and drops what it cached for the
tenant named. While that connection is down, notices are lost: every time it (re)connects
the listener drops everything cached, and the caches' own expiry still bounds staleness.

On SQLite (one process) nothing is sent: that process forgets its caches itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

log = logging.getLogger("latm.registry")

TOOLS = "latm_tools"  # payload: the tenant whose tools changed
KEYS = "latm_keys"  # payload: the tenant whose keys or quotas changed
RECONNECT_S = 1.0
# How often an idle listening connection is checked: one that died silently (a lost host,
# a dropped route) would otherwise wait for notices forever.
CHECK_S = 30.0


def notify(session: Session, channel: str, payload: str) -> None:
    """Send ``payload`` on ``channel`` when ``session``'s transaction commits (PostgreSQL)."""
    if session.get_bind().dialect.name == "postgresql":
        values = {"channel": channel, "payload": payload}
        session.execute(text("SELECT pg_notify(:channel, :payload)"), values)


class NoticeListener:
    """One connection LISTENing on the channels of ``handlers``; each notice's payload goes
    to its channel's handler, and ``on_reset`` runs on each (re)connection, when notices
    may have been missed."""

    def __init__(
        self,
        engine: Engine,
        handlers: Mapping[str, Callable[[str], None]],
        on_reset: Callable[[], None],
    ) -> None:
        self.engine = engine
        self.handlers = dict(handlers)
        self.on_reset = on_reset
        self.listening = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self, timeout_s: float = 10.0) -> None:
        """Start listening; returns once the channels are listened to (or after
        ``timeout_s``, the listener going on trying in the background)."""
        self._task = asyncio.get_running_loop().create_task(self._run())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self.listening.wait()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        import psycopg

        while True:
            try:
                await self._listen(psycopg)
            except Exception as exc:  # noqa: BLE001 - whatever it was, listen again
                log.warning("not listening for other replicas' changes: %s", exc)
            self.listening.clear()
            await asyncio.sleep(RECONNECT_S)

    async def _listen(self, psycopg: Any) -> None:
        _, options = self.engine.dialect.create_connect_args(self.engine.url)
        async with await psycopg.AsyncConnection.connect(**options, autocommit=True) as connection:
            for channel in self.handlers:
                await connection.execute(
                    psycopg.sql.SQL("LISTEN {}").format(psycopg.sql.Identifier(channel))
                )
            self.on_reset()  # whatever changed while nobody listened
            self.listening.set()
            while True:
                async for notice in connection.notifies(timeout=CHECK_S):
                    self._handle(notice.channel, notice.payload)
                await connection.execute("SELECT 1")  # a dead connection raises here

    def _handle(self, channel: str, payload: str) -> None:
        handler = self.handlers.get(channel)
        if handler is None:
            return
        try:
            handler(payload)
        except Exception:  # a handler's bug must not stop the listening
            log.exception("handling a notice on %s failed", channel)
