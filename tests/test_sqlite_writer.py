"""The SQLite writer makes its calls on the loop's thread: a lock held by another process, and
the checkpoints that fsync, must still never hold the loop."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time

import pytest
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
        await session.execute(
            text(
                f"INSERT INTO app_settings (key, value, updated_at) VALUES ('{key}', '1', '2026-01-01 00:00:00.000000')"
            )
        )
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


def _wal_generation(path: str) -> int | None:
    """The WAL header's checkpoint sequence number: SQLite adds one each time it starts the WAL
    over (written with the first frame after the restart). None while there is no WAL."""
    try:
        with open(path + "-wal", "rb") as wal:
            header = wal.read(16)
    except FileNotFoundError:
        return None
    return int.from_bytes(header[12:16], "big") if len(header) == 16 else None


class _CheckpointGate:
    """Holds each periodic checkpoint until a write is in flight, then lets it copy the WAL:
    the case the writer has to handle under load, made to happen every time."""

    def __init__(self, real) -> None:
        self.real = real
        self.waiting = threading.Event()  # a checkpoint waits for a write to be in flight
        self.go = threading.Event()
        self.copied = threading.Event()
        self.cycles = 0

    def __call__(self, connection) -> None:
        self.copied.clear()
        self.waiting.set()
        if not self.go.wait(10):
            raise TimeoutError("no write came while the checkpoint waited")
        self.go.clear()
        self.waiting.clear()
        self.real(connection)  # copies what was committed; the write in flight is not yet
        self.cycles += 1
        self.copied.set()


async def test_the_wal_starts_over_while_writes_go_on(sqlite_url, monkeypatch) -> None:
    """Every periodic checkpoint copies the WAL while a write is in flight, so a write always
    finds frames not yet copied and SQLite alone would never start the WAL over: it grew by
    every page written (25 MB a second under the benchmark). The writer's short finishing
    checkpoint after each one must let it start over, again and again, whatever the timing."""
    from inbox import sqlite_inline

    monkeypatch.setattr(sqlite_inline, "CHECKPOINT_INTERVAL", 0.0)
    gate = _CheckpointGate(sqlite_inline._checkpoint_beside_writes)
    monkeypatch.setattr(sqlite_inline, "_checkpoint_beside_writes", gate)
    db = Database(sqlite_url)
    path = sqlite_url.split("///", 1)[1]
    payload = "x" * 3000  # about a page a write
    generations: set[int] = set()
    deadline = time.monotonic() + 60
    try:
        n = 0
        while len(generations) < 4 and gate.cycles < 200:
            assert time.monotonic() < deadline, (gate.cycles, generations)
            async with db.write() as session:
                await session.execute(
                    text(
                        "INSERT INTO app_settings (key, value, updated_at) "
                        f"VALUES ('k{n}', '\"{payload}\"', '2026-01-01 00:00:00.000000')"
                    )
                )
                if gate.waiting.is_set():  # the checkpoint copies now, with this write in flight
                    gate.go.set()
                    assert await asyncio.to_thread(gate.copied.wait, 10)
                await session.commit()
            if (generation := _wal_generation(path)) is not None:
                generations.add(generation)
            n += 1
            await asyncio.sleep(0.001)  # the loop's other work: the checkpoint task's turn
    finally:
        gate.go.set()  # a checkpoint still waiting for a write is let go, so the writer can close
        await db.dispose()
    # Started over at least three times while every checkpoint ran beside a write.
    assert len(generations) >= 4, (gate.cycles, generations)


async def test_batch_statements_run_on_the_writer_inside_its_transaction_only(sqlite_url) -> None:
    """batch_sql runs its statements straight on the writer connection (run_now): inside the
    write transaction they see and make its changes, which a rollback undoes; outside one, run_now
    refuses rather than write without the lock."""
    from inbox import batch_sql
    from inbox.clock import utcnow
    from inbox.sqlite_inline import InlineConnection

    db = Database(sqlite_url)
    try:
        async with db.write() as session:
            connection = await session.connection()
            customers = await batch_sql.upsert_customers(connection, {"+14155550123": None}, utcnow())
            assert [c.phone for c in customers] == ["+14155550123"]
            assert (await session.execute(text("SELECT count(*) FROM customers"))).scalar() == 1  # same transaction
            await session.rollback()
        async with db.write() as session:
            assert (await session.execute(text("SELECT count(*) FROM customers"))).scalar() == 0
            driver = (await (await session.connection()).get_raw_connection()).driver_connection
            assert isinstance(driver, InlineConnection)
            await session.commit()
        with pytest.raises(RuntimeError, match="inside a transaction"):
            driver.run_now("DELETE FROM customers", ())
    finally:
        await db.dispose()
