"""SQLite's one writer connection, with its calls made on the event loop's own thread.

    create_async_engine(url, async_creator=lambda: InlineConnection(path), pool_size=1, ...)

aiosqlite makes every call on a thread of its own and hands the result back through the loop:
two thread switches per call, about 100 µs each on a small VM, where the call itself takes
1–5 µs in WAL mode with synchronous=NORMAL (a COMMIT appends to the WAL without fsync). A
webhook batch makes a dozen calls, so the switches, not SQLite, set the inbound rate. Here the
calls are made inline, and the two things that can take long are kept off the loop:

- Waiting for the write lock that another process holds (two `inbox serve` on one file): the
  connection has no busy timeout, and a statement refused with SQLITE_BUSY outside a
  transaction (our BEGIN IMMEDIATE) is tried again after an `asyncio.sleep`, for up to
  LOCK_WAIT seconds, so the loop keeps serving meanwhile.
- Checkpoints, which fsync (15–50 ms here): automatic checkpoints are off on this connection
  (`PRAGMA wal_autocheckpoint=0`, see `inbox.db`). Every CHECKPOINT_INTERVAL seconds of writes,
  `commit()` starts a PASSIVE checkpoint on a connection of its own on a worker thread, and
  writes go on meanwhile. But SQLite starts the WAL over only when a write finds it all copied,
  which steady writes never let happen (the WAL grew by 25 MB a second under the webhook
  benchmark), so the commit after that checkpoint copies what was written during it, holding
  the writer (not the loop) for those few frames; the next write starts the WAL over.

Reads keep aiosqlite's thread (a long export must not hold the loop). This builds on
aiosqlite's Connection, so SQLAlchemy's aiosqlite dialect drives it unchanged: the queue to its
worker thread is replaced by a call made on the spot.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from collections.abc import Callable, Generator, Sequence
from typing import Any, TypeVar

import aiosqlite

LOCK_WAIT = 10.0  # seconds a write may wait for another process's lock, as busy_timeout did
CHECKPOINT_INTERVAL = 1.0  # seconds between checkpoints while writes go on

_T = TypeVar("_T")


class _CallNow:
    """Stands in for aiosqlite's queue to its worker thread: each call is made as it is queued."""

    def put_nowait(self, item: tuple[asyncio.Future[Any] | None, Callable[[], Any]]) -> None:
        future, function = item
        try:
            result = function()
        except BaseException as exc:
            if future is not None and not future.done():
                future.set_exception(exc)
        else:
            if future is not None and not future.done():
                future.set_result(result)


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    return getattr(exc, "sqlite_errorcode", None) is not None and exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY


class InlineConnection(aiosqlite.Connection):
    def __init__(self, path: str) -> None:
        # The batch statements' VALUES lists have a length per batch size (inbox.batch_sql): room
        # for all of them in the statement cache, so a busy webhook batch never prepares SQL again.
        super().__init__(lambda: sqlite3.connect(path, check_same_thread=False, cached_statements=1024), 64)
        # aiosqlite types its queue as a SimpleQueue, of which it only ever calls put_nowait.
        self._tx = _CallNow()  # type: ignore[assignment]
        self._path = path
        self._last_checkpoint = time.monotonic()
        self._checkpointer: sqlite3.Connection | None = None  # used on worker threads only
        self._checkpointing: asyncio.Task[None] | None = None
        self._finish_checkpoint = False  # the next commit copies what was written meanwhile

    def __await__(self) -> Generator[Any, None, aiosqlite.Connection]:
        return self._connect().__await__()  # no worker thread to start

    async def _execute(self, fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        deadline, delay = None, 0.001
        while True:
            try:
                return fn(*args, **kwargs)
            except sqlite3.OperationalError as exc:
                if self._connection.in_transaction or not _is_busy(exc):
                    raise
                now = time.monotonic()
                deadline = deadline or now + LOCK_WAIT
                if now >= deadline:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.02)

    def run_now(self, sql: str, parameters: Sequence[Any], *, many: bool = False) -> list[Any]:
        """One statement of a transaction already begun on this connection, run at once: the
        inbound batch's (inbox.batch_sql), where SQLAlchemy's execution machinery (a greenlet
        switch, an execution context and a result object per statement) cost more than SQLite's
        own work. Rows come back as the driver gives them, as exec_driver_sql would."""
        connection = self._conn
        if not connection.in_transaction:  # the batch's BEGIN IMMEDIATE holds the write lock
            raise RuntimeError("run_now is for statements inside a transaction already begun")
        if many:
            connection.executemany(sql, parameters)
            return []
        return connection.execute(sql, parameters).fetchall()

    async def commit(self) -> None:
        await self._execute(self._conn.commit)
        if self._finish_checkpoint:
            self._finish_checkpoint = False
            await asyncio.to_thread(_checkpoint, self._conn)
        elif time.monotonic() - self._last_checkpoint >= CHECKPOINT_INTERVAL and (
            self._checkpointing is None or self._checkpointing.done()
        ):
            self._last_checkpoint = time.monotonic()
            self._checkpointing = asyncio.create_task(self._checkpoint_beside_writes(), name="sqlite-checkpoint")

    async def _checkpoint_beside_writes(self) -> None:
        def run() -> None:
            if self._checkpointer is None:
                self._checkpointer = sqlite3.connect(self._path, check_same_thread=False)
            _checkpoint_beside_writes(self._checkpointer)

        await asyncio.to_thread(run)
        self._finish_checkpoint = True

    async def close(self) -> None:
        if self._checkpointing is not None:
            with contextlib.suppress(Exception):
                await self._checkpointing
        if self._checkpointer is not None:
            self._checkpointer.close()
            self._checkpointer = None
        await super().close()


def _checkpoint(connection: sqlite3.Connection) -> None:
    """Copies the WAL into the database file (PASSIVE: it never waits for a lock)."""
    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


def _checkpoint_beside_writes(connection: sqlite3.Connection) -> None:
    """The periodic checkpoint, on its own connection and a worker thread, while writes go on
    (a function of its own so that a test can make writes land during it deterministically)."""
    _checkpoint(connection)
