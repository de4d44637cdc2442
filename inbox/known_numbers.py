"""Whether a number the staff typed belongs to a customer the inbox already knows.

await conversation_of_phone(db, "+14155550100")  -> that customer's conversation id, or None
"""

from __future__ import annotations

from sqlalchemy import select

from inbox import store
from inbox.db import Database
from inbox.models import Customer


async def conversation_of_phone(db: Database, e164: str) -> int | None:
    async with db.read() as session:
        customer_id = await session.scalar(select(Customer.id).where(Customer.phone == e164))
        return await store.conversation_id_of(session, customer_id) if customer_id is not None else None
