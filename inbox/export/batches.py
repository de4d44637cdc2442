"""The SQL of an export: the filters as conditions, and the keyset page query over messages,
compiled once and run on the driver's own connection."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Text, bindparam, case, cast, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from inbox.export.query import ExportQuery
from inbox.models import Conversation, Customer, Message, Note, Staff

_m = Message.__table__
_conversations = Conversation.__table__
_customers = Customer.__table__
_staff = Staff.__table__
_notes = Note.__table__


def iso_utc_sql(column: ColumnElement[Any], dialect: str) -> ColumnElement[Any]:
    """`column` as store.iso writes it, computed by the database: 2024-05-01T09:30:00.250000Z,
    without the fraction when it is zero. SQLite holds SQLAlchemy's 'YYYY-MM-DD HH:MM:SS.ffffff'."""
    if dialect == "postgresql":
        return func.replace(
            func.to_char(func.timezone("UTC", column), 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), ".000000Z", "Z"
        )
    day, clock, fraction = func.substr(column, 1, 10), func.substr(column, 12, 8), func.substr(column, 21)
    return case(  # the common shapes first: this runs twice per exported row
        (or_(fraction == "", fraction == "000000"), day + "T" + clock + "Z"),
        (func.length(column) == 26, day + "T" + func.substr(column, 12) + "Z"),
        else_=day + "T" + clock + "." + func.substr(fraction + "000000", 1, 6) + "Z",  # a short fraction
    )


def _conditions(query: ExportQuery, conversation_id: int | None) -> list[ColumnElement[bool]]:
    conditions = []
    if query.since is not None:
        conditions.append(_m.c.created_at >= query.since)
    if query.before is not None:
        conditions.append(_m.c.created_at < query.before)
    if query.customer is not None:
        conditions.append(_m.c.conversation_id == conversation_id)
    if query.channel is not None:
        conditions.append(_m.c.channel == query.channel)
    if query.direction is not None:
        conditions.append(_m.c.direction == query.direction)
    if query.staff_id is not None:
        conditions.append(_m.c.staff_id == query.staff_id)
    return conditions


def _note_conditions(query: ExportQuery, conversation_id: int | None) -> list[ColumnElement[bool]] | None:
    """The filters as they apply to notes; None when they leave every note out."""
    if query.channel is not None or query.direction is not None:
        return None
    conditions = []
    if query.since is not None:
        conditions.append(_notes.c.created_at >= query.since)
    if query.before is not None:
        conditions.append(_notes.c.created_at < query.before)
    if query.customer is not None:
        conditions.append(_notes.c.conversation_id == conversation_id)
    if query.staff_id is not None:
        conditions.append(_notes.c.staff_id == query.staff_id)
    return conditions


class BatchQuery:
    """The keyset query (`id > :after AND id <= :upper ... ORDER BY id LIMIT n`) over messages
    alone, compiled once by SQLAlchemy (with its bind processing) and run on the driver's own
    connection inside the snapshot's transaction: rows come back as the driver's tuples, with no
    Row objects in between. Customers and staff are looked up per batch and cached, which keeps
    the query a plain index range scan."""

    def __init__(
        self,
        connection: AsyncConnection,
        driver: Any,
        dialect: str,
        query: ExportQuery,
        conversation_id: int | None,
        upper: int,
        limit: int,
    ) -> None:
        statement = (
            select(
                _m.c.id,
                _m.c.sid,
                _m.c.conversation_id,
                _m.c.channel,
                _m.c.direction,
                _m.c.from_addr,
                _m.c.to_addr,
                _m.c.staff_id,
                _m.c.body,
                cast(_m.c.media, Text),
                _m.c.status,
                _m.c.error_code,
                iso_utc_sql(_m.c.created_at, dialect),
                iso_utc_sql(_m.c.updated_at, dialect),
            )
            .where(
                _m.c.id > bindparam("after", 0, type_=_m.c.id.type),
                _m.c.id <= upper,
                *_conditions(query, conversation_id),
            )
            .order_by(_m.c.id)
            .limit(limit)
        )
        state = statement.compile(dialect=connection.dialect).construct_expanded_state()
        self.sql = state.statement
        names = list(state.positiontup or ())
        self.values = [
            state.processors[name](state.parameters[name]) if name in state.processors else state.parameters[name]
            for name in names
        ]
        self.after_at = names.index("after")
        self.driver = driver
        self.postgres = dialect == "postgresql"

    async def run(self, after: int) -> list[Any]:
        values = list(self.values)
        values[self.after_at] = after
        if self.postgres:  # asyncpg
            rows: list[Any] = await self.driver.fetch(self.sql, *values)
            return rows
        cursor = await self.driver.execute(self.sql, values)  # aiosqlite
        try:
            fetched: list[Any] = await cursor.fetchall()
            return fetched
        finally:
            await cursor.close()
