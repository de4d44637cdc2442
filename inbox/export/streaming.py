"""The export's bytes, streamed from one consistent snapshot, batch by batch (the package's
docstring says how and why)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import anyio
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from inbox.db import Database
from inbox.export.audit import finish_audit
from inbox.export.batches import (
    BatchQuery,
    _conditions,
    _conversations,
    _customers,
    _m,
    _note_conditions,
    _notes,
    _staff,
)
from inbox.export.formats import Customers, _Formatter, formatter
from inbox.export.query import ExportQuery

BATCH_SIZE = 5000  # rows per query and per chunk; read at call time (tests shrink it)
CUSTOMER_CACHE = 50_000  # conversations whose customer cells are kept between batches (memory bound)


class ExportFailed(RuntimeError):
    """The database failed mid-export. Carries no SQL parameters (they may be customer data)."""


async def fetch_batch(connection: AsyncConnection, query: BatchQuery, after: int) -> Sequence[Sequence[Any]]:
    """One keyset page: the rows with id > after. (Tests wrap this to pause an export.)"""
    return await query.run(after)


async def _open_snapshot(db: Database) -> AsyncConnection:
    """A connection in a transaction that sees one moment of the database for all its reads."""
    connection = await db.read_engine.connect()
    try:
        if db.dialect == "postgresql":
            await connection.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        await connection.begin()  # SQLite: a deferred BEGIN; the snapshot starts at the first read
    except BaseException:
        await _close(connection)
        raise
    return connection


async def _close(connection: AsyncConnection) -> None:
    with anyio.CancelScope(shield=True):  # a client hanging up must not leak the connection
        await connection.close()


async def _load_customers(connection: AsyncConnection, ids: set[int], shape: _Formatter, customers: Customers) -> None:
    # Two primary-key lookups rather than a join: given a long IN list, SQLite's planner scans
    # every customer for the join (seconds per batch at 20,000 customers). In slices of 900
    # ids: SQLite before 3.32 allows 999 parameters per statement.
    name = func.coalesce(func.nullif(_customers.c.name, ""), _customers.c.whatsapp_profile_name)
    wanted = sorted(ids)
    for start in range(0, len(wanted), 900):
        owners = dict(
            (
                await connection.execute(
                    select(_conversations.c.id, _conversations.c.customer_id).where(
                        _conversations.c.id.in_(wanted[start : start + 900])
                    )
                )
            ).all()
        )
        people = {
            customer_id: (customer_name, phone)
            for customer_id, customer_name, phone in await connection.execute(
                select(_customers.c.id, name, _customers.c.phone).where(
                    _customers.c.id.in_(sorted(set(owners.values())))
                )
            )
        }
        for conversation_id, customer_id in owners.items():
            customers[conversation_id] = shape.customer(*people[customer_id])


async def stream(
    db: Database,
    query: ExportQuery,
    *,
    audit_id: int | None = None,
    on_total: Callable[[int], None] | None = None,
    on_rows: Callable[[int], None] | None = None,
    batch_size: int | None = None,
) -> AsyncIterator[bytes]:
    """The export's bytes: the head, then one chunk per batch, then the tail.

    `on_total(n)`, when given, is told how many rows the snapshot holds before the first batch
    (it costs a COUNT); `on_rows(n)` after each batch. When the last byte has been handed over,
    the audit entry `audit_id` gets its row count and finished_at.
    """
    limit = batch_size or BATCH_SIZE
    shape = formatter(query)
    rows_out = 0
    connection = await _open_snapshot(db)
    try:
        pending: asyncio.Future[Sequence[Sequence[Any]]] | None = None
        try:
            upper: int = await connection.scalar(select(func.coalesce(func.max(_m.c.id), 0))) or 0
            notes_upper: int = await connection.scalar(select(func.coalesce(func.max(_notes.c.id), 0))) or 0
            conversation_id = None
            if query.customer is not None:
                conversation_id = await connection.scalar(
                    select(_conversations.c.id)
                    .join(_customers, _customers.c.id == _conversations.c.customer_id)
                    .where(_customers.c.phone == query.customer)
                )
            empty = query.customer is not None and conversation_id is None
            note_filters = None if empty else _note_conditions(query, conversation_id)
            if on_total is not None:
                total: int = (
                    0
                    if empty
                    else await connection.scalar(
                        select(func.count())
                        .select_from(_m)
                        .where(_m.c.id <= upper, *_conditions(query, conversation_id))
                    )
                    or 0
                )
                if note_filters is not None:
                    total += (
                        await connection.scalar(
                            select(func.count()).select_from(_notes).where(_notes.c.id <= notes_upper, *note_filters)
                        )
                        or 0
                    )
                on_total(int(total))
            senders: dict[int | None, Any] = {None: shape.sender(None)}
            for staff_id, email in await connection.execute(select(_staff.c.id, _staff.c.email)):
                senders[staff_id] = shape.sender(email)
            yield shape.head()
            customers: Customers = {}
            if not empty:
                driver = (await connection.get_raw_connection()).driver_connection
                batches = BatchQuery(connection, driver, db.dialect, query, conversation_id, upper, limit)
                rows = await fetch_batch(connection, batches, 0)
                first = True
                while rows:
                    needed = {row[2] for row in rows}
                    missing = needed.difference(customers)
                    if missing:
                        if len(customers) + len(missing) > CUSTOMER_CACHE:  # start afresh with this batch's
                            customers.clear()
                            missing = needed
                        await _load_customers(connection, missing, shape, customers)
                    # The next page is fetched while this one is formatted and sent.
                    if len(rows) == limit:
                        pending = asyncio.ensure_future(fetch_batch(connection, batches, rows[-1][0]))
                    chunk = shape.batch(rows, customers, senders, first)
                    rows_out += len(rows)
                    first = False
                    if on_rows is not None:
                        on_rows(len(rows))
                    yield chunk
                    if pending is None:
                        break
                    rows, pending = await pending, None
            if note_filters is not None:
                after = 0
                while True:
                    notes = (
                        await connection.execute(
                            select(
                                _notes.c.id,
                                _notes.c.conversation_id,
                                _notes.c.staff_id,
                                _notes.c.body,
                                _notes.c.created_at,
                            )
                            .where(_notes.c.id > after, _notes.c.id <= notes_upper, *note_filters)
                            .order_by(_notes.c.id)
                            .limit(limit)
                        )
                    ).all()
                    if not notes:
                        break
                    missing = {row[1] for row in notes}.difference(customers)
                    if missing:
                        await _load_customers(connection, missing, shape, customers)
                    yield shape.notes(notes, customers, senders, rows_out == 0)
                    rows_out += len(notes)
                    if on_rows is not None:
                        on_rows(len(notes))
                    after = notes[-1][0]
        except SQLAlchemyError as exc:
            raise ExportFailed(describe_failure(exc)) from None
        except Exception as exc:
            if _is_driver_error(exc):
                raise ExportFailed(describe_failure(exc)) from None
            raise
        finally:
            if pending is not None:
                pending.cancel()
                with anyio.CancelScope(shield=True):
                    await asyncio.gather(pending, return_exceptions=True)
    finally:
        await _close(connection)
    yield shape.tail()
    if audit_id is not None:
        await finish_audit(db, audit_id, rows_out)


def _is_driver_error(exc: BaseException) -> bool:
    """An error raised by asyncpg or sqlite3 directly (the batches bypass SQLAlchemy's wrapping)."""
    module = type(exc).__module__
    return module.startswith(("asyncpg", "sqlite3", "aiosqlite"))


def describe_failure(exc: BaseException) -> str:
    """The driver's own one-line message, never the statement or its parameters."""
    origin = getattr(exc, "orig", None) or exc
    text = str(origin).strip().splitlines()[0] if str(origin).strip() else type(origin).__name__
    if isinstance(origin, SQLAlchemyError):  # its message embeds [SQL: ...] [parameters: ...]
        text = text.split("[SQL:", 1)[0].strip() or type(origin).__name__
    return f"the database failed during the export: {text}"
