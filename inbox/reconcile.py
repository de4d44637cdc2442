"""No message left behind: ingest every inbound message Twilio has that the inbox never received.

    report = await reconcile(db, bus, settings, sender, outbox, since)   # a started sender (Twilio configured)
    report.found, report.present, report.ingested

Twilio's message list (`direction == "inbound"`, `DateSent >= since`) is compared with the
stored SIDs; each missing message becomes an `InboundPayload` and goes through
`inbox.inbound.handle_batch`, the one entry for inbound messages, oldest first, so it gets its
customer, thread, keyword handling, consent record and live events exactly as if its webhook
had just arrived. The unique MessageSid makes a re-run, a run on two machines at once, or a
webhook racing in meanwhile harmless: those count as already present.

A recovered HELP/STOP/START is answered like any other, but its answer cannot ride in a TwiML
response (there was no webhook to answer): it is handed to the outbox (`queued`) instead, which
re-checks consent before sending it through the REST API. MMS media are fetched from Twilio's
Media list where Twilio answers it; otherwise the message is stored without them.

Used by `inbox reconcile [--since T]` and by the managers' `POST /settings/reconcile`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import structlog
from prometheus_client import Counter
from sqlalchemy import select, update

from inbox import bus as events_bus
from inbox import metrics, spans, store
from inbox.bus import Bus
from inbox.clock import utcnow
from inbox.db import Database
from inbox.events import MessageUpdated
from inbox.inbound import handle_batch
from inbox.models import Message, MessageStatus
from inbox.outbound import OutboxWaker
from inbox.settings import Settings
from inbox.twilio.client import ListedMessage, SendError, TwilioSender
from inbox.twilio.payloads import InboundPayload

log = structlog.get_logger(__name__)

DEFAULT_WINDOW = timedelta(days=7)
BATCH = 100  # payloads per transaction

reconciled = Counter(
    "inbox_reconciled_messages_total",
    "Inbound messages found at Twilio by reconcile, by outcome",
    ["outcome"],
    registry=metrics.REGISTRY,
)  # outcome: present | ingested


class ReconcileError(Exception):
    """Reconcile cannot run (bad --since, Twilio not configured or unreachable): one sentence."""


@dataclass(frozen=True)
class ReconcileReport:
    since: datetime
    found: int  # inbound messages Twilio listed since `since`
    present: int  # of those, already stored
    ingested: int  # stored by this run

    def line(self) -> str:
        return (
            f"found {self.found} inbound message{'s' if self.found != 1 else ''} at Twilio since "
            f"{self.since.strftime('%Y-%m-%dT%H:%M:%SZ')}: {self.present} already present, "
            f"{self.ingested} ingested"
        )


def parse_since(value: str | None, *, now: datetime | None = None) -> datetime:
    """`--since`: an ISO 8601 date or date-time (naive = UTC), or a span back from now such as
    `90m`, `12h`, `3d`, `2w`. None: DEFAULT_WINDOW back from now."""
    now = now or datetime.now(UTC)
    if value is None or not value.strip():
        return now - DEFAULT_WINDOW
    text = value.strip()
    sentence = (
        f"--since must be an ISO 8601 date or date-time (2024-05-01, 2024-05-01T09:30:00Z) or a span "
        f"such as 12h or 3d; {text[:40]!r} is not"
    )
    if (moment := spans.moment_before(text, now)) is not None:
        return moment
    try:
        if len(text) == 10:
            moment = datetime.combine(date.fromisoformat(text), time(), tzinfo=UTC)
        else:
            moment = datetime.fromisoformat(text.replace("z", "Z"))
            moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ReconcileError(sentence) from None
    if moment > now + timedelta(minutes=5):
        raise ReconcileError(f"--since {text} is in the future")
    return moment


def payload_of(listed: ListedMessage, media: list[dict[str, str]] | None = None) -> InboundPayload:
    """Twilio's list entry as the webhook's payload (the fields the webhook would have carried)."""
    return InboundPayload(
        sid=listed["sid"],
        account_sid=listed.get("account_sid"),
        from_addr=listed["from"],
        to_addr=listed["to"],
        body=listed.get("body") or "",
        media=media or [],
        messaging_service_sid=listed.get("messaging_service_sid"),
        received_at=listed.get("date_sent") or listed.get("date_created"),
    )


async def reconcile(
    db: Database,
    bus: Bus,
    settings: Settings,
    sender: TwilioSender | None,
    outbox: OutboxWaker,
    since: datetime | None = None,
) -> ReconcileReport:
    """Lists Twilio's inbound messages since `since` and ingests the missing ones, once each;
    keyword answers among them go to the outbox (they were never given in a webhook's TwiML)."""
    since = since or datetime.now(UTC) - DEFAULT_WINDOW
    if sender is None:
        raise ReconcileError("Twilio is not configured: set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN")
    try:
        listed = await sender.list_messages(date_sent_after=since)
    except SendError as exc:
        raise ReconcileError(f"Twilio's message list could not be read: {exc}") from None
    inbound = [m for m in listed if str(m.get("direction")) == "inbound" and m.get("sid") and m.get("from")]
    inbound.reverse()  # Twilio lists newest first; ingest in the order they arrived
    sids = [m["sid"] for m in inbound]
    known: set[str | None] = set()  # Message.sid is nullable; these are the listed SIDs found
    async with db.read() as session:
        for start in range(0, len(sids), 500):
            chunk = sids[start : start + 500]
            known |= set((await session.execute(select(Message.sid).where(Message.sid.in_(chunk)))).scalars())
    missing = [m for m in inbound if m["sid"] not in known]
    ingested = 0
    for start in range(0, len(missing), BATCH):
        chunk = missing[start : start + BATCH]
        payloads = [payload_of(m, await _media(sender, m)) for m in chunk]
        results = await handle_batch(db, bus, settings, payloads)
        fresh = [r for r in results if not r.duplicate]
        ingested += len(fresh)
        answers = [r.answer[0] for r in fresh if r.answer is not None]
        if answers:
            await _hand_answers_to_outbox(db, bus, outbox, answers)
    report = ReconcileReport(since=since, found=len(inbound), present=len(inbound) - ingested, ingested=ingested)
    reconciled.labels("present").inc(report.present)
    reconciled.labels("ingested").inc(report.ingested)
    log.info(
        "reconciled inbound messages",
        found=report.found,
        present=report.present,
        ingested=report.ingested,
        since=report.since.isoformat(),
    )
    return report


async def _media(sender: TwilioSender, listed: ListedMessage) -> list[dict[str, str]]:
    """The MMS media of a listed message, as webhook MediaUrlN/MediaContentTypeN; [] if unknown."""
    try:
        count = int(listed.get("num_media") or 0)
    except (TypeError, ValueError):
        count = 0
    if count == 0:
        return []
    try:
        records = await sender.client.messages(listed["sid"]).media.list_async(limit=10)
    except Exception as exc:  # media are a bonus: the message itself must not be lost over them
        log.warning("media of a reconciled message could not be listed", sid=listed["sid"], error=type(exc).__name__)
        return []
    media: list[dict[str, str]] = []
    for record in records:
        uri = (getattr(record, "uri", None) or "").removesuffix(".json")
        if uri:
            media.append(
                {
                    "url": "https://api.twilio.com" + uri if uri.startswith("/") else uri,
                    "content_type": getattr(record, "content_type", None) or "",
                }
            )
    return media


async def _hand_answers_to_outbox(db: Database, bus: Bus, outbox: OutboxWaker, message_ids: list[int]) -> None:
    """Keyword answers stored for a TwiML response that will never be sent: queue them instead."""
    async with db.write() as session:
        result = await session.execute(
            update(Message)
            .where(Message.id.in_(message_ids), Message.status == MessageStatus.ACCEPTED, Message.sid.is_(None))
            .values(status=MessageStatus.QUEUED, next_attempt_at=utcnow(), updated_at=utcnow())
            .returning(Message.id)
            .execution_options(synchronize_session=False)
        )
        queued = list(result.scalars())
        if queued:
            for message in (await session.execute(select(Message).where(Message.id.in_(queued)))).scalars():
                events_bus.record(session, MessageUpdated(message.conversation_id, store.message_object(message)))
        await events_bus.commit(session, bus)
    outbox.wake()
