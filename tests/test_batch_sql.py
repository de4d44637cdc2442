"""The inbound batch's hand-written SQL stores rows exactly as the models would, on both databases."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import text

from inbox import batch_sql
from inbox.db import Database
from inbox.models import Conversation, Customer, Message

AT = datetime(2026, 3, 4, 7, 8, 9, 123456, tzinfo=timezone(timedelta(hours=2)))  # not UTC, on purpose
MEDIA = [{"url": "https://api.twilio.com/m/1", "content_type": "image/jpeg"}, {"url": "u2", "content_type": "a/b"}]


def run(coroutine):
    return asyncio.run(coroutine)


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
                inbound = batch_sql.InboundRow(
                    thread.id,
                    "SM" + "a" * 32,
                    "whatsapp",
                    "whatsapp:+14155550123",
                    "whatsapp:+14155238886",
                    "Stop texting me 😀",
                    MEDIA,
                    None,
                    True,
                    AT,
                )
                [stored] = await batch_sql.insert_messages(connection, [inbound])
                assert await batch_sql.insert_messages(connection, [inbound]) == []  # the same SID: skipped
                assert await batch_sql.known_sids(connection, [inbound.sid, "SM" + "b" * 32]) == {inbound.sid}
                await batch_sql.touch_conversations(connection, [(thread.id, stored.id, AT)])
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
                # Byte for byte what the ORM stores: times (text on SQLite), JSON, booleans.
                raw = (
                    await session.execute(
                        text(
                            "SELECT created_at, updated_at, media, probable_opt_out, needs_reconcile, attempts "
                            "FROM messages ORDER BY id"
                        )
                    )
                ).all()
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
