"""The sandbox's end of a reverse tunnel: dial out to the host, relay to our own server.

Under gVisor (``runsc --host-uds=open``) a process in the sandbox can connect to a
Unix socket the host listens on in a bind-mounted folder, but a socket the sandbox
listens on cannot be reached from the host. So, with ``--dial``, the server listens
only inside the sandbox and this relay keeps one idle connection open to the host's
socket. When the host pairs that connection with a gRPC client (it sends the
client's first bytes), the relay connects it to the local server, pipes bytes both
ways, and dials the next idle connection. The host side sees a plain byte stream:
its gRPC calls stay standard, and the sandbox keeps no network at all.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time

log = logging.getLogger(__name__)

CHUNK = 256 * 1024
# A host that stays unreachable this long is gone; the server then exits.
GIVE_UP_AFTER_S = 30.0


def _local_address(listen: str) -> tuple[socket.AddressFamily, str | tuple[str, int]]:
    """Where the relay reaches the local server: its Unix socket, or, for a TCP listen
    address (``HOST:PORT``, e.g. a Kubernetes pod's), that port on this sandbox's loopback."""
    if listen.startswith("unix"):
        return socket.AF_UNIX, _unix_path(listen)
    host, _, port = listen.rpartition(":")
    if not port.isdigit():
        raise ValueError(f"the tunnel needs a unix: or HOST:PORT listen address, not {listen!r}")
    loopback = "::1" if host.strip("[]") in {"::", "::1"} else "127.0.0.1"
    family = socket.AF_INET6 if ":" in loopback else socket.AF_INET
    return family, (loopback, int(port))


def _unix_path(address: str) -> str:
    """The socket address of ``unix:PATH`` or ``unix-abstract:NAME`` (Linux's abstract
    namespace: no file that another process of the sandbox's uid could replace)."""
    if address.startswith("unix-abstract:"):
        return "\0" + address.removeprefix("unix-abstract:")
    if not address.startswith("unix:"):
        raise ValueError(f"the tunnel needs a unix: address, not {address!r}")
    return address.removeprefix("unix:").removeprefix("//")


class _Pair:
    """Two connected sockets; closed once both directions have finished."""

    def __init__(self, a: socket.socket, b: socket.socket) -> None:
        self.sockets = (a, b)
        self._open_directions = 2
        self._lock = threading.Lock()

    def direction_done(self) -> None:
        with self._lock:
            self._open_directions -= 1
            last = self._open_directions == 0
        if last:
            for sock in self.sockets:
                sock.close()


def _pump(source: socket.socket, sink: socket.socket, pair: _Pair) -> None:
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    try:
        while True:
            size = source.recv_into(buffer)
            if not size:
                break
            sink.sendall(view[:size])
    except OSError as exc:
        log.warning("tunnel: relay stopped: %s", exc)
    finally:
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)
        pair.direction_done()


def _relay(
    first: bytes,
    upstream: socket.socket,
    local_address: tuple[socket.AddressFamily, str | tuple[str, int]],
) -> None:
    family, address = local_address
    local = socket.socket(family, socket.SOCK_STREAM)
    try:
        local.connect(address)
        local.sendall(first)
    except OSError as exc:
        log.warning("tunnel: cannot reach the local server: %s", exc)
        local.close()
        upstream.close()
        return
    pair = _Pair(upstream, local)
    threading.Thread(target=_pump, args=(upstream, local, pair), daemon=True).start()
    threading.Thread(target=_pump, args=(local, upstream, pair), daemon=True).start()


def dial_forever(
    dial: str, listen: str, stop: threading.Event, on_give_up: object = None, token: bytes = b""
) -> None:
    """Keep one idle connection to the host; turn each used one into a relay. Each
    connection starts with ``token``, which the host checks: a tool that connects to
    the host's socket itself is not taken for the server."""
    dial_path, local_address = _unix_path(dial), _local_address(listen)
    last_ok = time.monotonic()
    delay = 0.01
    while not stop.is_set():
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            upstream.connect(dial_path)
            upstream.sendall(token)
        except OSError as exc:
            upstream.close()
            if time.monotonic() - last_ok > GIVE_UP_AFTER_S:
                log.error("tunnel: host socket unreachable for %.0f s (%s)", GIVE_UP_AFTER_S, exc)
                if callable(on_give_up):
                    on_give_up()
                return
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
            continue
        last_ok, delay = time.monotonic(), 0.01
        try:
            first = upstream.recv(CHUNK)  # blocks until the host pairs it with a client
        except OSError:
            first = b""
        if not first:
            upstream.close()  # the host closed an idle connection; dial again
            continue
        _relay(first, upstream, local_address)


def start_dialer(
    dial: str, listen: str, on_give_up: object = None, token: bytes = b""
) -> threading.Event:
    """Run :func:`dial_forever` in a daemon thread; set the returned event to stop."""
    _unix_path(dial)
    _local_address(listen)
    stop = threading.Event()
    threading.Thread(
        target=dial_forever,
        args=(dial, listen, stop, on_give_up, token),
        name="tunnel",
        daemon=True,
    ).start()
    return stop
