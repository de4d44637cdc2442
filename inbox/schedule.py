"""Scheduled replies: a reply that waits for its `send_at`, then goes through the outbox like any other.

    parse_send_at(value)          -> aware UTC datetime, or ReplyRefused 422 (naive, past, too far ahead)
    promote_due(db, bus)          the outbox calls it: due `scheduled` rows become `queued`, once each
    cancel(db, bus, message_id)           `scheduled` -> `canceled` (never sent); ReplyRefused 409 once it has gone
    send_now(db, bus, outbox, message_id) `scheduled` -> `queued` at once

A scheduled row is stored `scheduled` with `next_attempt_at = send_at`, so the outbox's index
(status, next_attempt_at) finds the due ones. Promotion is one UPDATE that moves each row only
from `scheduled` (FOR UPDATE SKIP LOCKED on PostgreSQL), so with a restart or a second process a
row is queued once; from there the outbox's lease sends it once. Consent and the WhatsApp window
are not checked when scheduling: the outbox checks them just before sending, as for every reply,
and a refusal fails the message with the reason.

A promoted message takes the moment it is queued as its `created_at` (what the customer sees and
the reports count), keeps `send_at` as the time that was asked for, and becomes the conversation's
latest activity then.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, NoReturn

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from inbox import attachments, reports, store
from inbox import bus as events_bus
from inbox.bus import Bus
from inbox.clock import utcnow
from inbox.db import Database
from inbox.events import ConversationUpdated, MessageUpdated
from inbox.models import Conversation, Customer, Direction, Message, MessageStatus
from inbox.objects import MessageObject
from inbox.outbound import OutboxWaker, ReplyRefused
from inbox.refusals import Why

HORIZON = timedelta(days=366)  # how far ahead a reply may be scheduled


def parse_send_at(value: object, now: datetime | None = None) -> datetime | None:
    """The instant a reply should go out (UTC), from an ISO 8601 text with its offset; None: at once."""
    if value is None:
        return None
    moment = None
    if isinstance(value, str) and len(value) <= 64:
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            moment = None
    if moment is None:
        raise ReplyRefused(
            Why.INVALID,
            "invalid_send_at",
            "send_at must be a date and time in ISO 8601, such as 2026-03-01T09:00:00+00:00.",
        )
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ReplyRefused(
            Why.INVALID,
            "invalid_send_at",
            "send_at needs its time zone offset (such as +01:00 or Z): without it the time is ambiguous.",
        )
    now = now or utcnow()
    if moment <= now:
        raise ReplyRefused(Why.INVALID, "send_at_in_past", "That time has already passed: choose a time in the future.")
    if moment > now + HORIZON:
        raise ReplyRefused(Why.INVALID, "send_at_too_far", "A reply can be scheduled at most one year ahead.")
    return moment


async def promote_due(db: Database, bus: Bus) -> int:
    """Queues every scheduled reply whose time has come; returns how many. Cheap when none is due."""
    now = utcnow()
    due = [*SCHEDULED, Message.next_attempt_at <= now]
    async with db.read() as session:
        if await session.scalar(select(Message.id).where(*due).limit(1)) is None:
            return 0
    async with db.write() as session:
        promoted = await _promote(session, due, now)
        await events_bus.commit(session, bus)
    return len(promoted)


async def send_now(db: Database, bus: Bus, outbox: OutboxWaker, message_id: int) -> MessageObject:
    """Queues a scheduled reply at once (its `send_at` becomes now)."""
    async with db.write() as session:
        now = utcnow()
        promoted = await _promote(session, [Message.id == message_id, *SCHEDULED], now, send_at=now)
        if not promoted:
            await _refuse(session, message_id, "sent now")
        await events_bus.commit(session, bus)
    outbox.wake()
    return promoted[0]


async def cancel(db: Database, bus: Bus, message_id: int) -> MessageObject:
    """Calls off a scheduled reply; canceling one already canceled answers the same."""
    async with db.write() as session:
        row = (
            await session.execute(
                update(Message)
                .where(Message.id == message_id, *SCHEDULED)
                .values(status=MessageStatus.CANCELED, next_attempt_at=None, updated_at=utcnow())
                .returning(Message.id)
                .execution_options(synchronize_session=False)
            )
        ).scalar()
        message = await session.get(Message, message_id, populate_existing=True)
        if message is None or (row is None and message.status != MessageStatus.CANCELED):
            await _refuse(session, message_id, "canceled")
        await store.learn_authors(session, [message])
        canceled = store.message_object(message)
        if row is not None:
            await attachments.settle(session, message)  # never going out: its files stop being served
            events_bus.record(session, MessageUpdated(message.conversation_id, canceled))
            await events_bus.commit(session, bus)
    return canceled


# ---- internals --------------------------------------------------------------------------

SCHEDULED: list[ColumnElement[bool]] = [
    Message.direction == Direction.OUTBOUND,
    Message.status == MessageStatus.SCHEDULED,
]


async def _promote(
    session: AsyncSession, where: list[ColumnElement[bool]], now: datetime, send_at: datetime | None = None
) -> list[MessageObject]:
    """`scheduled` → `queued` for the rows matching `where`, with their live events; each row moves
    in exactly one transaction (the status condition, and row locks on PostgreSQL)."""
    picked = select(Message.id).where(*where).order_by(Message.id).limit(500)
    if session.get_bind().dialect.name == "postgresql":
        picked = picked.with_for_update(skip_locked=True)
    values: dict[str, Any] = {
        "status": MessageStatus.QUEUED,
        "next_attempt_at": now,
        "created_at": now,
        "updated_at": now,
    }
    if send_at is not None:
        values["send_at"] = send_at
    ids = (
        await session.execute(
            update(Message)
            .where(Message.id.in_(picked.scalar_subquery()), Message.status == MessageStatus.SCHEDULED)
            .values(**values)
            .returning(Message.id)
            .execution_options(synchronize_session=False)
        )
    ).scalars()
    ids_list = sorted(ids.all())
    if not ids_list:
        return []
    rows = (
        await session.execute(
            select(Message, Conversation, Customer)
            .join(Conversation, Conversation.id == Message.conversation_id)
            .join(Customer, Customer.id == Conversation.customer_id)
            .where(Message.id.in_(ids_list))
            .order_by(Message.id)
            .execution_options(populate_existing=True)
        )
    ).all()
    await store.learn_authors(session, [m for m, _, _ in rows])
    consent = await store.consent_states(session, list({c.id for _, _, c in rows}))
    out = []
    for message, conversation, customer in rows:
        if message.staff_id is not None and not message.auto_reply:  # the wait it ends, for the reports
            message.wait_started_at = await reports.wait_started(session, conversation.id, now)
        await store.touch_conversation(session, conversation, message)
        queued = store.message_object(message)
        events_bus.record(session, MessageUpdated(conversation.id, queued))
        await store.learn_assignees(session, [conversation])
        events_bus.record(
            session,
            ConversationUpdated(
                conversation.id,
                store.conversation_object(
                    conversation, customer, consent[customer.id], message, None, last_message_object=queued
                ),
            ),
        )
        out.append(queued)
    return out


async def _refuse(session: AsyncSession, message_id: int, action: str) -> NoReturn:
    """Why a message cannot be canceled or sent now: 404 unknown, 409 otherwise. Always raises."""
    message = await session.get(Message, message_id)
    if message is None:
        raise ReplyRefused(Why.NOT_FOUND, "not_found", "There is no such message.")
    if message.direction != Direction.OUTBOUND:
        raise ReplyRefused(Why.CONFLICT, "not_scheduled", f"Only a scheduled reply can be {action}.")
    if message.status == MessageStatus.CANCELED:
        raise ReplyRefused(Why.CONFLICT, "canceled", "This scheduled reply was canceled; write it again to send it.")
    raise ReplyRefused(
        Why.CONFLICT, "already_sent", f"This reply has already gone out, so it can no longer be {action}."
    )
