"""The template process answers every request it is sent, whatever goes wrong while it
handles one: fuzzing found requests it dropped, which left the caller waiting until its
deadline. A real template process, spoken to over its socket pair as the server does."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from sandbox.limits import Limits
from sandbox.template import FrameBuffer, encode_frame


class TemplateProcess:
    def __init__(self) -> None:
        self.socket, theirs = socket.socketpair()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sandbox.template", f"--fd={theirs.fileno()}", "--prefork=0"],
            pass_fds=[theirs.fileno()],
        )
        theirs.close()
        self.socket.settimeout(20)
        self.frames = FrameBuffer()
        self.pending: list[dict[str, Any]] = []
        assert self.receive()["op"] == "ready"

    def receive(self) -> dict[str, Any]:
        while not self.pending:
            data = self.socket.recv(65536)
            assert data, "the template closed its socket"
            self.pending += self.frames.feed(data)
        return self.pending.pop(0)

    def ask(self, message: dict[str, Any]) -> dict[str, Any]:
        self.socket.sendall(encode_frame(message))
        reply = self.receive()
        assert reply["id"] == message["id"], reply
        return reply

    def close(self) -> None:
        self.socket.close()
        self.process.wait(timeout=10)


@pytest.fixture
def template() -> Iterator[TemplateProcess]:
    process = TemplateProcess()
    yield process
    process.close()


def _exec(request_id: int, call: str) -> dict[str, Any]:
    return {
        "op": "exec",
        "id": request_id,
        "tool_id": "",
        "call": call,
        "args_json": "",
        "entrypoint": "",
        "limits": Limits().to_dict(),
    }


def test_a_request_the_template_fails_on_is_answered(template: TemplateProcess) -> None:
    reply = template.ask({"op": "load", "id": 1})  # no source: handling it raises
    assert reply["status"] == "error"
    assert reply["error"]["type"] == "SandboxError"
    assert "KeyError" in reply["error"]["message"]
    reply = template.ask({**_exec(2, "1"), "limits": {"no_such_limit": 1}})
    assert reply["status"] == "crashed"
    assert reply["error"]["type"] == "SandboxError"
    # The template goes on serving.
    assert template.ask({"op": "load", "id": 3, "source": "x = 1"})["status"] == "ok"
    assert template.ask(_exec(4, "21 * 2")) | {"usage": None} == {
        "id": 4,
        "status": "ok",
        "value_json": "42",
        "stdout": "",
        "stderr": "",
        "usage": None,
    }


def test_errors_only_the_compiler_finds_are_answered_as_syntax_errors(
    template: TemplateProcess,
) -> None:
    """``return`` outside a function parses, then fails in compile(): the request was
    dropped and the caller waited for its deadline."""
    reply = template.ask({"op": "load", "id": 1, "source": "def f():\n    pass\nreturn 1"})
    assert reply["status"] == "error"
    assert reply["error"] == {
        "type": "SyntaxError",
        "message": "line 3: 'return' outside function",
        "line": 3,
        "origin": "tool",
    }
    reply = template.ask(_exec(2, "break"))
    assert reply["status"] == "error"
    assert reply["error"]["message"] == "line 1: 'break' outside loop"
    assert reply["error"]["origin"] == "call"
