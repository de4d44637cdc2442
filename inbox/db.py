"""Engines, sessions and the transaction helpers; `migrate()` applies the Alembic migrations.

SQLite serialises writers, so writes go through one connection that opens with BEGIN IMMEDIATE
(no SQLITE_BUSY half-way through a transaction) and makes its calls on the loop's own thread
(`inbox.sqlite_inline`: a thread hop per call cost more than the call), while reads use a pool
of deferred transactions in WAL mode on aiosqlite's threads. PostgreSQL uses one pool for both.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import sqlalchemy.exc
from sqlalchemy import event, make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from inbox.search import has_words
from inbox.sqlite_inline import InlineConnection
from inbox.text_fold import fold

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.engine import Connection
    from sqlalchemy.engine.interfaces import DBAPICursor
    from sqlalchemy.pool import ConnectionPoolEntry

MIGRATIONS = Path(__file__).parent / "migrations"
# Raised when every pooled connection is taken for longer than the pool's timeout; named here so
# the web layer can answer 503 `busy` without knowing SQLAlchemy.
PoolBusy = sqlalchemy.exc.TimeoutError


class _SQLiteDBAPIConnection(Protocol):
    """What the connect hook uses of the DBAPI connection SQLAlchemy hands it: aiosqlite's adapter
    for the readers, inbox.sqlite_inline's for the writer; both mirror sqlite3.Connection."""

    isolation_level: str | None

    def create_function(
        self, name: str, num_params: int, func: Callable[..., object], *, deterministic: bool = ...
    ) -> None: ...

    def cursor(self) -> DBAPICursor: ...


def _sqlite_pragmas(engine: AsyncEngine, *, writer: bool) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: _SQLiteDBAPIConnection, _record: ConnectionPoolEntry) -> None:
        # Let SQLAlchemy's begin event issue BEGIN itself (pysqlite's implicit one is deferred).
        dbapi_connection.isolation_level = None
        # Accent-blind text in SQL (PostgreSQL has translate(), SQLite gets this).
        dbapi_connection.create_function("inbox_fold", 1, fold, deterministic=True)
        # The search's row-by-row test where its index is not asked (inbox/search.py).
        dbapi_connection.create_function("inbox_words", 2, has_words, deterministic=True)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        if writer:  # the inline writer waits for locks and checkpoints off the loop (sqlite_inline)
            cursor.execute("PRAGMA busy_timeout=0")
            cursor.execute("PRAGMA wal_autocheckpoint=0")
            cursor.execute("PRAGMA journal_size_limit=16777216")  # a WAL started over shrinks to 16 MiB
        else:
            cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writer else "BEGIN")


class Database:
    """The app's handle on its database: `write()` and `read()` yield a session in a transaction."""

    def __init__(self, url: str, pool_size: int = 10, pool_timeout: float = 5.0) -> None:
        """On PostgreSQL, `pool_size` connections are kept and as many again may open at a peak; a
        session that finds them all taken waits `pool_timeout` seconds, then raises
        PoolBusy (the web layer answers 503 `busy`)."""
        self.url = url
        self.dialect = "sqlite" if url.startswith("sqlite") else "postgresql"
        if self.dialect == "sqlite":
            path = make_url(url).database or ""
            self.write_engine = create_async_engine(
                url, pool_size=1, max_overflow=0, pool_timeout=60, async_creator=lambda: InlineConnection(path)
            )
            self.read_engine = create_async_engine(url, pool_size=4, max_overflow=4)
            _sqlite_pragmas(self.write_engine, writer=True)
            _sqlite_pragmas(self.read_engine, writer=False)
        else:
            # The inbound batch's statements come in one text per batch size (inbox.batch_sql):
            # asyncpg's default cache of 100 prepared statements per connection thrashed on them.
            self.write_engine = create_async_engine(
                url,
                pool_size=pool_size,
                max_overflow=pool_size,
                pool_timeout=pool_timeout,
                pool_pre_ping=True,
                connect_args={"prepared_statement_cache_size": 1000},
            )
            self.read_engine = self.write_engine
        self._write_sessions = async_sessionmaker(self.write_engine, expire_on_commit=False)
        self._read_sessions = async_sessionmaker(self.read_engine, expire_on_commit=False)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A session whose transaction the caller commits (or `bus.commit` does); rolled back on error."""
        async with self._write_sessions() as session:
            try:
                yield session
            except BaseException:
                await session.rollback()
                raise

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self._read_sessions() as session:
            yield session

    async def ping(self) -> None:
        async with self.read_engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.write_engine.dispose()
        if self.read_engine is not self.write_engine:
            await self.read_engine.dispose()


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(url: str) -> None:
    """Apply every migration to `url` (synchronous: call it before the event loop starts)."""
    from alembic import command

    command.upgrade(alembic_config(url), "head")
