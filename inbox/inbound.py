"""The one entry for inbound messages: customer, thread, message and live events, in one commit.

    await handle_batch(db, bus, settings, [payload, ...]) -> [InboundResult, ...]
    await InboundWriter(db, bus, settings).submit(payload) -> InboundResult   (group commit)

Keywords (the whole message, as Twilio reads them): STOP and its synonyms opt the customer out of
that channel, START and its synonyms back in, each kept in the consent ledger with the message
as evidence; HELP, STOP and START are answered once through the outbox (unless Twilio's Advanced
Opt-Out answers them: INBOX_KEYWORD_REPLIES=twilio). A redelivered keyword is a duplicate like
any other message, so it is recorded and answered once.

The answer goes back in the webhook's own TwiML (`<Message statusCallback=…?m=<id>>`), as
Twilio expects: after a STOP, Twilio refuses REST sends to that number (21610), but the reply
to the STOP itself is allowed. It is stored as an `accepted` outbound message the outbox never
claims; its status callback carries the message id, so its ticks arrive like any reply's.

A MessageSid seen before changes nothing: the unique SID is what makes redeliveries, racing
copies on other processes and replays of a captured request harmless. Nothing here waits on the
network. Under load, concurrent webhooks share one transaction (a handful of multi-row
statements and one COMMIT), and each request still waits until its own row is durable.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from inbox import app_settings, batch_sql, consent, keywords, outbound, store
from inbox import bus as events_bus
from inbox.bus import Bus
from inbox.clock import utcnow
from inbox.db import Database
from inbox.events import ConversationUpdated, MessageCreated
from inbox.keywords import Keyword
from inbox.models import ConsentState, Conversation, ConversationStatus, Customer, MediaItem, Message
from inbox.objects import MessageObject
from inbox.phones import bare, channel_of, to_e164
from inbox.settings import Settings
from inbox.twilio.payloads import InboundPayload

log = structlog.get_logger(__name__)
MAX_BATCH = 128


@dataclass(frozen=True)
class InboundResult:
    duplicate: bool
    message_id: int | None = None
    conversation_id: int | None = None
    answer: tuple[int, str] | None = None  # (message id, text) of a keyword answer for the TwiML


DUPLICATE = InboundResult(duplicate=True)


async def handle(db: Database, bus: Bus, settings: Settings, payload: InboundPayload) -> InboundResult:
    return (await handle_batch(db, bus, settings, [payload]))[0]


async def handle_batch(
    db: Database, bus: Bus, settings: Settings, payloads: list[InboundPayload]
) -> list[InboundResult]:
    """Stores every new message of `payloads` in one transaction; results in the same order."""
    first_by_sid: dict[str, InboundPayload] = {}
    for payload in payloads:
        first_by_sid.setdefault(payload.sid, payload)
    results: dict[str, InboundResult] = {}
    async with db.write() as session:
        connection = await session.connection()
        known = await batch_sql.known_sids(connection, list(first_by_sid))
        fresh = [p for sid, p in first_by_sid.items() if sid not in known]
        if fresh:
            results = await _store(settings, session, connection, fresh)
            await events_bus.commit(session, bus)
    # Later copies of a SID within the batch, and SIDs stored before, are duplicates.
    answered: set[str] = set()
    ordered: list[InboundResult] = []
    for payload in payloads:
        result = results.get(payload.sid, DUPLICATE) if payload.sid not in answered else DUPLICATE
        answered.add(payload.sid)
        ordered.append(result)
    return ordered


@dataclass
class _Thread:
    """A conversation as this batch leaves it (a store.ConversationFields)."""

    id: int
    customer_id: int
    status: str
    last_message_id: int | None
    last_activity_at: datetime
    assignee_id: int | None  # kept: a customer's new message reopens a closed thread with its owner


async def _store(
    settings: Settings, session: AsyncSession, connection: AsyncConnection, payloads: list[InboundPayload]
) -> dict[str, InboundResult]:
    """Customers, conversations, messages and their events in a handful of multi-row statements
    (`inbox.batch_sql`: this is the webhook's hot path). Keyword messages, which are rare, then
    go through the consent ledger and the outbox like any other write."""
    policy = await app_settings.cached_keyword_policy(session, settings)
    now = utcnow()
    phones = {p.sid: to_e164(p.from_addr) for p in payloads}
    profile_by_phone: dict[str, str | None] = {}
    for p in payloads:  # the newest WhatsApp name wins
        profile_by_phone[phones[p.sid]] = p.profile_name or profile_by_phone.get(phones[p.sid])
    customers = {c.phone: c for c in await batch_sql.upsert_customers(connection, profile_by_phone, now)}
    threads = {
        c.customer_id: _Thread(**c._asdict())
        for c in await batch_sql.ensure_conversations(connection, [c.id for c in customers.values()], now)
    }
    rows: list[batch_sql.InboundMessage] = []
    keyword_of_sid: dict[str, Keyword | None] = {}
    for p in payloads:
        keyword = _keyword_of(p, policy)
        keyword_of_sid[p.sid] = keyword
        at = p.received_at or now  # recovered messages (reconcile) keep Twilio's time
        rows.append(
            batch_sql.InboundMessage(
                conversation_id=threads[customers[phones[p.sid]].id].id,
                sid=p.sid,
                channel=channel_of(p.from_addr),
                from_addr=p.from_addr,
                to_addr=p.to_addr,
                body=p.body,
                media=[MediaItem(url=m["url"], content_type=m["content_type"]) for m in p.media],
                keyword=keyword.value if keyword else None,
                probable_opt_out=keyword is None and keywords.reads_like_opt_out(p.body),
                created_at=at,
                updated_at=at,
            )
        )
    # Copies racing on another process lose here (ON CONFLICT DO NOTHING) and count as duplicates.
    inserted = await batch_sql.insert_messages(connection, rows, now)
    if not inserted:
        return {}
    thread_by_id = {t.id: t for t in threads.values()}
    latest: dict[int, batch_sql.StoredMessage] = {}  # conversation id -> its newest message of this batch
    message_objects: dict[int, MessageObject] = {}
    for message in inserted:
        thread = thread_by_id[message.conversation_id]
        if store.is_latest(thread, message):
            thread.last_message_id, thread.last_activity_at = message.id, message.created_at
            latest[thread.id] = message
        thread.status = ConversationStatus.OPEN
        message_objects[message.id] = store.message_object(message)
        events_bus.record(session, MessageCreated(thread.id, message_objects[message.id]))
    touched = dict.fromkeys(message.conversation_id for message in inserted)  # in message order
    await batch_sql.touch_conversations(
        connection,
        [
            batch_sql.ConversationTouch(t.id, t.last_message_id, t.last_activity_at)
            for t in (thread_by_id[cid] for cid in touched)
        ],
    )
    customer_by_id = {c.id: c for c in customers.values()}
    answers: dict[str, tuple[int, str]] = {}
    answered_threads: set[int] = set()
    for message in inserted:
        keyword = keyword_of_sid[message.sid]
        if keyword is None:
            continue
        customer = _found(await session.get(Customer, thread_by_id[message.conversation_id].customer_id))
        answer = await _apply_keyword(
            settings, session, policy, _found(await session.get(Message, message.id)), customer, keyword
        )
        answered_threads.add(message.conversation_id)
        if answer is not None:
            answers[message.sid] = answer
    consent = await store.consent_states(session, [thread_by_id[cid].customer_id for cid in touched])
    await store.learn_assignees(session, [thread_by_id[cid] for cid in touched])
    for conversation_id in touched:
        conversation: store.ConversationFields = thread_by_id[conversation_id]
        customer_row = customer_by_id[conversation.customer_id]
        last: store.MessageFields | None = latest.get(conversation_id)
        if conversation_id in answered_threads:  # the outbox's answer may follow the message
            conversation = _found(await session.get(Conversation, conversation_id))
            await store.learn_assignees(session, [conversation])
            last = await session.get(Message, conversation.last_message_id)
        elif last is None:  # recovered messages older than the thread's latest activity
            last = await session.get(Message, conversation.last_message_id)
        if last is None:
            raise LookupError("a conversation this batch touched has no last message")
        summary = store.conversation_object(
            conversation,
            customer_row,
            consent[conversation.customer_id],
            last,
            None,
            last_message_object=message_objects.get(last.id),
        )
        events_bus.record(session, ConversationUpdated(conversation_id, summary))
    return {m.sid: InboundResult(False, m.id, m.conversation_id, answers.get(m.sid)) for m in inserted}


_T = TypeVar("_T")


def _found(row: _T | None) -> _T:
    """A row this transaction wrote or read a moment ago (session.get answers None if it is gone)."""
    if row is None:
        raise LookupError("a row of this batch is missing from its own transaction")
    return row


_OPT_OUT_TYPES = {"STOP": Keyword.OPT_OUT, "START": Keyword.OPT_IN, "HELP": Keyword.HELP}


def _keyword_of(payload: InboundPayload, policy: app_settings.KeywordPolicy) -> Keyword | None:
    """Twilio's own reading (OptOutType, with Advanced Opt-Out) first, then the inbox's."""
    if payload.opt_out_type in _OPT_OUT_TYPES:
        return _OPT_OUT_TYPES[payload.opt_out_type]
    return keywords.classify(payload.body, policy.words)


async def _apply_keyword(
    settings: Settings,
    session: AsyncSession,
    policy: app_settings.KeywordPolicy,
    message: Message,
    customer: Customer,
    keyword: Keyword,
) -> tuple[int, str] | None:
    """Consent, and the one automatic answer for a keyword message: (its message id, its text)."""
    evidence = {"message_sid": message.sid, "message_id": message.id, "body": message.body[:160]}
    current = await consent.state(session, customer.id, message.channel)
    if keyword is Keyword.OPT_OUT:
        if current != ConsentState.OPTED_OUT:
            await consent.append(
                session, customer, channel=message.channel, action=consent.OPT_OUT, source="keyword", evidence=evidence
            )
    elif keyword is Keyword.OPT_IN:
        if current == ConsentState.OPTED_OUT and not keywords.reverses_opt_out(
            message.body, bare(message.to_addr), policy.words
        ):
            return None  # e.g. YES on a toll-free number: not an opt-in there, just a message
        if current != ConsentState.OPTED_IN:
            await consent.append(
                session, customer, channel=message.channel, action=consent.OPT_IN, source="keyword", evidence=evidence
            )
    if not policy.inbox_replies:
        return None
    request = outbound.ReplyRequest(
        conversation_id=message.conversation_id,
        staff_id=None,
        body=policy.answer(keyword),
        channel=message.channel,
        auto_reply=keyword.value,
        in_twiml=True,
    )
    try:
        # An answer given in the webhook's TwiML: the outbox never claims it, so it is not woken.
        answer, _ = await outbound.queue_in(session, settings, request)
    except outbound.ReplyRefused:
        return None  # e.g. HELP from someone who opted out: nothing may be sent to them
    return answer.id, answer.body


# A webhook's payload, and the future its request awaits.
_Waiting = tuple[InboundPayload, asyncio.Future[InboundResult]]


class InboundWriter:
    """Group commit for the webhook: whoever arrives while a transaction is open joins the next one."""

    def __init__(self, db: Database, bus: Bus, settings: Settings, max_batch: int = MAX_BATCH) -> None:
        self.db, self.bus, self.settings, self.max_batch = db, bus, settings, max_batch
        self._queue: asyncio.Queue[_Waiting] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="inbound-writer")

    async def stop(self) -> None:
        if self._task is None:
            return
        # Let accepted webhooks finish before closing (a short drain at shutdown).
        while not self._queue.empty():  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def submit(self, payload: InboundPayload) -> InboundResult:
        if self._task is None:  # not started (a script, a test): no batching
            return await handle(self.db, self.bus, self.settings, payload)
        future: asyncio.Future[InboundResult] = asyncio.get_running_loop().create_future()
        await self._queue.put((payload, future))
        return await future

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            await asyncio.sleep(0)  # one turn of the loop: requests already read join this batch
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                results = await handle_batch(self.db, self.bus, self.settings, [payload for payload, _ in batch])
            except Exception:
                log.exception("inbound batch failed; retrying its webhooks one by one", size=len(batch))
                await self._one_by_one(batch)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)

    async def _one_by_one(self, batch: list[_Waiting]) -> None:
        """One bad webhook must not fail the others that shared its transaction."""
        for payload, future in batch:
            try:
                result = await handle(self.db, self.bus, self.settings, payload)
            except Exception as exc:
                if not future.done():
                    future.set_exception(exc)
            else:
                if not future.done():
                    future.set_result(result)
