"""The database of saved pipelines: where it is, its engine, and its migrations.

PostgreSQL in production (CONSTELLATION_DATABASE_URL, tables in the schema
CONSTELLATION_DATABASE_SCHEMA, default `constellation`, so they may share Dagster's
database); a SQLite file under the work folder (`var/constellation.db`) by default.
The API applies the migrations when it starts (`migrate`); the code location's
sensor only reads and records ticks, after `check_current`.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url

DATABASE_URL_ENV = "CONSTELLATION_DATABASE_URL"
SCHEMA_ENV = "CONSTELLATION_DATABASE_SCHEMA"
DEFAULT_SCHEMA = "constellation"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
MIGRATION_LOCK = 0x636F6E73  # pg_advisory_lock id: two API processes never migrate at once


class DatabaseNotReady(Exception):
    """The database has not been migrated to this code's schema yet (the API does it)."""


def database_url() -> str:
    """$CONSTELLATION_DATABASE_URL, else a SQLite file in $CONSTELLATION_VAR (default `var`)."""
    url = os.environ.get(DATABASE_URL_ENV, "")
    if url:
        return url
    folder = Path(os.environ.get("CONSTELLATION_VAR", "var")).resolve()
    return f"sqlite:///{folder / 'constellation.db'}"


def schema_name() -> str:
    name = os.environ.get(SCHEMA_ENV, "") or DEFAULT_SCHEMA
    if not SCHEMA_NAME.fullmatch(name):
        raise ValueError(f"{SCHEMA_ENV}={name!r} is not a plain lower-case SQL name")
    return name


def make_engine(url: str, schema: str | None = None) -> Engine:
    """An engine for `url`: SQLite with WAL and a busy timeout, PostgreSQL in `schema`."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database:
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite(dbapi_connection: Any, _: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)
    search_path = schema or schema_name()

    @event.listens_for(engine, "connect")
    def _search_path(dbapi_connection: Any, _: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f'SET search_path TO "{search_path}"')
        cursor.close()
        dbapi_connection.commit()

    return engine


@cache
def shared_engine(url: str) -> Engine:
    """One engine per URL in a process (the sensor's evaluations reuse it)."""
    return make_engine(url)


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(_config()).get_current_head()


@contextlib.contextmanager
def _migration_lock(engine: Engine) -> Iterator[None]:
    """Only one process migrates at once: a PostgreSQL advisory lock, or a lock file."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": MIGRATION_LOCK})
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": MIGRATION_LOCK})
        return
    database = engine.url.database
    if not database or database == ":memory:":
        yield
        return
    with open(f"{database}.migrate-lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def migrate(engine: Engine, schema: str | None = None) -> None:
    """Create or upgrade the tables to the latest migration (idempotent); on PostgreSQL in
    `schema` (default: $CONSTELLATION_DATABASE_SCHEMA), the one `make_engine` was given."""
    with _migration_lock(engine), engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema or schema_name()}"'))
        config = _config()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def check_current(engine: Engine) -> None:
    """DatabaseNotReady unless the database is at this code's latest migration."""
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    if current != head_revision():
        raise DatabaseNotReady(
            f"the database at {engine.url.render_as_string(hide_password=True)} is at "
            f"migration {current!r}, this code needs {head_revision()!r}: start the API "
            "(it applies the migrations)"
        )
