"""The inbound batch's hand-written SQL is what SQLAlchemy would write for the same tables, and
stores rows exactly as the models would, on both databases."""

from __future__ import annotations

import asyncio
import itertools
import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import bindparam, func, text, update
from sqlalchemy.dialects import sqlite

from inbox import batch_sql
from inbox.db import Database
from inbox.models import Conversation, Customer, Event, Message, Staff
from inbox.table_sql import POSTGRESQL, SQLITE, MultiRowInsert

AT = datetime(2026, 3, 4, 7, 8, 9, 123456, tzinfo=timezone(timedelta(hours=2)))  # not UTC, on purpose
MEDIA = [{"url": "https://api.twilio.com/m/1", "content_type": "image/jpeg"}, {"url": "u2", "content_type": "a/b"}]


def run(coroutine):
    return asyncio.run(coroutine)


def _core_insert(statement: MultiRowInsert, rows: int):
    """SQLAlchemy Core's INSERT of `rows` rows giving the statement's fields (and so, as the
    ORM does, the columns with defaults)."""
    return sqlite.insert(statement.table).values([dict.fromkeys(statement.fields)] * rows)


def _returning(model, fields):
    return [model.__table__.c[name] for name in fields]


def _core_statements(rows: int) -> dict[str, str]:
    """The batch's statements as SQLAlchemy renders them for SQLite, from the models' tables."""
    customers = _core_insert(batch_sql.UPSERT_CUSTOMERS, rows)
    customers = customers.on_conflict_do_update(
        index_elements=["phone"],
        set_={
            "whatsapp_profile_name": func.coalesce(
                customers.excluded.whatsapp_profile_name, Customer.whatsapp_profile_name
            )
        },
    ).returning(*_returning(Customer, batch_sql.CustomerRow._fields))
    conversations = _core_insert(batch_sql.ENSURE_CONVERSATIONS, rows)
    conversations = conversations.on_conflict_do_update(
        index_elements=["customer_id"], set_={"customer_id": conversations.excluded.customer_id}
    ).returning(*_returning(Conversation, batch_sql.ConversationRow._fields))
    messages = (
        _core_insert(batch_sql.INSERT_MESSAGES, rows)
        .on_conflict_do_nothing(index_elements=["sid"])
        .returning(Message.id, Message.sid)
    )
    events = _core_insert(batch_sql.INSERT_EVENTS, rows).returning(Event.id)
    return {
        name: str(statement.compile(dialect=sqlite.dialect()))
        for name, statement in {
            "customers": customers,
            "conversations": conversations,
            "messages": messages,
            "events": events,
        }.items()
    }


def _numbered(sql: str) -> str:
    """PostgreSQL's form of a SQLite statement: $1, $2, … for its ?s."""
    counter = itertools.count(1)
    return re.sub(r"\?", lambda _: f"${next(counter)}", sql)


@pytest.mark.parametrize("rows", [1, 3])
def test_the_statements_are_sqlalchemys_own_for_the_models_tables(rows) -> None:
    ours = {
        "customers": batch_sql.UPSERT_CUSTOMERS,
        "conversations": batch_sql.ENSURE_CONVERSATIONS,
        "messages": batch_sql.INSERT_MESSAGES,
        "events": batch_sql.INSERT_EVENTS,
    }
    for name, expected in _core_statements(rows).items():
        assert ours[name].sql(SQLITE, rows) == expected, name
        assert ours[name].sql(POSTGRESQL, rows) == _numbered(expected), name
    touch = str(
        update(Conversation.__table__)
        .values(status=bindparam("s"), last_message_id=bindparam("m"), last_activity_at=bindparam("a"))
        .where(Conversation.__table__.c.id == bindparam("i"))
        .compile(dialect=sqlite.dialect())
    )
    assert batch_sql.TOUCH_CONVERSATIONS.sql(SQLITE) == touch
    assert batch_sql.TOUCH_CONVERSATIONS.sql(POSTGRESQL) == _numbered(touch)


def test_the_statements_write_the_columns_the_rows_name_and_those_with_defaults() -> None:
    # Pinned, so that a change of how the columns are chosen shows here (the test above holds
    # them to SQLAlchemy, which chooses the same columns whatever this module does).
    assert [column.name for column in batch_sql.INSERT_MESSAGES.columns] == [
        "conversation_id", "sid", "direction", "channel", "from_addr", "to_addr", "body", "media", "status",
        "attempts", "needs_reconcile", "keyword", "probable_opt_out", "created_at", "updated_at",
    ]  # fmt: skip


