"""The SQLite writer makes its calls on the loop's thread: a lock held by another process, and
the checkpoints that fsync, must still never hold the loop."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time

from sqlalchemy import text

from inbox.db import Database


def _hold_write_lock(path: str, seconds: float, held: threading.Event) -> None:
    """Another process's writer, as SQLite sees it: a connection of its own in BEGIN IMMEDIATE."""
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("BEGIN IMMEDIATE")
    held.set()
    time.sleep(seconds)
    connection.execute("COMMIT")
    connection.close()


async def _write(db: Database, key: str) -> None:
    async with db.write() as session:
        await session.execute(text("INSERT INTO app_settings (key, value, updated_at) "
                                   f"VALUES ('{key}', '1', '2026-01-01 00:00:00.000000')"))
        await session.commit()


async def test_a_write_waits_for_another_writer_without_holding_the_loop(sqlite_url) -> None:
    db = Database(sqlite_url)
    path = sqlite_url.split("///", 1)[1]
    await _write(db, "connected")  # the writer's connection is open before the lock is taken
    held = threading.Event()
    holder = threading.Thread(target=_hold_write_lock, args=(path, 0.6, held))
    holder.start()
    assert held.wait(5)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticking = asyncio.create_task(ticker())
    try:
        started = time.monotonic()
        await _write(db, "after the other writer")
        waited = time.monotonic() - started
    finally:
        ticking.cancel()
        holder.join()
        await db.dispose()
    assert waited >= 0.4  # it did wait for the other writer …
    assert ticks >= 20  # … while the loop went on (a blocking wait would leave it at 0)


def _rows_in_main_file(path: str) -> int:
    """What a reader of the database file alone sees (immutable=1 ignores the WAL)."""
    main_file = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    try:
        return main_file.execute("SELECT count(*) FROM app_settings WHERE key LIKE 'k%'").fetchone()[0]
    finally:
        main_file.close()


async def test_checkpoints_copy_the_wal_beside_the_writes(sqlite_url, monkeypatch) -> None:
    from inbox import sqlite_inline

    monkeypatch.setattr(sqlite_inline, "CHECKPOINT_INTERVAL", 0.0)  # one may start at every commit
    db = Database(sqlite_url)
    path = sqlite_url.split("///", 1)[1]
    try:
        for n in range(5):
            await _write(db, f"k{n}")
        async with db.write() as session:  # automatic checkpoints are off on the writer
            assert (await session.execute(text("PRAGMA wal_autocheckpoint"))).scalar() == 0
        # While the writer stays open, everything committed reaches the database file: the
        # checkpoints run on their own connection, started by later commits.
        deadline = time.monotonic() + 10
        ticks = 0
        while _rows_in_main_file(path) < 5:
            assert time.monotonic() < deadline, "the WAL was never checkpointed"
            await _write(db, f"tick{ticks}")
            ticks += 1
            await asyncio.sleep(0.02)
    finally:
        await db.dispose()


async def test_the_wal_starts_over_while_writes_go_on(sqlite_url, monkeypatch) -> None:
    """Without the writer's short finishing checkpoint, steady writes never let SQLite start the
    WAL over, and the file grows by every page written (25 MB a second under the benchmark)."""
    from inbox import sqlite_inline

    monkeypatch.setattr(sqlite_inline, "CHECKPOINT_INTERVAL", 0.0)
    db = Database(sqlite_url)
    path = sqlite_url.split("///", 1)[1]
    payload = "x" * 3000  # about a page a write
    try:
        for n in range(300):
            async with db.write() as session:
                await session.execute(text("INSERT INTO app_settings (key, value, updated_at) "
                                           f"VALUES ('k{n}', '\"{payload}\"', '2026-01-01 00:00:00.000000')"))
                await session.commit()
        wal_bytes = os.stat(path + "-wal").st_size
    finally:
        await db.dispose()
    assert wal_bytes < 300 * 4096 / 4, wal_bytes  # far less than the pages written
