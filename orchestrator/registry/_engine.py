"""Connecting to the registry's database: URLs, engines, migrations and error translation."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import platformdirs
from alembic import command
from alembic.config import Config
from sqlalchemy import URL, Engine, create_engine, event, make_url, text
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.orm import Session

from orchestrator.errors import InvalidRequest, MissingDependencyError, RegistryUnavailable

MIGRATIONS = "orchestrator.registry:migrations"
SQLITE_BUSY_TIMEOUT_S = 30.0
# The PostgreSQL advisory lock key that serialises migrations (any fixed 64-bit number).
MIGRATION_LOCK = 0x6C61_746D_6D69_6772  # "latmmigr"
# The other advisory locks have two int4 keys, a class and the hash of a key (they never
# collide with the one-bigint migration lock).
ADVISORY_LOCK = text("SELECT pg_advisory_xact_lock(:lock_class, hashtext(:key))")


def default_database_url() -> str:
    """The default registry: a SQLite file in the user's data folder (``latm/registry.db``)."""
    return f"sqlite:///{Path(platformdirs.user_data_dir('latm')) / 'registry.db'}"


def create_registry_engine(url: str) -> Engine:
    """An engine for ``url``, with the schema migrated to the newest revision."""
    parsed = _parse(url)
    try:
        engine = create_engine(parsed, **_engine_options(parsed))
    except NoSuchModuleError:
        raise InvalidRequest(f"unsupported registry database: {_shown(parsed)}") from None
    except ModuleNotFoundError as exc:
        raise MissingDependencyError.for_extra(exc.name or parsed.drivername, "postgres") from None
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    try:
        migrate(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine


def migrate(engine: Engine) -> None:
    """Upgrade the schema to the newest revision, in one transaction.

    On PostgreSQL the transaction first takes an advisory lock, held until it commits:
    replicas starting at once on a new database migrate it one after the other, and all
    but the first find it at the newest revision already. (SQLite serves one process.)"""
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    with translate_errors(f"migrating {_shown(engine.url)}"), engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def lock_until_commit(session: Session, lock_class: int, key: str) -> None:
    """Hold the advisory lock (``lock_class``, ``key``) until ``session``'s transaction
    ends, on PostgreSQL: transactions that count rows and then add one below a quota,
    on any replica, take turns. SQLite needs none: one writer at a time, and a writer
    whose snapshot is stale is refused."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(ADVISORY_LOCK, {"lock_class": lock_class, "key": key})


@contextmanager
def translate_errors(doing: str) -> Iterator[None]:
    """Turn the database's own errors into ``RegistryUnavailable``, naming what failed."""
    try:
        yield
    except SQLAlchemyError as exc:
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()
        raise RegistryUnavailable(
            f"tool registry: {doing} failed: {type(exc).__name__}: "
            f"{detail[0] if detail else 'no detail'}"
        ) from exc


def _parse(url: str) -> URL:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise InvalidRequest("the registry database URL is not a valid SQLAlchemy URL") from None
    if parsed.drivername == "postgresql":  # psycopg (3) is the driver the extra installs
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        folder = Path(parsed.database).parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RegistryUnavailable(
                f"tool registry: cannot create the folder {folder}: {exc.strerror}"
            ) from exc
    return parsed


def _engine_options(url: URL) -> dict[str, Any]:
    if url.get_backend_name() == "sqlite":
        return {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S}}
    return {"pool_pre_ping": True}


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # SQLite leaves foreign keys off per connection; usage rows cascade with their tool.
    # WAL lets readers (other processes too) go on while one writes, and with it
    # synchronous=NORMAL is still durable against crashes of the process (a power cut may
    # lose the last commits, never corrupt the file): a commit costs no fsync.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    if cursor.execute("PRAGMA journal_mode=WAL").fetchone()[0].lower() == "wal":
        cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _shown(url: URL) -> str:
    return url.render_as_string(hide_password=True)
