"""A model endpoint that misbehaves at the HTTP level: a test double, on loopback only.

:class:`FaultyEndpoint` is :class:`tests.support.model_server.ModelServer` (which
already answers late, with HTTP errors and ``Retry-After``, or drops the connection) plus the
faults a status code cannot express: a 200 whose body is garbage, and a reply cut off half-way
through its body (by a short ``Content-Length`` body, or a chunked body that never ends); and
a queue of replies, for a conversation (a maker's proposal, then its verification calls).
Like its base, it is a fixture we wrote and proves nothing about real providers.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections import deque
from dataclasses import dataclass
from typing import Literal

from tests.support.model_server import Api, ModelServer, Recorded, _Answer, _Handler

# What a chat completion looks like, to be cut short: only its first half is ever sent.
_A_REPLY = json.dumps(
    {
        "id": "chatcmpl-cut",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "x " * 200}}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 200, "total_tokens": 201},
    }
).encode()


@dataclass(frozen=True)
class _RawFault:
    kind: Literal["garbage", "cut", "cut-chunked"]
    body: bytes = b""
    content_type: str = "application/json"


class FaultyEndpoint(ModelServer):
    """The fixture model server, with :meth:`garbage` and :meth:`cut` on top of ``fail``,
    ``hang`` and ``drop``. A raw fault serves the next request, whatever its key."""

    def __init__(self) -> None:
        super().__init__()
        self._raw: deque[_RawFault] = deque()
        self._replies: deque[str] = deque()
        self._raw_lock = threading.Lock()

    def queue_replies(self, *replies: str) -> None:
        """Answer the next successful requests with ``replies``, in order (then ``reply``)."""
        with self._raw_lock:
            self._replies.extend(replies)

    def garbage(
        self, body: bytes, *, content_type: str = "application/json", times: int = 1
    ) -> None:
        """Answer the next ``times`` requests with HTTP 200 and ``body`` as it is."""
        self._push_raw(_RawFault("garbage", body, content_type), times)

    def cut(self, *, chunked: bool = False, times: int = 1) -> None:
        """Send the next ``times`` replies half-way, then close the connection."""
        self._push_raw(_RawFault("cut-chunked" if chunked else "cut"), times)

    def _push_raw(self, fault: _RawFault, times: int) -> None:
        with self._raw_lock:
            self._raw.extend([fault] * times)

    def _answer(self, api: Api, record: Recorded) -> _Answer | None:
        with self._lock:
            scripted = bool(self._script)  # a scripted fault answers this one
        with self._raw_lock:
            if self._replies and not scripted:
                self.reply = self._replies.popleft()
        return super()._answer(api, record)

    def _serve(self, handler: _Handler) -> None:
        with self._raw_lock:
            fault = self._raw.popleft() if self._raw else None
        if fault is None:
            super()._serve(handler)
            return
        length = int(handler.headers.get("Content-Length") or 0)
        if length:
            handler.rfile.read(length)
        record = Recorded(handler.path, {k.lower(): v for k, v in handler.headers.items()}, None)
        record.status, record.response = 200, fault.kind
        with self._lock:
            self.requests.append(record)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            _send_raw(handler, fault)
        handler.close_connection = True


def _send_raw(handler: _Handler, fault: _RawFault) -> None:
    handler.send_response(200)
    handler.send_header("Content-Type", fault.content_type)
    if fault.kind == "garbage":
        handler.send_header("Content-Length", str(len(fault.body)))
        handler.end_headers()
        handler.wfile.write(fault.body)
        return
    half = _A_REPLY[: len(_A_REPLY) // 2]
    if fault.kind == "cut":
        handler.send_header("Content-Length", str(len(_A_REPLY)))
        handler.end_headers()
        handler.wfile.write(half)
    else:  # a chunked body whose last chunk never comes
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        handler.wfile.write(f"{len(half):x}\r\n".encode() + half + b"\r\n")
    handler.wfile.flush()