def test_columns_a_row_leaves_out_get_their_defaults_as_the_orm_writes_them() -> None:
    # staff has all three kinds: a value (disabled), a function (preferences: dict), utcnow.
    insert = MultiRowInsert(Staff, ("email", "name", "role", "password_hash"))
    assert insert.sql(SQLITE, 1) == (
        "INSERT INTO staff (email, name, role, password_hash, disabled, preferences, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)"
    )
    row = ("a@example.com", "Ana", "manager", "hash")
    assert insert.parameters(SQLITE, [row], AT) == [*row, False, "{}", "2026-03-04 05:08:09.123456"]
    assert insert.parameters(POSTGRESQL, [row], AT) == [*row, False, "{}", AT]


def test_rows_written_here_read_back_through_the_models_as_written(database_url) -> None:
    async def go() -> None:
        db = Database(database_url)
        try:
            async with db.write() as session:
                connection = await session.connection()
                [customer] = await batch_sql.upsert_customers(connection, {"+14155550123": "Ana"}, AT)
                [again] = await batch_sql.upsert_customers(
                    connection, {"+14155550123": None}, AT
                )  # None keeps the name
                assert again == customer and customer.whatsapp_profile_name == "Ana"
                [thread] = await batch_sql.ensure_conversations(connection, [customer.id], AT)
                assert thread.last_activity_at == AT and thread.last_activity_at.tzinfo == UTC
                inbound = batch_sql.InboundMessage(
                    conversation_id=thread.id,
                    sid="SM" + "a" * 32,
                    channel="whatsapp",
                    from_addr="whatsapp:+14155550123",
                    to_addr="whatsapp:+14155238886",
                    body="Stop texting me 😀",
                    media=MEDIA,
                    keyword=None,
                    probable_opt_out=True,
                    created_at=AT,
                    updated_at=AT,
                )
                [stored] = await batch_sql.insert_messages(connection, [inbound], AT)
                assert stored == batch_sql.StoredMessage(stored.id, *inbound)
                assert await batch_sql.insert_messages(connection, [inbound], AT) == []  # the same SID: skipped
                assert await batch_sql.known_sids(connection, [inbound.sid, "SM" + "b" * 32]) == {inbound.sid}
                await batch_sql.touch_conversations(connection, [batch_sql.ConversationTouch(thread.id, stored.id, AT)])
                # The same message written by the ORM, for the raw comparison below.
                session.add(
                    Message(
                        conversation_id=thread.id,
                        sid="SM" + "c" * 32,
                        direction="inbound",
                        channel="whatsapp",
                        from_addr=inbound.from_addr,
                        to_addr=inbound.to_addr,
                        body=inbound.body,
                        media=MEDIA,
                        status="received",
                        probable_opt_out=True,
                        created_at=AT,
                        updated_at=AT,
                    )
                )
                await session.commit()
            async with db.read() as session:
                message = await session.get(Message, stored.id)
                assert (message.created_at, message.updated_at) == (AT, AT) and message.created_at.tzinfo == UTC
                assert message.media == MEDIA and message.body == "Stop texting me 😀"
                assert message.probable_opt_out is True and message.needs_reconcile is False and message.attempts == 0
                assert (message.direction, message.status, message.keyword) == ("inbound", "received", None)
                conversation = await session.get(Conversation, thread.id)
                assert (conversation.last_message_id, conversation.last_activity_at, conversation.status) == (
                    stored.id,
                    AT,
                    "open",
                )
                assert (await session.get(Customer, customer.id)).whatsapp_profile_name == "Ana"
                # Byte for byte what the ORM stores, in every column: times (text on SQLite), JSON,
                # booleans, defaults. Only the id and the SID differ.
                columns = ", ".join(c.name for c in Message.__table__.columns if c.name not in ("id", "sid"))
                raw = (await session.execute(text(f"SELECT {columns} FROM messages ORDER BY id"))).all()
                assert raw[0] == raw[1]
        finally:
            await db.dispose()

    run(go())


def test_events_get_their_ids_in_order_even_past_one_statement(database_url) -> None:
    async def go() -> list[tuple[int, str]]:
        db = Database(database_url)
        try:
            async with db.write() as session:
                rows = [("message.created", None, f'{{"n":{n}}}') for n in range(batch_sql.MAX_ROWS * 2 + 5)]
                ids = await batch_sql.insert_events(await session.connection(), rows, AT)
                await session.commit()
            async with db.read() as session:
                stored = (await session.execute(text("SELECT id, data FROM events ORDER BY id"))).all()
            return ids, [tuple(row) for row in stored]
        finally:
            await db.dispose()

    ids, stored = run(go())
    assert ids == [event_id for event_id, _ in stored]
    assert [data for _, data in stored] == [f'{{"n":{n}}}' for n in range(batch_sql.MAX_ROWS * 2 + 5)]
