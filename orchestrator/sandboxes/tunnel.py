"""The host's end of a reverse tunnel to a sandbox that cannot be connected to.

Under gVisor a socket the sandbox listens on is unreachable from the host, while
the sandbox can connect to a socket the host listens on (``--host-uds=open``). So
the host listens twice:

* ``tunnel.sock``, in the folder mounted into the container: the sandbox's relay
  (:mod:`sandbox.tunnel`) keeps one idle connection open here;
* ``grpc.sock``, in a host-only folder: the orchestrator's ordinary gRPC channel
  connects here, and each connection is paired with one idle tunnel connection.

Bytes are copied both ways unchanged, so gRPC on the orchestrator side is standard
(deadlines, health checks, errors), and the sandbox needs no network at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from pathlib import Path

log = logging.getLogger(__name__)

CHUNK = 256 * 1024
# How long a new client connection waits for the sandbox to offer a tunnel.
PAIR_TIMEOUT_S = 10.0
# How long a dial-in may take to present its token.
AUTH_S = 5.0

Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class TunnelHost:
    """Listens for the sandbox's dial-ins and for local gRPC clients; pairs them."""

    def __init__(self, tunnel_path: Path, client_path: Path, token: bytes = b"") -> None:
        self.tunnel_path = tunnel_path
        self.client_path = client_path
        # Each dial-in must start with this: anything else of the sandbox's uid can
        # connect to ``tunnel.sock`` too, and must not be paired with a client.
        self.token = token
        self._spares: asyncio.Queue[Stream] = asyncio.Queue()
        self._servers: list[asyncio.Server] = []
        self._writers: set[asyncio.StreamWriter] = set()
        self.dialled = asyncio.Event()  # the sandbox has dialled in at least once

    @property
    def target(self) -> str:
        """The gRPC target the orchestrator's channel uses."""
        return f"unix:{self.client_path}"

    async def start(self) -> None:
        self._servers = [
            await asyncio.start_unix_server(self._on_spare, self.tunnel_path),
            await asyncio.start_unix_server(self._on_client, self.client_path),
        ]

    async def _on_spare(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        if self.token:
            try:
                offered = await asyncio.wait_for(reader.readexactly(len(self.token)), AUTH_S)
            except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
                offered = b""
            if not hmac.compare_digest(offered, self.token):
                log.warning("tunnel: refused a dial-in without the sandbox server's token")
                self._writers.discard(writer)
                writer.close()
                return
        self.dialled.set()
        await self._spares.put((reader, writer))

    async def _on_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            spare = await asyncio.wait_for(self._live_spare(), PAIR_TIMEOUT_S)
        except TimeoutError:
            log.warning("tunnel %s: the sandbox offered no connection", self.tunnel_path)
            writer.close()
            self._writers.discard(writer)
            return
        up_reader, up_writer = spare
        try:
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        finally:
            self._writers.difference_update((writer, up_writer))

    async def _live_spare(self) -> Stream:
        while True:
            reader, writer = await self._spares.get()
            if not (reader.at_eof() or writer.is_closing()):
                return reader, writer
            writer.close()
            self._writers.discard(writer)

    async def close(self) -> None:
        for server in self._servers:
            server.close()
        for writer in list(self._writers):
            writer.close()
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1.0)
        for path in (self.tunnel_path, self.client_path):
            path.unlink(missing_ok=True)


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy ``reader`` to ``writer`` until either side ends; then close ``writer``."""
    try:
        while chunk := await reader.read(CHUNK):
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()
