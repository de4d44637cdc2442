"""The one entry for an inbound message: customer, thread, message and live events, in one commit.

    handle(db, bus, payload) -> InboundResult

A MessageSid seen before changes nothing (the unique SID is what makes redeliveries and
replays of a captured request harmless). Nothing here waits on the network.
"""

from __future__ import annotations

from dataclasses import dataclass

from inbox import bus as events_bus
from inbox import store
from inbox.db import Database
from inbox.events import ConversationUpdated, MessageCreated
from inbox.models import Direction, MessageStatus
from inbox.phones import channel_of, to_e164
from inbox.twilio.payloads import InboundPayload


@dataclass(frozen=True)
class InboundResult:
    duplicate: bool
    message_id: int | None = None
    conversation_id: int | None = None


async def handle(db: Database, bus: events_bus.Bus, payload: InboundPayload) -> InboundResult:
    # A cheap read first: a redelivery never takes the write lock. The unique SID below is
    # what actually guarantees one row when copies race.
    async with db.read() as session:
        if await store.sid_exists(session, payload.sid):
            return InboundResult(duplicate=True)

    async with db.write() as session:
        customer = await store.upsert_customer(session, to_e164(payload.from_addr), payload.profile_name)
        conversation = await store.ensure_conversation(session, customer.id)
        message = await store.insert_message(
            session,
            {
                "conversation_id": conversation.id,
                "sid": payload.sid,
                "direction": Direction.INBOUND,
                "channel": channel_of(payload.from_addr),
                "from_addr": payload.from_addr,
                "to_addr": payload.to_addr,
                "body": payload.body,
                "media": payload.media,
                "status": MessageStatus.RECEIVED,
            },
        )
        if message is None:  # a concurrent copy won the race
            await session.rollback()
            return InboundResult(duplicate=True)
        await store.touch_conversation(session, conversation, message)
        consent = (await store.consent_states(session, [customer.id]))[customer.id]
        message_json = store.message_dict(message)
        events_bus.record(session, MessageCreated(conversation.id, message_json))
        events_bus.record(
            session,
            ConversationUpdated(
                conversation.id, store.conversation_dict(conversation, customer, consent, message, None)
            ),
        )
        await events_bus.commit(session, bus)
        return InboundResult(duplicate=False, message_id=message.id, conversation_id=conversation.id)
