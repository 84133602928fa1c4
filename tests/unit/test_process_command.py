"""How the process backend starts a sandbox server under bubblewrap when this install
lives in a folder the sandbox has its own scratch tmpfs at (a checkout under /tmp)."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.sandboxes import process
from orchestrator.sandboxes.process import ProcessIsolation, _ServerProcess, in_scratch

CHECKOUT = Path("/tmp/checkout")  # a path in the command, never created


def test_only_roots_in_scratch_folders_are_kept() -> None:
    roots = [CHECKOUT / ".venv", Path("/opt/python"), Path("/dev/shm/x"), Path("/tmpfoo")]
    assert in_scratch(roots) == [CHECKOUT / ".venv", Path("/dev/shm/x")]


def test_an_install_under_tmp_is_bound_and_kept_by_the_scrub(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    roots = [CHECKOUT / ".venv", CHECKOUT / "sandbox", Path("/opt/python")]
    monkeypatch.setattr(process, "_python_roots", lambda: roots)
    server = _ServerProcess(ProcessIsolation.BWRAP, prefork=0, allow_modules=[])
    try:
        command = server.command
        inner = command[command.index("--") + 1 :]
        assert "--scratch=/tmp" in inner
        assert [a for a in inner if a.startswith("--keep=")] == [
            f"--keep={CHECKOUT / '.venv'}",
            f"--keep={CHECKOUT / 'sandbox'}",
        ]
        # The binds come after the scratch tmpfs at /tmp, so they show inside it.
        binds = command.index("--tmpfs", command.index("/dev/shm") + 1)
        assert command.index(str(CHECKOUT / ".venv")) > binds
    finally:
        server.dir.rmdir()


def test_an_install_elsewhere_keeps_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(process, "_python_roots", lambda: [Path("/work/checkout/.venv")])
    server = _ServerProcess(ProcessIsolation.BWRAP, prefork=0, allow_modules=[])
    try:
        assert not [a for a in server.command if a.startswith("--keep=")]
    finally:
        server.dir.rmdir()
