"""Delivery status: Twilio's callbacks (and send results) applied forward-only.

A late `sent` never undoes `delivered`; a repeated callback changes nothing. A callback for a SID
the inbox has not stored yet (the send's own response is still on its way) is kept in
pending_statuses and applied the moment the SID is recorded.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import CursorResult, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from inbox import attachments, store
from inbox import bus as events_bus
from inbox.clock import utcnow
from inbox.events import MessageUpdated
from inbox.models import Message, MessageStatus, PendingStatus, may_move
from inbox.twilio.errors import explain

if TYPE_CHECKING:
    from inbox.bus import Bus
    from inbox.db import Database

KNOWN = {s.value for s in MessageStatus} - {MessageStatus.RECEIVED.value}


def parse_status(raw: str) -> MessageStatus | None:
    raw = raw.lower()
    if raw == "scheduled":
        return MessageStatus.ACCEPTED
    return MessageStatus(raw) if raw in KNOWN else None


# What staff read when Twilio reports a failure without an ErrorCode (it happens): a plain sentence.
NO_CODE_REASONS = {
    MessageStatus.FAILED: "Twilio could not send this message and gave no reason.",
    MessageStatus.UNDELIVERED: "The carrier did not deliver this message and gave no reason.",
}


def advance(session: AsyncSession, message: Message, status: MessageStatus, error_code: int | None) -> bool:
    """Moves `message` forward if allowed and queues its live event; False if nothing changed."""
    if not may_move(MessageStatus(message.status), status):
        return False
    message.status = status
    if error_code:
        message.error_code = error_code
        message.error_message = explain(error_code)
    elif status in NO_CODE_REASONS and not message.error_message:
        message.error_message = NO_CODE_REASONS[status]
    message.updated_at = utcnow()
    if status != MessageStatus.QUEUED:
        message.next_attempt_at = None
    events_bus.record(session, MessageUpdated(message.conversation_id, store.message_object(message)))
    return True


async def apply_callback(
    db: Database,
    bus: Bus,
    sid: str,
    raw_status: str,
    error_code: int | None,
    message_id: int | None = None,
    sender: str | None = None,
    *,
    sweep: bool = False,
) -> bool:
    """Applies one callback in its own transaction, committed with its live event, which is then
    published. True if a message changed. `sweep`: expire old pending statuses in the same
    transaction (the caller says when, at most once a minute).

    `message_id` comes from the signed callback URL of a TwiML answer, whose SID the inbox
    learns only from this callback. `sender` (the callback's From) fills a sender the inbox did
    not know: the number a Messaging Service chose, kept for the replies that follow.

    The webhook's hottest path after inbound: one coroutine, the steps written out in it."""
    changed = False
    async with db.write() as session:
        status = parse_status(raw_status)
        if status is not None:
            message = await store.message_by_sid(session, sid)
            if message is None and message_id is not None:
                candidate = await session.get(Message, message_id)
                if candidate is not None and candidate.sid is None and candidate.auto_reply:
                    candidate.sid = sid
                    message = candidate
            if message is None:
                session.add(PendingStatus(sid=sid, status=status.value, error_code=error_code))
            else:
                await store.learn_authors(session, [message])
                if sender and not message.from_addr:
                    message.from_addr = sender
                changed = advance(session, message, status, error_code)
                if changed:
                    await attachments.settle(session, message)
        if sweep:
            await expire_pending(session)
        await events_bus.commit(session, bus)
    return changed


PENDING_TTL = timedelta(minutes=15)  # a send's SID is known within seconds; older rows are for SIDs never sent


async def expire_pending(session: AsyncSession, now: datetime | None = None) -> int:
    """Deletes callbacks kept for SIDs that never became a message of ours (a Messaging Service's
    callbacks for other senders, say): without this they would pile up for ever."""
    cutoff = (now or utcnow()) - PENDING_TTL
    result = await session.execute(delete(PendingStatus).where(PendingStatus.created_at < cutoff))
    return cast(CursorResult[Any], result).rowcount or 0  # a DELETE's result is a CursorResult


async def apply_pending(session: AsyncSession, message: Message) -> None:
    """Replays callbacks that arrived before this message's SID was known, in arrival order."""
    pending = (
        (
            await session.execute(
                select(PendingStatus).where(PendingStatus.sid == message.sid).order_by(PendingStatus.id)
            )
        )
        .scalars()
        .all()
    )
    for item in pending:
        advance(session, message, MessageStatus(item.status), item.error_code)
    if pending:
        await session.execute(delete(PendingStatus).where(PendingStatus.sid == message.sid))
