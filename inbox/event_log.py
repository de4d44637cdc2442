"""The stored live events, read back: where a page's socket starts, and what a reconnecting one missed.

    await latest_id(db)              -> the newest event's id (0 before the first)
    await after(db, event_id, limit) -> [(id, type, conversation_id, data as JSON text)], oldest first

Each call owns one short read session; the events are written by inbox.bus, in the transaction
of the change they describe.
"""

from __future__ import annotations

from inbox import store
from inbox.db import Database


async def latest_id(db: Database) -> int:
    async with db.read() as session:
        return await store.latest_event_id(session)


async def after(db: Database, event_id: int, limit: int) -> list[tuple[int, str, int | None, str]]:
    async with db.read() as session:
        return await store.events_after(session, event_id, limit)
