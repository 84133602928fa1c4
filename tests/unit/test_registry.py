"""The tool registry's behaviour on SQLite files, and how a registry is opened.

``TestSqliteRegistry`` runs :class:`tests.support.registry.RegistryContract` (the
scenarios every database must pass) on SQLite files;
``tests/integration/test_registry_postgres.py`` runs the same class on a private
PostgreSQL server.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from orchestrator.errors import InvalidRequest
from orchestrator.registry import RegistryUnavailable, ToolRegistry, default_database_url
from tests.support.cards import make_card
from tests.support.registry import RegistryContract


class TestSqliteRegistry(RegistryContract):
    @pytest.fixture
    def new_database_url(self, tmp_path: Path) -> Callable[[], str]:
        made = iter(range(1_000_000))

        def new() -> str:
            folder = tmp_path / f"db{next(made)}"
            folder.mkdir()
            return f"sqlite:///{folder}/registry.db"

        return new


def test_the_default_registry_is_a_sqlite_file_in_the_user_data_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    expected = tmp_path / "data" / "latm" / "registry.db"
    assert default_database_url() == f"sqlite:///{expected}"
    with ToolRegistry.open() as registry:
        registry.publish("acme", make_card())
    assert expected.is_file()
    with ToolRegistry.open(f"sqlite:///{expected}") as registry:
        assert registry.get("acme", "sort_words").version == 1


@pytest.mark.parametrize("url", ["not a url", "nosuchdb://x/y"])
def test_an_unusable_url_is_invalid_request(url: str) -> None:
    with pytest.raises(InvalidRequest, match=r"URL|unsupported"):
        ToolRegistry.open(url)


def test_an_unreachable_database_is_registry_unavailable(tmp_path: Path) -> None:
    (tmp_path / "a_file").write_text("")
    with pytest.raises(RegistryUnavailable, match="cannot create the folder"):
        ToolRegistry.open(f"sqlite:///{tmp_path}/a_file/registry.db")
    with pytest.raises(RegistryUnavailable, match=r"postgres:\*\*\*@") as caught:
        ToolRegistry.open(f"postgresql://postgres:secret@/latm?host={tmp_path}/none")
    assert "secret" not in str(caught.value)
