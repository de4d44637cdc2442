"""The printable transcript: one conversation, all its messages oldest first, as a page shows it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from inbox import store
from inbox.models import Conversation, Customer, Message, Staff

if TYPE_CHECKING:
    from inbox.db import Database


async def transcript(db: Database, conversation_id: int) -> dict[str, Any] | None:
    """One conversation, all its messages oldest first, with each reply's staff sender; None if
    there is no such conversation."""
    async with db.read() as session:
        return await _read(session, conversation_id)


async def _read(session: AsyncSession, conversation_id: int) -> dict[str, Any] | None:
    head = (
        await session.execute(
            select(Conversation.id, Conversation.status, Customer.name, Customer.whatsapp_profile_name, Customer.phone)
            .join(Customer, Customer.id == Conversation.customer_id)
            .where(Conversation.id == conversation_id)
        )
    ).first()
    if head is None:
        return None
    rows = await session.execute(
        select(
            Message.id,
            Message.direction,
            Message.channel,
            Message.from_addr,
            Message.to_addr,
            Message.body,
            Message.media,
            Message.status,
            Message.error_code,
            Message.auto_reply,
            Message.created_at,
            Staff.name.label("staff_name"),
            Staff.email.label("staff_email"),
        )
        .outerjoin(Staff, Staff.id == Message.staff_id)
        .where(Message.conversation_id == conversation_id)
        .order_by(*store.thread_order())
    )
    messages = []
    for row in rows:
        media = [
            {
                "url": item.get("url", ""),
                "content_type": item.get("content_type", ""),
                "linkable": str(item.get("url", "")).startswith(("https://", "http://")),
            }
            for item in (row.media or [])
            if isinstance(item, dict)
        ]
        messages.append(
            {
                "id": row.id,
                "direction": row.direction,
                "channel": row.channel,
                "from": row.from_addr,
                "to": row.to_addr,
                "body": row.body,
                "media": media,
                "status": row.status,
                "error_code": row.error_code,
                "auto_reply": row.auto_reply,
                "staff_name": row.staff_name or row.staff_email,
                "created_at": row.created_at,
            }
        )
    return {
        "id": head.id,
        "status": head.status,
        "customer_name": head.name or head.whatsapp_profile_name,
        "customer_phone": head.phone,
        "messages": messages,
    }
