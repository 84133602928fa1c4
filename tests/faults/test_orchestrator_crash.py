"""The orchestrator (``latm serve``, a real process) killed mid-``MakeTool``, then restarted.

The server runs the docker backend with a SQLite registry. While a maker job is in the
sandbox and another client keeps importing tools, the server gets SIGKILL: no draining, no
clean-up. The clients see UNAVAILABLE. A new server on the same registry and socket folder
then starts: the registry opens and passes SQLite's integrity check, every import that was
acknowledged is there and intact, nothing of the killed job is listed or fetchable, every
container and socket folder of the dead server is gone, and the new server serves calls and
publishes a new tool.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest

from orchestrator.client import Client
from orchestrator.errors import ToolNotFound, Unavailable
from orchestrator.latm.cards import ToolCard
from orchestrator.sandboxes.docker import LABEL_OWNER, owner_id
from tests.support.api import ADD_CARD
from tests.support.backends import require_docker
from tests.support.cards import card_json
from tests.support.cli import latm, serve
from tests.support.maker import SORT, maker_script, word_sorting

pytestmark = [pytest.mark.integration, pytest.mark.docker]

# The maker's tool never returns: each of its calls runs until the sandbox stops it.
SPINNING = SORT.replace(
    '    words = question.split("List:", 1)[-1].split()', "    while True:\n        pass"
)


def numbered_card(number: int) -> str:
    source = f'def add_{number}(a, b):\n    """Add two numbers."""\n    return a + b + {number}\n'
    answer = str(5 + number)
    return card_json(
        source, f"add_{number}", "What is 2 plus 3?", f"ans = add_{number}(2, 3)", answer
    )


@pytest.fixture
def sockets() -> Iterator[Path]:
    """The servers' socket folder: short, for Unix socket paths (pytest's are long)."""
    folder = Path(tempfile.mkdtemp(prefix="latm-faults-"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def env(tmp_path: Path, sockets: Path) -> dict[str, str]:
    user = tmp_path / "user.json"
    user.write_text("[]")
    return {
        **os.environ,
        "LATM_DATABASE_URL": f"sqlite:///{tmp_path / 'registry.db'}",
        "LATM_BACKEND": "docker",
        "LATM_DOCKER_SOCKET_DIR": str(sockets),
        "LATM_POOL_MIN_IDLE": "1",
        "LATM_POOL_MAX_SIZE": "2",
        "LATM_USER_MODEL": f"scripted:{user}",
        "LATM_QUOTA_REQUESTS_PER_MINUTE": "1000000",  # the importer calls as fast as it can
        "LATM_LOG_LEVEL": "WARNING",  # stderr is read only at the end
    }


def with_maker(env: dict[str, str], folder: Path, steps: list[str]) -> dict[str, str]:
    script = folder / f"maker-{len(list(folder.glob('maker-*')))}.json"
    script.write_text(json.dumps(steps))
    return {**env, "LATM_MAKER_MODEL": f"scripted:{script}"}


@dataclass
class Served:
    """A ``latm serve`` process, where it listens, and (once it ended) its stderr."""

    process: subprocess.Popen[str]
    address: str
    stderr: str = ""


@contextlib.contextmanager
def running(env: dict[str, str], address: str) -> Iterator[Served]:
    """A ``latm serve`` process; killed on the way out if it still runs."""
    served = Served(*serve(env, "--listen", address))
    try:
        yield served
    finally:
        if served.process.poll() is None:
            served.process.kill()
        _, served.stderr = served.process.communicate(timeout=30)


class Background(threading.Thread):
    """Runs ``work`` on a thread and keeps its error: the calls the kill interrupts."""

    def __init__(self, work: Any) -> None:
        super().__init__(daemon=True)
        self.work = work
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.work()
        except BaseException as exc:  # reported by the test
            self.error = exc


def containers_of(owner: str) -> list[Any]:
    engine = docker.from_env()
    return list(
        engine.containers.list(
            all=True, filters={"label": f"{LABEL_OWNER}={owner}"}, ignore_removed=True
        )
    )


def test_orchestrator_killed_mid_make_tool_restarts_clean(
    env: dict[str, str], tmp_path: Path, sockets: Path
) -> None:
    require_docker("runc")
    key = latm(env, "tenants", "create", "acme").stdout.strip()
    address = f"unix:{tmp_path}/api.sock"
    examples = word_sorting()
    acknowledged: list[str] = []
    events: list[str] = []

    with running(with_maker(env, tmp_path, maker_script(SPINNING) * 3), address) as first:
        dead_owner = owner_id(first.process.pid)
        with Client(first.address, key) as client:
            client.import_tool(ADD_CARD)

            def make() -> None:
                for event in client.make_tool("word_sorting", examples, timeout_s=60):
                    events.append(str(event.WhichOneof("event")))

            def keep_importing() -> None:
                with Client(first.address, key) as importer:
                    for number in range(100_000):
                        importer.import_tool(numbered_card(number))
                        acknowledged.append(f"add_{number}")

            maker, importer = Background(make), Background(keep_importing)
            maker.start()
            importer.start()
            deadline = time.monotonic() + 30
            while "attempt" not in events or len(acknowledged) < 5:
                assert time.monotonic() < deadline, "the make job and imports did not start"
                assert maker.error is None
                assert importer.error is None
                time.sleep(0.05)
            time.sleep(1.0)  # the tool now spins in its sandbox
            assert maker.is_alive()
            first.process.send_signal(signal.SIGKILL)
            maker.join(10)
            importer.join(10)

    assert first.process.returncode == -signal.SIGKILL
    assert events[-1] != "tool"
    for thread in (maker, importer):
        assert not thread.is_alive()
        assert isinstance(thread.error, Unavailable), thread.error
    assert containers_of(dead_owner)  # the dead server left them; the next one cleans up

    with running(with_maker(env, tmp_path, maker_script(SORT)), address) as second:
        assert containers_of(dead_owner) == []
        dead_folder = f"{first.process.pid}-{dead_owner.rsplit('/', 1)[1]}"
        assert not (sockets / dead_folder).exists()
        stored = intact_tools(tmp_path / "registry.db")
        with Client(second.address, key) as client:
            listed = {tool.name for tool in client.list_tools()}
            assert listed == set(stored)
            assert {"add", *acknowledged} <= listed
            assert listed <= {"add", *acknowledged, f"add_{len(acknowledged)}"}
            for name in listed:  # every card is whole: its sha256 is checked on reading
                card = ToolCard.from_json(client.export_tool(name))
                assert card.name == name
            with pytest.raises(ToolNotFound):
                client.get_tool("sort_words")

            assert client.execute_tool("add", {"a": 2, "b": 40}).value == 42
            made = [e.WhichOneof("event") for e in client.make_tool("word_sorting", examples)]
            assert made[-1] == "tool"
            assert client.get_tool("sort_words").version == 1
        second_owner = owner_id(second.process.pid)
        second.process.send_signal(signal.SIGTERM)
        second.process.wait(timeout=30)
    assert second.process.returncode == 0, second.stderr[-2000:]
    assert containers_of(second_owner) == []


def intact_tools(database: Path) -> list[str]:
    """The stored tools' names, after SQLite's own integrity check of the file."""
    with contextlib.closing(sqlite3.connect(database)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return [row[0] for row in db.execute("SELECT name FROM tools")]


def test_a_socket_folder_too_long_is_refused_at_start(env: dict[str, str], tmp_path: Path) -> None:
    """Sandbox sockets below a long folder could never be reached (Unix socket paths hold
    107 bytes): the server refuses to start, naming the setting, instead of waiting for
    each sandbox in vain."""
    require_docker("runc")
    folder = tmp_path / ("s" * 60)
    env = {**with_maker(env, tmp_path, []), "LATM_DOCKER_SOCKET_DIR": str(folder)}
    refused = latm(env, "serve", "--listen", f"unix:{tmp_path}/api.sock")
    assert refused.returncode == 2
    assert "too long" in refused.stderr
    assert "LATM_DOCKER_SOCKET_DIR" in refused.stderr
    assert not folder.exists()
