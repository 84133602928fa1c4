"""The registry's disk fills up under a running server.

The SQLite registry lives on a small tmpfs mounted for the test; a filler file takes the
rest. Then writing a tool (ImportTool, and MakeTool's publication) fails with
``RegistryUnavailable`` (UNAVAILABLE, saying the disk is full), reads and tool calls keep
working, nothing half-written is visible, and once space is freed the same server writes
again, without a restart, including the usage metered while the disk was full.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import pytest

from orchestrator.errors import RegistryUnavailable, ToolNotFound
from tests.support.api import ADD, ADD_CARD, start_server
from tests.support.backends import require_bwrap
from tests.support.cards import card_json
from tests.support.maker import SORT, maker_script, word_sorting
from tests.support.processes import eventually

pytestmark = pytest.mark.integration

DISK = "8m"
# A tool bigger than anything the registry has written so far (a 200 KiB string inside).
BIG = ADD.replace("add", "add_big").replace(
    "    return", f'    note = "{"x" * 200_000}"\n    return'
)
BIG_CARD = card_json(BIG, "add_big", "What is 2 plus 3?", "ans = add_big(a=2, b=3)", "5")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A folder on a tmpfs of its own, 8 MiB; unmounted after the test."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    folder = tmp_path / "disk"
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK},mode=0700", "latm-faults", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        if subprocess.run(["umount", str(folder)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path) -> Path:
    """Take every free byte of ``folder``'s file system with one file; return it. First
    the registry's write-ahead log is emptied, so no write can reuse its room."""
    with contextlib.closing(sqlite3.connect(folder / "registry.db")) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    filler = folder / "filler"
    with filler.open("wb", buffering=0) as out:
        for block in (b"\0" * 65536, b"\0"):  # big writes, then the last partial block
            with pytest.raises(OSError, match="No space left on device") as full:
                write_forever(out, block)
            assert full.value.errno == errno.ENOSPC
    assert os.statvfs(folder).f_bavail == 0
    return filler


def write_forever(out: BinaryIO, block: bytes) -> None:
    while True:
        out.write(block)


def intact(folder: Path) -> list[tuple[str, int]]:
    """The stored tools (name, version) after SQLite's own integrity check."""
    with contextlib.closing(sqlite3.connect(folder / "registry.db")) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return sorted(db.execute("SELECT name, version FROM tools").fetchall())


async def test_full_disk_refuses_writes_keeps_reads_and_recovers(small_disk: Path) -> None:
    require_bwrap()
    api = await start_server(small_disk, maker=maker_script(SORT) * 2, user=["ans = add(a=2, b=3)"])
    examples = word_sorting()
    try:
        async with api.client() as client:
            await client.import_tool(ADD_CARD)
            filler = fill(small_disk)

            with pytest.raises(RegistryUnavailable, match="disk is full"):
                await client.import_tool(BIG_CARD)
            with pytest.raises(RegistryUnavailable, match="disk is full"):
                [event async for event in client.make_tool("word_sorting", examples)]
            # Reads, and calls of stored tools, go on; nothing half-written shows.
            assert [tool.name for tool in await client.list_tools()] == ["add"]
            assert (await client.get_tool("add")).version == 1
            assert json.loads(await client.export_tool("add"))["name"] == "add"
            assert (await client.execute_tool("add", {"a": 2, "b": 40})).value == 42
            assert (await client.solve("What is 2 plus 3?", tool="add")).answer == "5"
            for name in ("add_big", "sort_words"):
                with pytest.raises(ToolNotFound):
                    await client.get_tool(name)
            assert intact(small_disk) == [("add", 1)]

            filler.unlink()
            assert (await client.import_tool(BIG_CARD)).version == 1
            events = [event async for event in client.make_tool("word_sorting", examples)]
            assert events[-1].WhichOneof("event") == "tool"
            names = [tool.name for tool in await client.list_tools()]
            assert names == ["add", "add_big", "sort_words"]
            assert (await client.execute_tool("add_big", {"a": 1, "b": 2})).value == 3
            # What was metered while the disk was full is written now, not lost: the
            # failed job's two maker completions, the Solve's, and the new job's two.
            assert (await client.get_usage()).total.calls == 5
            registry = api.server.engine.registry
            await eventually(
                lambda: registry.usage("acme", "add")["calls"] == 1, 10.0, "the use is recorded"
            )
    finally:
        await api.server.stop(grace_s=1.0)
    assert intact(small_disk) == [("add", 1), ("add_big", 1), ("sort_words", 1)]
