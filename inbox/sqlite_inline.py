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
- Checkpoints, which fsync (15–30 ms here): automatic checkpoints are off on this connection
  (`PRAGMA wal_autocheckpoint=0`, see `inbox.db`); at most every CHECKPOINT_INTERVAL seconds,
  `commit()` starts a PASSIVE checkpoint on a connection of its own on a worker thread, and
  writes go on meanwhile. SQLite starts the WAL over only when a write finds it all copied, which
  a busy stretch of writes can put off; once the WAL passes WAL_RESET_BYTES, the checkpoint is
  made on this connection instead, holding the writer (not the loop), so the next write starts
  the WAL over.

Reads keep aiosqlite's thread (a long export must not hold the loop). This builds on
aiosqlite's Connection, so SQLAlchemy's aiosqlite dialect drives it unchanged: the queue to its
worker thread is replaced by a call made on the spot.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import time

import aiosqlite

LOCK_WAIT = 10.0  # seconds a write may wait for another process's lock, as busy_timeout did
CHECKPOINT_INTERVAL = 1.0  # seconds between checkpoints while writes go on
WAL_RESET_BYTES = 64 * 1024 * 1024  # a WAL past this is checkpointed holding the writer


class _CallNow:
    """Stands in for aiosqlite's queue to its worker thread: each call is made as it is queued."""

    def put_nowait(self, item) -> None:
        future, function = item
        try:
            result = function()
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting caller, as aiosqlite does
            if future is not None and not future.done():
                future.set_exception(exc)
        else:
            if future is not None and not future.done():
                future.set_result(result)


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    return getattr(exc, "sqlite_errorcode", None) is not None and exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY


class InlineConnection(aiosqlite.Connection):
    def __init__(self, path: str) -> None:
        super().__init__(lambda: sqlite3.connect(path, check_same_thread=False), 64)
        self._tx = _CallNow()
        self._path = path
        self._last_checkpoint = time.monotonic()
        self._checkpointer: sqlite3.Connection | None = None  # used on worker threads only
        self._checkpointing: asyncio.Task | None = None

    def __await__(self):
        return self._connect().__await__()  # no worker thread to start

    async def _execute(self, fn, *args, **kwargs):
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

    async def commit(self) -> None:
        await self._execute(self._conn.commit)
        if time.monotonic() - self._last_checkpoint < CHECKPOINT_INTERVAL:
            return
        self._last_checkpoint = time.monotonic()
        if _wal_bytes(self._path) > WAL_RESET_BYTES:
            await self.checkpoint(hold_writer=True)
        elif self._checkpointing is None or self._checkpointing.done():
            self._checkpointing = asyncio.create_task(self.checkpoint(), name="sqlite-checkpoint")

    async def checkpoint(self, hold_writer: bool = False) -> None:
        """Copies the WAL into the database file on a worker thread: beside the writes on a
        connection of its own, or (`hold_writer`) on this one, which then makes no write meanwhile."""

        def run() -> None:
            if hold_writer:
                connection = self._conn
            else:
                if self._checkpointer is None:
                    self._checkpointer = sqlite3.connect(self._path, check_same_thread=False)
                connection = self._checkpointer
            connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

        await asyncio.to_thread(run)

    async def close(self) -> None:
        if self._checkpointing is not None:
            with contextlib.suppress(Exception):
                await self._checkpointing
        if self._checkpointer is not None:
            self._checkpointer.close()
            self._checkpointer = None
        await super().close()


def _wal_bytes(path: str) -> int:
    try:
        return os.stat(path + "-wal").st_size
    except OSError:
        return 0
