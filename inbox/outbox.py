"""The outbox worker: sends committed `queued` replies through Twilio, once each.

    claim (lease) → re-check consent and the WhatsApp window → send → record the outcome

- Claiming sets a lease (`claimed_until`) in a committed UPDATE; on PostgreSQL the rows are
  picked with FOR UPDATE SKIP LOCKED, so workers on several processes never share a row.
- Outcomes: accepted → the SID is stored and early callbacks applied; "retry" (Twilio not reached,
  or 429) → back to the queue after a jittered exponential backoff; "ambiguous" (5xx, timeout
  after the request left) → `needs_reconcile`; "permanent" → failed with Twilio's code and a
  sentence for staff (21610 also records the opt-out in the consent ledger).
- A lease that expires means a worker died mid-send: that row is ambiguous too.
- Scheduled replies (inbox.schedule) whose time has come are queued on the same sweep, then
  go through the same claim, checks and send as every other reply.
- Reconciling asks Twilio's message list whether the message exists: if so its SID is adopted,
  if not it is queued again. So a crash or an outage never sends a reply twice or loses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass
from datetime import timedelta

import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from inbox import attachments, consent, metrics, outbound, schedule, status, store
from inbox import bus as events_bus
from inbox.bus import Bus
from inbox.clock import utcnow
from inbox.db import Database
from inbox.events import MessageUpdated
from inbox.models import ConsentState, Conversation, Customer, Direction, Message, MessageStatus
from inbox.paths import STATUS_WEBHOOK
from inbox.phones import mask
from inbox.settings import Settings
from inbox.twilio.client import Failure, ListedMessage, OutgoingMessage, SendError, SendResult, TwilioSender
from inbox.twilio.errors import explain

log = structlog.get_logger(__name__)
STATUS_PATH = STATUS_WEBHOOK


@dataclass
class OutboxConfig:
    batch: int = 64  # rows claimed at once
    concurrency: int = 32  # sends in flight at once
    lease: timedelta = timedelta(seconds=60)  # longer than a send can take (its timeout is 15 s)
    backoff_base: float = 1.0  # seconds; doubled per attempt, with jitter
    backoff_cap: float = 300.0
    poll_interval: float = 1.0  # how often to look for due retries when nobody wakes us
    sweep_interval: float = 0.5  # seconds between looks for expired leases and sends to reconcile
    lanes: int = 3  # batches in progress at once


class Outbox:
    def __init__(
        self, db: Database, bus: Bus, settings: Settings, sender: TwilioSender, config: OutboxConfig | None = None
    ) -> None:
        self.db, self.bus, self.settings = db, bus, settings
        self.sender = sender
        self.config = config or OutboxConfig()
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._limit = asyncio.Semaphore(self.config.concurrency)
        self._next_sweep = 0.0

    # ---- life cycle ---------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox")

    async def drain(self) -> int:
        """Sends everything due now, in `lanes` concurrent loops (claims never overlap), so one
        batch's sends are in flight while another's outcome is being written."""

        async def lane() -> int:
            total = 0
            while not self._stopping and (handled := await self.drain_once()):
                total += handled
            return total

        return sum(await asyncio.gather(*(lane() for _ in range(self.config.lanes))))

    def wake(self) -> None:
        self._wake.set()

    async def stop(self, timeout: float = 20.0) -> None:
        """Stops claiming; sends already in flight finish and are recorded."""
        self._stopping = True
        self._wake.set()
        if self._task:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task

    async def _run(self) -> None:
        while not self._stopping:
            try:
                worked = await self.drain()
            except Exception:
                log.exception("outbox pass failed")
                worked = 0
            if worked == 0 and not self._stopping:
                self._wake.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.config.poll_interval)

    async def drain_once(self) -> int:
        """One pass: (now and then) expire dead leases and reconcile; send one batch. Returns rows handled."""
        handled = 0
        now = asyncio.get_running_loop().time()
        if now >= self._next_sweep:  # rare work: not on every batch of a busy drain
            self._next_sweep = now + self.config.sweep_interval
            await self._expire_leases()
            handled = await self._reconcile_batch()
            handled += await schedule.promote_due(self.db, self.bus)
        ids = await self._claim(needs_reconcile=False)
        if ids:
            await self._send_batch(ids)
        return handled + len(ids)

    async def depth(self) -> tuple[int, float]:
        """(queued replies, age in seconds of the oldest) for metrics."""
        from sqlalchemy import func

        async with self.db.read() as session:
            count, oldest = (
                await session.execute(
                    select(func.count(Message.id), func.min(Message.created_at)).where(
                        Message.direction == Direction.OUTBOUND, Message.status == MessageStatus.QUEUED
                    )
                )
            ).one()
        if oldest is not None and oldest.tzinfo is None:
            from datetime import UTC

            oldest = oldest.replace(tzinfo=UTC)
        return int(count), (utcnow() - oldest).total_seconds() if oldest else 0.0

    # ---- claiming -----------------------------------------------------------------------

    async def _claim(self, *, needs_reconcile: bool) -> list[int]:
        now = utcnow()
        due = (
            select(Message.id)
            .where(
                Message.direction == Direction.OUTBOUND,
                Message.status == MessageStatus.QUEUED,
                Message.needs_reconcile.is_(needs_reconcile),
                Message.claimed_until.is_(None),
                Message.next_attempt_at <= now,
            )
            .order_by(Message.id)
            .limit(self.config.batch)
        )
        async with self.db.write() as session:
            if session.get_bind().dialect.name == "postgresql":
                due = due.with_for_update(skip_locked=True)
            claimed = await session.execute(
                update(Message)
                .where(Message.id.in_(due.scalar_subquery()))
                .values(claimed_until=now + self.config.lease, attempts=Message.attempts + 1)
                .returning(Message.id)
                .execution_options(synchronize_session=False)
            )
            ids = sorted(claimed.scalars().all())
            await session.commit()
        return ids

    async def _expire_leases(self) -> None:
        """A lease that ran out means its worker died mid-send: the fate of that send is unknown."""
        async with self.db.write() as session:
            await session.execute(
                update(Message)
                .where(Message.claimed_until < utcnow(), Message.status == MessageStatus.QUEUED)
                .values(claimed_until=None, needs_reconcile=True, next_attempt_at=utcnow())
                .execution_options(synchronize_session=False)
            )
            await session.commit()

    # ---- sending ------------------------------------------------------------------------

    async def _load(self, ids: list[int]) -> list[tuple[Message, Customer]]:
        async with self.db.read() as session:
            rows = await session.execute(
                select(Message, Customer)
                .join(Conversation, Conversation.id == Message.conversation_id)
                .join(Customer, Customer.id == Conversation.customer_id)
                .where(Message.id.in_(ids))
                .order_by(Message.id)
            )
            return [(m, c) for m, c in rows]

    async def _send_batch(self, ids: list[int]) -> None:
        rows = await self._load(ids)
        refusals: dict[int, outbound.ReplyRefused] = {}
        async with self.db.read() as session:
            consent = await store.consent_states(session, list({c.id for _, c in rows}))
            for message, customer in rows:  # consent and window again, just before sending
                refusal = await outbound.refusal_for(
                    session,
                    customer,
                    message.conversation_id,
                    message.channel,
                    is_template=message.content_sid is not None,
                    auto_reply=message.auto_reply,
                    consent=consent[customer.id][message.channel],
                )
                if refusal:
                    refusals[message.id] = refusal
        to_send = [(m, c) for m, c in rows if m.id not in refusals]
        outcomes = await asyncio.gather(*(self._send_one(m) for m, _ in to_send))
        await self._record(rows, refusals, dict(zip([m.id for m, _ in to_send], outcomes, strict=True)))

    def _outgoing(self, message: Message) -> OutgoingMessage:
        settings = self.settings
        return OutgoingMessage(
            to=message.to_addr,
            from_=message.from_addr or None,
            messaging_service_sid=settings.twilio_messaging_service_sid,
            body=None if message.content_sid else message.body,
            content_sid=message.content_sid,
            content_variables=message.content_variables,
            media_urls=[m["url"] for m in (message.media or []) if m.get("url")],
            status_callback=settings.public_url + STATUS_PATH,
        )

    async def _send_one(self, message: Message) -> SendResult | SendError:
        async with self._limit:
            try:
                result = await self.sender.send(self._outgoing(message))
                metrics.sends.labels("accepted", "").inc()
                return result
            except SendError as error:
                metrics.sends.labels(error.kind, str(error.code or "")).inc()
                log.warning(
                    "send failed", message_id=message.id, kind=error.kind, code=error.code, to=mask(message.to_addr)
                )
                return error

    async def _record(
        self,
        rows: list[tuple[Message, Customer]],
        refusals: dict[int, outbound.ReplyRefused],
        outcomes: dict[int, SendResult | SendError],
    ) -> None:
        async with self.db.write() as session:
            fresh = {
                m.id: m
                for m in (
                    await session.execute(select(Message).where(Message.id.in_([m.id for m, _ in rows])))
                ).scalars()
            }
            await store.learn_authors(session, fresh.values())
            for claimed, customer in rows:
                message = fresh[claimed.id]
                message.claimed_until = None
                if claimed.id in refusals:
                    reason = refusals[claimed.id].detail
                    if message.send_at is not None:  # decided now, not when it was scheduled: say so
                        reason = f"Not sent at its scheduled time: {reason}"
                    self._fail(session, message, None, reason)
                    await attachments.settle(session, message)
                    continue
                outcome = outcomes[claimed.id]
                if isinstance(outcome, SendResult):
                    await self._accepted(session, message, outcome)
                elif outcome.kind == Failure.RETRY:
                    message.next_attempt_at = utcnow() + timedelta(seconds=self._backoff(message.attempts))
                elif outcome.kind == Failure.AMBIGUOUS:
                    message.needs_reconcile = True
                    message.next_attempt_at = utcnow() + timedelta(seconds=self._backoff(message.attempts))
                else:
                    self._fail(session, message, outcome.code, explain(outcome.code, str(outcome)))
                    if outcome.code == 21610:
                        await self._record_twilio_opt_out(session, message, customer)
                await attachments.settle(session, message)  # a final status: its files stop being served
            await events_bus.commit(session, self.bus)

    async def _accepted(self, session: AsyncSession, message: Message, result: SendResult) -> None:
        await store.learn_authors(session, [message])
        message.sid = result.sid
        message.needs_reconcile = False
        message.next_attempt_at = None
        if result.from_ and not message.from_addr:
            message.from_addr = result.from_
        message.updated_at = utcnow()
        await session.flush()
        new_status = status.parse_status(result.status)
        if not (new_status and status.advance(session, message, new_status, None)):
            events_bus.record(session, MessageUpdated(message.conversation_id, store.message_object(message)))
        await status.apply_pending(session, message)

    def _fail(self, session: AsyncSession, message: Message, code: int | None, reason: str | None) -> None:
        message.status = MessageStatus.FAILED
        message.error_code = code
        message.error_message = reason
        message.next_attempt_at = None
        message.needs_reconcile = False
        message.updated_at = utcnow()
        events_bus.record(session, MessageUpdated(message.conversation_id, store.message_object(message)))

    async def _record_twilio_opt_out(self, session: AsyncSession, message: Message, customer: Customer) -> None:
        if await consent.state(session, customer.id, message.channel) == ConsentState.OPTED_OUT:
            return
        await consent.append(
            session,
            customer,
            channel=message.channel,
            action=consent.OPT_OUT,
            source="twilio_21610",
            evidence={"message_id": message.id, "error_code": 21610},
        )

    def _backoff(self, attempts: int) -> float:
        factor: int = 2 ** max(0, attempts - 1)  # typeshed: int ** int is Any (a negative power is a float)
        delay = min(self.config.backoff_cap, self.config.backoff_base * factor)
        return delay * random.uniform(0.5, 1.0)  # full jitter halves stampedes after an outage

    # ---- reconciling --------------------------------------------------------------------

    async def _reconcile_batch(self) -> int:
        ids = await self._claim(needs_reconcile=True)
        if not ids:
            return 0
        rows = await self._load(ids)
        async with self.db.write() as session:
            for claimed, _customer in rows:
                message = await session.get_one(Message, claimed.id)  # just claimed: it is there
                message.claimed_until = None
                try:
                    found = await self._find_at_twilio(session, message)
                except SendError:
                    message.next_attempt_at = utcnow() + timedelta(seconds=self._backoff(message.attempts))
                    continue
                if found is not None:
                    await self._accepted(session, message, SendResult(found["sid"], found["status"], found["from"]))
                    await attachments.settle(session, message)
                    log.info("reconciled: adopted the message Twilio already had", message_id=message.id)
                else:
                    message.needs_reconcile = False  # Twilio never got it: send it again
                    message.next_attempt_at = utcnow()
            await events_bus.commit(session, self.bus)
        self._next_sweep = 0.0  # more may be waiting: look again on the next pass
        self.wake()
        return len(ids)

    async def _find_at_twilio(self, session: AsyncSession, message: Message) -> ListedMessage | None:
        since = message.created_at - timedelta(minutes=1)
        candidates = await self.sender.list_messages(to=message.to_addr, limit=200)
        for candidate in candidates:
            created = candidate["date_created"]
            if created is not None and created < since:
                continue
            if not str(candidate["direction"]).startswith("outbound"):
                continue
            if candidate["to"] != message.to_addr:  # Twilio's filter is a hint, not a promise
                continue
            if (candidate["body"] or "") != (message.body or "") and not message.content_sid:
                continue
            if await store.message_by_sid(session, candidate["sid"]) is not None:
                continue  # another reply of ours
            return candidate
        return None
