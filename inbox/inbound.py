"""The one entry for inbound messages: customer, thread, message and live events, in one commit.

    await handle_batch(db, bus, [payload, ...]) -> [InboundResult, ...]
    await InboundWriter(db, bus).submit(payload) -> InboundResult   (group commit)

A MessageSid seen before changes nothing: the unique SID is what makes redeliveries, racing
copies on other processes and replays of a captured request harmless. Nothing here waits on the
network. Under load, concurrent webhooks share one transaction (a handful of multi-row
statements and one COMMIT), and each request still waits until its own row is durable.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

import structlog
from sqlalchemy import select

from inbox import bus as events_bus
from inbox import store
from inbox.db import Database
from inbox.events import ConversationUpdated, MessageCreated
from inbox.models import Conversation, Customer, Direction, Message, MessageStatus, utcnow
from inbox.phones import channel_of, to_e164
from inbox.twilio.payloads import InboundPayload

log = structlog.get_logger(__name__)
MAX_BATCH = 128


@dataclass(frozen=True)
class InboundResult:
    duplicate: bool
    message_id: int | None = None
    conversation_id: int | None = None


DUPLICATE = InboundResult(duplicate=True)


async def handle(db: Database, bus: events_bus.Bus, payload: InboundPayload) -> InboundResult:
    return (await handle_batch(db, bus, [payload]))[0]


async def handle_batch(db: Database, bus: events_bus.Bus, payloads: list[InboundPayload]) -> list[InboundResult]:
    """Stores every new message of `payloads` in one transaction; results in the same order."""
    first_by_sid: dict[str, InboundPayload] = {}
    for payload in payloads:
        first_by_sid.setdefault(payload.sid, payload)
    results: dict[str, InboundResult] = {}
    async with db.write() as session:
        known = set(
            (await session.execute(select(Message.sid).where(Message.sid.in_(list(first_by_sid))))).scalars()
        )
        fresh = [p for sid, p in first_by_sid.items() if sid not in known]
        if fresh:
            results = await _store(session, fresh)
            await events_bus.commit(session, bus)
    # Later copies of a SID within the batch, and SIDs stored before, are duplicates.
    answered: set[str] = set()
    ordered = []
    for payload in payloads:
        result = results.get(payload.sid, DUPLICATE) if payload.sid not in answered else DUPLICATE
        answered.add(payload.sid)
        ordered.append(result)
    return ordered


async def _store(session, payloads: list[InboundPayload]) -> dict[str, InboundResult]:
    phones = {p.sid: to_e164(p.from_addr) for p in payloads}
    profile_by_phone: dict[str, str | None] = {}
    for p in payloads:  # the newest WhatsApp name wins
        profile_by_phone[phones[p.sid]] = p.profile_name or profile_by_phone.get(phones[p.sid])
    customers = {c.phone: c for c in await store.upsert_customers(session, profile_by_phone)}
    conversations = {
        c.customer_id: c for c in await store.ensure_conversations(session, [c.id for c in customers.values()])
    }
    rows = []
    for p in payloads:
        conversation = conversations[customers[phones[p.sid]].id]
        rows.append({
            "conversation_id": conversation.id,
            "sid": p.sid,
            "direction": Direction.INBOUND,
            "channel": channel_of(p.from_addr),
            "from_addr": p.from_addr,
            "to_addr": p.to_addr,
            "body": p.body,
            "media": p.media,
            "status": MessageStatus.RECEIVED,
        })
    # Copies racing on another process lose here (ON CONFLICT DO NOTHING) and count as duplicates.
    inserted = sorted(await store.insert_messages(session, rows), key=lambda m: m.id)
    if not inserted:
        return {}
    touched: dict[int, tuple[Conversation, Message]] = {}
    for message in inserted:
        conversation = next(c for c in conversations.values() if c.id == message.conversation_id)
        await store.touch_conversation(session, conversation, message)
        touched[conversation.id] = (conversation, message)
    customer_by_id = {c.id: c for c in customers.values()}
    consent = await store.consent_states(session, [conversation.customer_id for conversation, _ in touched.values()])
    for message in inserted:
        events_bus.record(session, MessageCreated(message.conversation_id, store.message_dict(message)))
    for conversation, last in touched.values():
        customer: Customer = customer_by_id[conversation.customer_id]
        events_bus.record(session, ConversationUpdated(
            conversation.id, store.conversation_dict(conversation, customer, consent[customer.id], last, None)))
    return {m.sid: InboundResult(False, m.id, m.conversation_id) for m in inserted}


class InboundWriter:
    """Group commit for the webhook: whoever arrives while a transaction is open joins the next one."""

    def __init__(self, db: Database, bus: events_bus.Bus, max_batch: int = MAX_BATCH) -> None:
        self.db, self.bus, self.max_batch = db, bus, max_batch
        self._queue: asyncio.Queue[tuple[InboundPayload, asyncio.Future]] = asyncio.Queue()
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="inbound-writer")

    async def stop(self) -> None:
        if self._task is None:
            return
        while not self._queue.empty():  # let accepted webhooks finish before closing
            await asyncio.sleep(0.01)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def submit(self, payload: InboundPayload) -> InboundResult:
        if self._task is None:  # not started (a script, a test): no batching
            return await handle(self.db, self.bus, payload)
        future = asyncio.get_running_loop().create_future()
        await self._queue.put((payload, future))
        return await future

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                results = await handle_batch(self.db, self.bus, [payload for payload, _ in batch])
            except Exception:
                log.exception("inbound batch failed; retrying its webhooks one by one", size=len(batch))
                await self._one_by_one(batch)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)

    async def _one_by_one(self, batch) -> None:
        """One bad webhook must not fail the others that shared its transaction."""
        for payload, future in batch:
            try:
                result = await handle(self.db, self.bus, payload)
            except Exception as exc:
                if not future.done():
                    future.set_exception(exc)
            else:
                if not future.done():
                    future.set_result(result)
