"""Engines, sessions and migrations for the store.

``create_engine`` accepts any SQLAlchemy async URL (``sqlite+aiosqlite:///...``,
``postgresql+asyncpg://...``). ``migrate`` (or ``migrate_async``) brings a database
to the newest schema and is safe to run at every start: at head it does nothing,
and processes starting together take turns.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, event, pool, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# Any constant will do; it only has to be the same for every Baton process migrating one database.
MIGRATION_LOCK_KEY = 0x0BA7_0D8


def _sqlite_file(url: URL) -> Path | None:
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def create_engine(url: str | URL, **kwargs: Any) -> AsyncEngine:
    """An async engine for the store. SQLite: foreign keys on, WAL, a busy timeout, and the file's folder created."""
    url = make_url(url)
    if url.get_backend_name() != "sqlite":
        kwargs.setdefault("pool_pre_ping", True)
        return create_async_engine(url, **kwargs)
    path = _sqlite_file(url)
    if path is not None:
        path.expanduser().parent.mkdir(parents=True, exist_ok=True)
    connect_args = kwargs.pop("connect_args", {})
    connect_args.setdefault("timeout", 30)  # seconds to wait for another process's write lock
    engine = create_async_engine(url, connect_args=connect_args, **kwargs)
    _on_sqlite_connect(engine, wal=path is not None)
    return engine


def _on_sqlite_connect(engine: AsyncEngine, wal: bool) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        if wal:
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


# --- migrations -------------------------------------------------------------------------------------


def alembic_config(connection: Connection | None = None, url: str | URL | None = None) -> Config:
    """Alembic's configuration, built in code: ``store/migrations`` holds env.py and the versions."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    if url is not None:
        config.attributes["url"] = make_url(url)
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


# Alembic keeps its running context in module globals: one migration at a time per process.
_MIGRATING = threading.Lock()


def _sqlite_begin_immediate(engine: AsyncEngine) -> None:
    """Make SQLite transactions real and take the write lock at BEGIN (the driver otherwise defers both).

    A second process migrating the same file then waits at BEGIN until the first one commits.
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _autocommit_driver(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


async def migrate_async(url: str | URL) -> None:
    """Upgrade the database at ``url`` to the newest schema (Alembic ``upgrade head``), in one transaction.

    Safe at every start: at head it changes nothing, and processes starting together take turns
    (a PostgreSQL advisory lock; SQLite's write lock).
    """
    engine = create_engine(url, poolclass=pool.NullPool)
    if engine.dialect.name == "sqlite":
        _sqlite_begin_immediate(engine)
    await asyncio.to_thread(_MIGRATING.acquire)
    try:
        async with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                # Held until commit: a second process starting at the same time waits, then finds the schema at head.
                await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            await connection.run_sync(lambda sync: command.upgrade(alembic_config(sync), "head"))
    finally:
        _MIGRATING.release()
        await engine.dispose()


def migrate(url: str | URL) -> None:
    """``migrate_async`` for synchronous callers (the CLI, scripts); also callable while an event loop runs."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(migrate_async(url))
        return
    # Inside a running loop (which asyncio.run refuses), migrate on a thread with its own loop.
    errors: list[BaseException] = []

    def _run() -> None:
        try:
            asyncio.run(migrate_async(url))
        except BaseException as err:
            errors.append(err)

    thread = threading.Thread(target=_run, name="baton-migrate")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
