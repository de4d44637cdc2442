"""What the settings page says of the Twilio connection's traffic: when a message last came in,
and the last sending error.

    await connection_health(db) -> ConnectionHealth
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from inbox.models import Direction, Message, MessageStatus

if TYPE_CHECKING:
    from inbox.db import Database


@dataclass(frozen=True)
class SendingError:
    error_code: int | None
    error_message: str | None  # what staff read (inbox.twilio.errors.explain), never customer text
    updated_at: datetime


@dataclass(frozen=True)
class ConnectionHealth:
    last_inbound_at: datetime | None  # the last webhook that brought a message
    last_error: SendingError | None


async def connection_health(db: Database) -> ConnectionHealth:
    async with db.read() as session:
        last_inbound_at = await session.scalar(
            select(func.max(Message.created_at)).where(Message.direction == Direction.INBOUND)
        )
        failed = (
            await session.execute(
                select(Message.error_code, Message.error_message, Message.updated_at)
                .where(Message.status.in_([MessageStatus.FAILED, MessageStatus.UNDELIVERED]))
                .order_by(Message.updated_at.desc())
                .limit(1)
            )
        ).first()
    return ConnectionHealth(last_inbound_at, SendingError(*failed) if failed else None)
