"""Each staff member's own read mark in a conversation: read up to the newest message, or the
customer's latest message unread again. Each call owns its transaction.

    await mark_read(db, conversation_id, staff_id)    -> ReadMark (unread_count 0)
    await mark_unread(db, conversation_id, staff_id)  -> UnreadMark

A conversation that does not exist is a ReadMarkRefused (not found). Nobody else's marks change,
so no live event goes out.
"""

from __future__ import annotations

import msgspec

from inbox import store
from inbox.db import Database
from inbox.refusals import Refused, Why


class ReadMark(msgspec.Struct, kw_only=True):
    """Read up to `last_read_message_id` (0 in a conversation without messages)."""

    conversation_id: int
    last_read_message_id: int
    unread_count: int


class UnreadMark(msgspec.Struct, kw_only=True):
    conversation_id: int
    unread_count: int


class ReadMarkRefused(Refused):
    """A read mark for a conversation that does not exist."""


def _no_such_conversation() -> ReadMarkRefused:
    return ReadMarkRefused(Why.NOT_FOUND, "not_found", "There is no such conversation.")


async def mark_read(db: Database, conversation_id: int, staff_id: int) -> ReadMark:
    async with db.write() as session:
        if not await store.conversation_exists(session, conversation_id):
            raise _no_such_conversation()
        upto = await store.mark_read(session, conversation_id, staff_id)
        await session.commit()
    return ReadMark(conversation_id=conversation_id, last_read_message_id=upto, unread_count=0)


async def mark_unread(db: Database, conversation_id: int, staff_id: int) -> UnreadMark:
    async with db.write() as session:
        if not await store.conversation_exists(session, conversation_id):
            raise _no_such_conversation()
        unread = await store.mark_unread(session, conversation_id, staff_id)
        await session.commit()
    return UnreadMark(conversation_id=conversation_id, unread_count=unread)
