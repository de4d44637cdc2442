"""Start a conversation: a message to a number as someone typed it, who may never have written.

    start_conversation(db, bus, settings, outbox, NewConversation)
        -> (conversation dict, message dict, created?)  or raises outbound.ReplyRefused

The number is read in any usual format (`(415) 555-0142`, `+44 7700 900123`, `07700 900123`)
with INBOX_DEFAULT_COUNTRY for numbers without `+country` (422 `invalid_number` otherwise). A
known customer keeps their one conversation; a new number gets a customer and a conversation in
the same transaction as the queued message, so a refusal (opted out, WhatsApp window closed)
leaves nothing behind. Every other check is the reply's own (inbox.outbound): consent, the
WhatsApp window, the body or template. The message goes through the Messaging Service with no
`From` when no sender is known yet: Twilio chooses, and the sender it reports is kept for the
replies that follow (outbound.sender_for).
"""

from __future__ import annotations

from dataclasses import dataclass

import phonenumbers

from inbox import bus as events_bus
from inbox import outbound, store
from inbox.bus import Bus
from inbox.db import Database
from inbox.objects import ConversationObject, MessageObject
from inbox.phones import typed_number
from inbox.refusals import Why
from inbox.settings import Settings

MAX_TYPED = 40  # characters of a typed number worth reading
# Countries whose numbers keep a leading 0 after the country code (Italy and its neighbours in
# the plan, and a few African plans). Anywhere else a kept 0 means the typed number was too short
# to be read as dialled ("07700 9001" in GB is not +44 077009001), so it is refused.
LEADING_ZERO_REGIONS = frozenset({"IT", "SM", "VA", "CI", "GA", "CG"})


@dataclass(frozen=True)
class NewConversation:
    to: str  # as typed
    staff_id: int | None
    channel: str = "sms"
    body: str | None = None
    content_sid: str | None = None
    content_variables: dict[str, str] | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True)
class ParsedNumber:
    """A typed number as it will be dialled."""

    e164: str
    international: str  # "+44 7700 900123": how people read it
    country: str | None  # ISO 3166 region of the number, when phonenumbers knows it


def parse_typed(text: str, default_country: str) -> ParsedNumber | None:
    """The number someone typed, read as the inbox will dial it; None when it is not a number."""
    if len(text) > MAX_TYPED:
        return None
    e164 = typed_number(text, default_country)
    if e164 is None:
        return None
    parsed = phonenumbers.parse(e164, None)
    # A fictional or new range (the UK's 07700 900xxx) is not "valid" to phonenumbers: its country still is.
    region = phonenumbers.region_code_for_number(parsed) or phonenumbers.region_code_for_country_code(
        parsed.country_code or 0
    )
    if parsed.italian_leading_zero and region not in LEADING_ZERO_REGIONS:
        return None
    return ParsedNumber(
        e164=e164,
        international=phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL),
        country=region if region and region.isalpha() and region != "ZZ" else None,
    )


def invalid_number(text: str, default_country: str) -> outbound.ReplyRefused:
    return outbound.ReplyRefused(
        Why.INVALID,
        "invalid_number",
        f"“{text[:MAX_TYPED]}” is not a phone number we can dial. Type it with its country code "
        f"(+44 7700 900123), or as dialled in {default_country} (numbers without a country code are read there).",
    )


async def start_conversation(
    db: Database, bus: Bus, settings: Settings, outbox: outbound.OutboxWaker, request: NewConversation
) -> tuple[ConversationObject, MessageObject, bool]:
    """Commits the customer (when new), their conversation and the queued message, with the live events."""
    country = settings.default_country
    number = parse_typed(request.to, country)
    if number is None:
        raise invalid_number(request.to, country)
    if request.channel not in ("sms", "whatsapp"):
        raise outbound.ReplyRefused(Why.INVALID, "invalid_channel", "channel must be sms or whatsapp.")
    # Before anything is written: a bad body creates no customer.
    outbound.check_body(request.body, request.content_sid, request.content_variables)
    async with db.write() as session:
        customer = await store.upsert_customer(session, number.e164, None)
        conversation = await store.ensure_conversation(session, customer.id)
        reply = outbound.ReplyRequest(
            conversation_id=conversation.id,
            staff_id=request.staff_id,
            body=request.body,
            channel=request.channel,
            content_sid=request.content_sid,
            content_variables=request.content_variables,
            idempotency_key=request.idempotency_key,
        )
        message, created = await outbound.queue_in(session, settings, reply)
        summary = await store.conversation_summary(session, conversation.id, request.staff_id)
        await events_bus.commit(session, bus)
    if created:
        outbox.wake()
    if summary is None:  # written in this very transaction: cannot happen
        raise RuntimeError("the new conversation vanished")
    return summary, message, created
