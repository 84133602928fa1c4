"""A local stand-in for remote model providers, for testing the adapters over real HTTP.

This is NOT a real provider and proves nothing about Anthropic's or OpenAI's servers. It is a
fixture we wrote: a small HTTP server (standard library only, on 127.0.0.1, a free port) that
speaks the *shape* of two public APIs, as far as the official SDKs need it:

* ``POST /v1/messages``: Anthropic's Messages API. It wants the key (in ``x-api-key``, or as
  ``Authorization: Bearer`` which the anthropic 2.x SDK sends) and the ``anthropic-version``
  header, and answers ``{"type": "message", "content": [...],
  "stop_reason": ..., "usage": {"input_tokens", "output_tokens"}}``, or errors as
  ``{"type": "error", "error": {"type": "authentication_error", "message": ...}}``.
* ``POST /v1/chat/completions``: OpenAI's chat-completions API. It wants
  ``Authorization: Bearer KEY`` and answers ``{"object": "chat.completion", "choices": [...],
  "usage": {"prompt_tokens", "completion_tokens", "total_tokens"}}``, or errors as
  ``{"error": {"message", "type", "param", "code"}}``.

What it does is honest and simple, so tests can predict it exactly:

* The reply is :attr:`ModelServer.reply`, cut at the first stop sequence the request names
  (``stop_reason`` ``stop_sequence``), then to ``max_tokens`` words (``stop_reason``
  ``max_tokens``, ``finish_reason`` ``length``).
* Tokens are words: ``input_tokens`` counts the whitespace-separated words of the prompt (the
  system prompt and every message), ``output_tokens`` the words of the reply sent back.
* A wrong key gets HTTP 401 with a message that QUOTES the key presented, as real providers
  do, so tests can prove the platform never passes it on.
* Tests script the next requests: :meth:`ModelServer.fail` (an HTTP error, optionally with
  ``retry-after``), :meth:`ModelServer.hang` (answer late, for timeouts) and
  :meth:`ModelServer.drop` (close the connection without answering, like a server dying
  mid-request). Each scripted behaviour serves one request that passed the key check.
* Every request is recorded (path, headers, JSON body, and what was answered), so tests can
  assert what the SDK sent and how many attempts it made.
"""

from __future__ import annotations

import json
import math
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, Self
from urllib.parse import urlsplit

ANTHROPIC_PATH = "/v1/messages"
OPENAI_PATH = "/v1/chat/completions"
DEFAULT_KEY = "sk-fixture-accepted-0123456789abcdef"
DEFAULT_REPLY = "apple banana cherry"

Api = Literal["anthropic", "openai"]
_APIS: dict[str, Api] = {ANTHROPIC_PATH: "anthropic", OPENAI_PATH: "openai"}

# The error ``type`` each provider puts in its error body, by HTTP status.
_ANTHROPIC_ERRORS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
_OPENAI_ERRORS = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    503: ("server_error", None),
}


@dataclass
class Recorded:
    """One request as the server saw it, and what it answered (``status`` None: dropped)."""

    path: str
    headers: dict[str, str]  # names lower-cased
    body: Any
    status: int | None = None
    response: Any = None


@dataclass(frozen=True)
class _Behaviour:
    kind: Literal["fail", "hang", "drop"]
    status: int = 500
    retry_after: float | None = None
    message: str | None = None
    seconds: float = 0.0


@dataclass
class _Answer:
    status: int
    payload: Any
    headers: dict[str, str] = field(default_factory=dict)


