"""A private PostgreSQL server for the suites that need one: started by the test session
with initdb and pg_ctl, reached only through a Unix socket in a temporary folder (no TCP),
with a fresh database per test (``create_database``). Under ``CI=true`` a missing
PostgreSQL fails the test (see ``tests/conftest.py``)."""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

INSTALL_HINT = "install the Debian package 'postgresql' (apt-get install postgresql)"


@dataclass
class PostgresServer:
    """A running private server: its binaries, its folder (data, socket, log) and its user."""

    bin_dir: Path
    root: Path
    run_as: list[str]
    counter: Iterator[int] = field(default_factory=itertools.count)

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    def run(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        command = [*self.run_as, str(self.bin_dir / tool), *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)

    def create_database(self) -> str:
        """A new empty database; returns its SQLAlchemy URL."""
        import psycopg
        from psycopg import sql

        name = f"latm_{next(self.counter)}"
        with psycopg.connect(
            host=str(self.root), user="postgres", dbname="postgres", autocommit=True
        ) as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return f"postgresql+psycopg://postgres@/{name}?host={self.root}"


def _bin_dir() -> Path | None:
    """The newest PostgreSQL's binaries: Debian's versioned folders, else PATH."""
    found = glob.glob("/usr/lib/postgresql/*/bin/initdb")
    if found:
        newest = max(found, key=lambda path: int(Path(path).parts[-3].split(".")[0]))
        return Path(newest).parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def _run_as() -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the 'postgres' user then."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip(f"running as root without a 'postgres' user to run the server; {INSTALL_HINT}")
    return ["runuser", "-u", "postgres", "--"]


def _start(server: PostgresServer) -> None:
    init = server.run(
        "initdb", "-D", str(server.data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"
    )
    if init.returncode != 0:
        pytest.fail(f"initdb failed:\n{init.stdout}{init.stderr}")
    options = f"-k {server.root} -c listen_addresses='' -c fsync=off"
    start = server.run(
        "pg_ctl", "-D", str(server.data), "-l", str(server.log), "-o", options, "-w", "start"
    )
    if start.returncode != 0:
        log = server.log.read_text() if server.log.exists() else ""
        pytest.fail(f"pg_ctl start failed:\n{start.stdout}{start.stderr}\n{log}")


@pytest.fixture(scope="session")
def postgres(request: pytest.FixtureRequest) -> Iterator[PostgresServer]:
    """A private PostgreSQL for the session, stopped (fast) and deleted afterwards."""
    bin_dir = _bin_dir()
    if bin_dir is None:
        pytest.skip(f"PostgreSQL (initdb, pg_ctl) was not found; {INSTALL_HINT}")
    pytest.importorskip("psycopg", reason="psycopg is not installed: pip install 'latm[postgres]'")
    run_as = _run_as()
    root = Path(tempfile.mkdtemp(prefix="latm-pg-"))
    if run_as:
        shutil.chown(root, user="postgres", group="postgres")
    server = PostgresServer(bin_dir=bin_dir, root=root, run_as=run_as)
    try:
        _start(server)
        yield server
    finally:
        server.run("pg_ctl", "-D", str(server.data), "-m", "fast", "-w", "stop")
        if request.session.testsfailed and server.log.exists():
            print(f"PostgreSQL log tail:\n{server.log.read_text()[-4000:]}")
        shutil.rmtree(root, ignore_errors=True)
