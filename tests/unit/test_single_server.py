"""A SQLite registry is served by one ``latm serve``: the lock it holds while serving
refuses a second holder with the way to run replicas, and goes with its holder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import SecretStr

from orchestrator.api.server import hold_sqlite
from orchestrator.config import Settings
from orchestrator.errors import PreconditionFailed


def settings(url: str) -> Settings:
    return Settings(database_url=SecretStr(url))


def test_a_second_holder_of_a_sqlite_file_is_refused_until_the_first_lets_go(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'data' / 'registry.db'}"
    first = hold_sqlite(settings(url))
    assert first is not None
    assert (tmp_path / "data" / "registry.db.serve.lock").read_text().strip() == str(os.getpid())
    with pytest.raises(PreconditionFailed) as refused:
        hold_sqlite(settings(url))
    message = str(refused.value)
    assert f"another latm serve (pid {os.getpid()})" in message
    assert "LATM_DATABASE_URL=postgresql+psycopg://" in message
    other = hold_sqlite(settings(f"sqlite:///{tmp_path / 'other.db'}"))  # another file: fine
    assert other is not None
    other.close()
    first.close()
    again = hold_sqlite(settings(url))
    assert again is not None
    again.close()


@pytest.mark.parametrize(
    "url", ["postgresql+psycopg://latm@db/latm", "sqlite://", "sqlite:///:memory:", "not a url"]
)
def test_nothing_is_locked_where_several_servers_are_no_harm(url: str) -> None:
    assert hold_sqlite(settings(url)) is None