class ModelServer:
    """The fixture server. Set :attr:`api_key` and :attr:`reply`; script with :meth:`fail`,
    :meth:`hang` and :meth:`drop`; read :attr:`requests`."""

    def __init__(self, api_key: str = DEFAULT_KEY, reply: str = DEFAULT_REPLY) -> None:
        self.api_key = api_key
        self.reply = reply
        self.requests: list[Recorded] = []
        self._script: deque[_Behaviour] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ---

    def start(self) -> Self:
        httpd = _HTTPServer(("127.0.0.1", 0), _Handler)
        httpd.fixture = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # releases handlers that hang
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``: the ``base_url`` for the Anthropic SDK."""
        assert self._httpd is not None, "the server is not started"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    @property
    def openai_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``: the ``base_url`` for the OpenAI SDK."""
        return self.url + "/v1"

    # --- scripting ---

    def fail(
        self,
        status: int,
        *,
        times: int = 1,
        retry_after: float | None = None,
        message: str | None = None,
    ) -> None:
        """Answer the next ``times`` requests with HTTP ``status`` in the provider's error shape.

        With ``retry_after`` (seconds), send ``retry-after-ms`` and ``retry-after`` headers.
        """
        self._push(
            _Behaviour("fail", status=status, retry_after=retry_after, message=message), times
        )

    def hang(self, seconds: float, *, times: int = 1) -> None:
        """Wait ``seconds`` before answering the next ``times`` requests (normally)."""
        self._push(_Behaviour("hang", seconds=seconds), times)

    def drop(self, *, times: int = 1) -> None:
        """Read the next ``times`` requests, then close the connection without answering."""
        self._push(_Behaviour("drop"), times)

    def _push(self, behaviour: _Behaviour, times: int) -> None:
        with self._lock:
            self._script.extend([behaviour] * times)

    def _next(self) -> _Behaviour | None:
        with self._lock:
            return self._script.popleft() if self._script else None

    def attempts(self, path: str | None = None) -> int:
        """How many requests arrived (to ``path``, when given)."""
        with self._lock:
            return sum(1 for r in self.requests if path is None or r.path == path)

    # --- serving (called on the server's threads) ---

    def _serve(self, handler: _Handler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        path = urlsplit(handler.path).path
        record = Recorded(path, {k.lower(): v for k, v in handler.headers.items()}, body)
        with self._lock:
            self.requests.append(record)
        api = _APIS.get(path)
        answer: _Answer | None
        if api is None:
            answer = _Answer(404, {"error": {"message": f"no route {path}", "type": "not_found"}})
        else:
            answer = self._answer(api, record)
        if answer is None:  # dropped: close without a word
            handler.close_connection = True
            return
        record.status, record.response = answer.status, answer.payload
        _send(handler, answer)

    def _answer(self, api: Api, record: Recorded) -> _Answer | None:
        refused = _check_auth(api, record.headers, self.api_key)
        if refused is not None:
            return refused
        behaviour = self._next()
        if behaviour is not None:
            if behaviour.kind == "drop":
                return None
            if behaviour.kind == "fail":
                return _error(api, behaviour.status, behaviour.message, behaviour.retry_after)
            if self._stopping.wait(behaviour.seconds):
                return None  # the fixture is shutting down
        if api == "anthropic":
            return _anthropic_reply(record.body, self.reply)
        return _openai_reply(record.body, self.reply)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    fixture: ModelServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up (after a timeout) are expected here: stay quiet."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real endpoints and the SDKs' pools use
    server: _HTTPServer

    def do_POST(self) -> None:
        self.server.fixture._serve(self)

    def log_message(self, format: str, *args: Any) -> None:
        """No access log on stderr."""


def _send(handler: BaseHTTPRequestHandler, answer: _Answer) -> None:
    data = json.dumps(answer.payload).encode()
    try:
        handler.send_response(answer.status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.send_header("request-id", f"req_{uuid.uuid4().hex[:24]}")
        for name, value in answer.headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)
    except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting
        handler.close_connection = True


def _check_auth(api: Api, headers: dict[str, str], accepted: str) -> _Answer | None:
    """401 (or 400 for a missing version header) like the provider, quoting the key sent."""
    if api == "anthropic":
        # Older SDKs send the key as ``x-api-key``; anthropic 2.x as ``Authorization: Bearer``.
        key = headers.get("x-api-key") or _bearer(headers)
        if not key:
            return _error(api, 401, "x-api-key header is required")
        if key != accepted:
            return _error(api, 401, f"invalid x-api-key: {key}")
        if "anthropic-version" not in headers:
            return _error(api, 400, "anthropic-version: header is required")
        return None
    key = _bearer(headers)
    if not key:
        return _error(api, 401, "You didn't provide an API key.")
    if key != accepted:
        return _error(
            api,
            401,
            f"Incorrect API key provided: {key}. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
        )
    return None


def _bearer(headers: dict[str, str]) -> str:
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _error(api: Api, status: int, message: str | None, retry_after: float | None = None) -> _Answer:
    message = message or f"fixture error {status}"
    headers: dict[str, str] = {}
    if retry_after is not None:
        headers["retry-after-ms"] = f"{retry_after * 1000:g}"
        headers["retry-after"] = str(math.ceil(retry_after))
    if api == "anthropic":
        kind = _ANTHROPIC_ERRORS.get(status, "api_error")
        payload: Any = {"type": "error", "error": {"type": kind, "message": message}}
    else:
        kind, code = _OPENAI_ERRORS.get(status, ("server_error", None))
        payload = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return _Answer(status, payload, headers)


def words(text: str) -> int:
    """The fixture's token count: whitespace-separated words."""
    return len(text.split())


def _text_of(content: Any) -> str:
    """A message's text, whether a string or a list of content blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(block.get("text", ""))
            for block in content
            if isinstance(block, dict) and block.get("type") == "text"
        )
    return ""


def _generate(reply: str, max_tokens: int, stop: list[str]) -> tuple[str, str, str | None]:
    """The reply cut at the first stop sequence, then to ``max_tokens`` words.

    Returns the text, the Messages API stop reason, and the stop sequence that ended it.
    """
    text, reason, hit = reply, "end_turn", None
    cuts = [(reply.find(s), s) for s in stop if s and s in reply]
    if cuts:
        at, hit = min(cuts)
        text, reason = reply[:at], "stop_sequence"
    if words(text) > max_tokens:
        text, reason, hit = " ".join(text.split()[:max_tokens]), "max_tokens", None
    return text, reason, hit


def _anthropic_reply(body: Any, reply: str) -> _Answer:
    if not isinstance(body, dict):
        return _error("anthropic", 400, "request body must be a JSON object")
    model, max_tokens, messages = body.get("model"), body.get("max_tokens"), body.get("messages")
    if not isinstance(model, str) or not model:
        return _error("anthropic", 400, "model: Field required")
    if not isinstance(max_tokens, int) or max_tokens < 1:
        return _error("anthropic", 400, "max_tokens: Field required")
    if not isinstance(messages, list) or not messages:
        return _error("anthropic", 400, "messages: at least one message is required")
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("user", "assistant"):
            return _error(
                "anthropic",
                400,
                f"messages.{i}.role: Input should be 'user' or 'assistant'"
                " (the system prompt goes in the top-level 'system' field)",
            )
    prompt = [_text_of(body.get("system", ""))] + [_text_of(m.get("content")) for m in messages]
    stop = body.get("stop_sequences") or []
    text, reason, hit = _generate(reply, max_tokens, list(stop))
    return _Answer(
        200,
        {
            "id": f"msg_{uuid.uuid4().hex[:24]}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": reason,
            "stop_sequence": hit,
            "usage": {"input_tokens": sum(map(words, prompt)), "output_tokens": words(text)},
        },
    )


def _openai_reply(body: Any, reply: str) -> _Answer:
    if not isinstance(body, dict):
        return _error("openai", 400, "request body must be a JSON object")
    model, messages = body.get("model"), body.get("messages")
    if not isinstance(model, str) or not model:
        return _error("openai", 400, "you must provide a model parameter")
    if not isinstance(messages, list) or not messages:
        return _error("openai", 400, "'messages' must contain at least one message")
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens") or 4096
    stop = body.get("stop") or []
    text, reason, _ = _generate(reply, int(max_tokens), [stop] if isinstance(stop, str) else stop)
    prompt_tokens = sum(words(_text_of(m.get("content"))) for m in messages if isinstance(m, dict))
    completion_tokens = words(text)
    return _Answer(
        200,
        {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "length" if reason == "max_tokens" else "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        },
    )
