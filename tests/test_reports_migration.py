"""Migration 0004_reports fills `wait_started_at` for the staff replies already stored, on
SQLite and PostgreSQL: a database at 0002 with a history, upgraded, has the waits a queued
reply would have stored."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from inbox.db import alembic_config
from tests.conftest import _pg_execute, requires_postgres

HISTORY = [  # (minute, direction, staff_id, auto_reply, keyword)
    (0, "inbound", None, None, None),  # a wait starts
    (1, "inbound", None, None, None),
    (2, "outbound", None, "help", None),  # automatic: not a reply
    (5, "outbound", 1, None, None),  # the first response: waited since minute 0
    (6, "outbound", 1, None, None),  # answered no wait
    (9, "inbound", None, None, "opt_in"),  # a keyword starts no wait
    (10, "outbound", 1, None, None),
    (20, "inbound", None, None, None),
    (30, "outbound", 1, None, None),  # waited since minute 20
]


async def _run(url: str, *statements: str) -> list:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as connection:
            result = None
            for statement in statements:
                result = await connection.execute(text(statement))
            return [tuple(row) for row in result] if result is not None and result.returns_rows else []
    finally:
        await engine.dispose()


def _moment(minute: int, dialect: str) -> str:
    return f"2024-05-01 09:{minute:02d}:00" + ("+00" if dialect == "postgresql" else ".000000")


@pytest.fixture(params=["sqlite", "postgres"])
def old_database(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
        return
    admin = requires_postgres()
    name = f"inbox_test_{uuid.uuid4().hex[:10]}"
    asyncio.run(_pg_execute(admin, f'CREATE DATABASE "{name}"'))
    yield admin.rsplit("/", 1)[0] + f"/{name}"
    asyncio.run(_pg_execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_upgrade_fills_the_waits_of_stored_replies(old_database) -> None:
    config = alembic_config(old_database)
    command.upgrade(config, "0002")
    dialect = "postgresql" if old_database.startswith("postgresql") else "sqlite"
    statements = [
        "INSERT INTO staff (id, email, name, role, password_hash, failed_logins, created_at) "
        f"VALUES (1, 'ann@example.com', 'Ann', 'manager', 'x', 0, '{_moment(0, dialect)}')",
        f"INSERT INTO customers (id, phone, created_at) VALUES (1, '+15550100', '{_moment(0, dialect)}')",
        "INSERT INTO conversations (id, customer_id, status, last_activity_at, created_at) "
        f"VALUES (1, 1, 'open', '{_moment(0, dialect)}', '{_moment(0, dialect)}')",
    ]
    for minute, direction, staff_id, auto_reply, keyword in HISTORY:
        at = _moment(minute, dialect)
        statements.append(
            "INSERT INTO messages (conversation_id, direction, channel, from_addr, to_addr, body, media, status, "
            "staff_id, auto_reply, keyword, attempts, needs_reconcile, probable_opt_out, created_at, updated_at) "
            f"VALUES (1, '{direction}', 'sms', 'a', 'b', '', '[]', "
            f"'{'received' if direction == 'inbound' else 'delivered'}', {staff_id or 'NULL'}, "
            f"{repr(auto_reply) if auto_reply else 'NULL'}, {repr(keyword) if keyword else 'NULL'}, 0, false, false, "
            f"'{at}', '{at}')"
        )
    asyncio.run(_run(old_database, *statements))
    command.upgrade(config, "head")
    waits = asyncio.run(
        _run(old_database, "SELECT wait_started_at FROM messages WHERE staff_id IS NOT NULL ORDER BY id")
    )
    started = [None if w is None else str(w)[:16] for (w,) in waits]
    assert started == ["2024-05-01 09:00", None, None, "2024-05-01 09:20"]
