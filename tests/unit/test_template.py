"""The template process answers every request it is sent, whatever goes wrong while it
handles one: fuzzing found requests it dropped, which left the caller waiting until its
deadline. A real template process, spoken to over its socket pair as the server does."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.limits import Limits
from sandbox.template import FrameBuffer, encode_frame, scrub


class TemplateProcess:
    def __init__(self, prefork: int = 0) -> None:
        self.socket, theirs = socket.socketpair()
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sandbox.template",
                f"--fd={theirs.fileno()}",
                f"--prefork={prefork}",
            ],
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


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def socket_inodes(pid: int) -> set[str]:
    links = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            links.append(os.readlink(fd))
        except OSError:
            continue
    return {link for link in links if link.startswith("socket:")}


def wait_until(condition: Any, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def test_workers_come_from_a_zygote_that_holds_none_of_the_templates_sockets() -> None:
    """The zygote forks every worker. It must not keep the template's control socket
    open: the server would then never see a dead template's socket close."""
    template = TemplateProcess(prefork=2)
    try:
        reply = template.ask(_exec(1, "ans = 6 * 7"))
        assert reply["status"] == "ok"
        assert reply["value_json"] == "42"
        assert reply["usage"]["cpu_ms"] > 0
        (zygote,) = children(template.process.pid)
        assert wait_until(lambda: len(children(zygote)) == 2)  # the spares
        # Its own end of the socket pair and its wake-up channel's two ends only: the
        # template's control socket is closed, and it shares no socket with the template.
        assert len(socket_inodes(zygote)) == 3
        assert not socket_inodes(zygote) & socket_inodes(template.process.pid)
    finally:
        template.close()
    assert wait_until(lambda: not Path(f"/proc/{zygote}").exists() or _zombie(zygote))


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_a_template_whose_zygote_dies_exits_and_takes_its_spares_along() -> None:
    """Without its zygote a template can neither start nor reap a worker: it exits
    (the server then starts a new one) and leaves no spare behind."""
    template = TemplateProcess(prefork=2)
    assert template.ask(_exec(1, "1 + 1"))["value_json"] == "2"
    (zygote,) = children(template.process.pid)
    assert wait_until(lambda: len(children(zygote)) == 2)
    spares = children(zygote)
    os.kill(zygote, signal.SIGKILL)
    assert template.process.wait(timeout=10) == 1
    assert template.socket.recv(65536) == b""
    template.socket.close()
    assert wait_until(
        lambda: all(not Path(f"/proc/{pid}").exists() or _zombie(pid) for pid in spares)
    )


def test_scrub_removes_a_tree_deeper_than_recursion_and_paths_allow(tmp_path: Path) -> None:
    """A worker may leave 3,000 nested folders (and take its own access away): the
    template's clean-up neither recurses nor builds paths longer than PATH_MAX."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    (scratch / "keep.sock").write_text("")
    descriptor = os.open(scratch, os.O_RDONLY)
    for _ in range(3000):
        os.mkdir("d", dir_fd=descriptor)
        inner = os.open("d", os.O_RDONLY, dir_fd=descriptor)
        os.close(descriptor)
        descriptor = inner
    with open(os.open("f", os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=descriptor), "w") as file:
        file.write("left behind")
    os.fchmod(descriptor, 0)
    os.close(descriptor)
    scrub((str(scratch),), frozenset({str(scratch / "keep.sock")}))
    assert sorted(p.name for p in scratch.iterdir()) == ["keep.sock"]


def test_scrub_keeps_an_install_bound_deep_in_scratch_and_the_folders_leading_to_it(
    tmp_path: Path,
) -> None:
    """A checkout under /tmp shows in a bwrap sandbox's /tmp (its venv and packages are
    bound there): the scrub leaves those and the folders that lead to them in place,
    never moving them, and still removes what a call left beside them."""
    scratch = tmp_path / "tmp"
    venv = scratch / "checkout" / ".venv"
    package = scratch / "checkout" / "protos" / "latm"
    for kept in (venv / "lib", package):
        kept.mkdir(parents=True)
        (kept / "module.py").write_text("")
    (scratch / "checkout" / "left.txt").write_text("left behind")
    (scratch / "checkout" / "protos" / "planted").mkdir()
    (scratch / "poison").write_text("left behind")
    scrub((str(scratch),), frozenset({str(venv), str(package)}))
    assert sorted(str(p.relative_to(scratch)) for p in scratch.rglob("*")) == [
        "checkout",
        "checkout/.venv",
        "checkout/.venv/lib",
        "checkout/.venv/lib/module.py",
        "checkout/protos",
        "checkout/protos/latm",
        "checkout/protos/latm/module.py",
    ]
