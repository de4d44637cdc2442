"""Queue a reply: every check, then one committed `queued` row (the outbox). Never calls Twilio.

    await queue(db, bus, settings, outbox, ReplyRequest) -> (message dict, created?)  or raises ReplyRefused
    await queue_in(session, settings, ReplyRequest)       the same inside the caller's transaction

Checks, in order: the conversation exists; a body (1–1,600 characters) or an approved template;
the customer has not opted out of that channel; on WhatsApp a free-form body only within 24 h of
the customer's last WhatsApp message. The sender is the number the customer last wrote to on
that channel (sticky), so a conversation never jumps between numbers.

A reply with `send_at` is stored `scheduled` instead (inbox.schedule): consent and the window are
checked when it goes out, not now, and it becomes the conversation's latest activity only then.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from inbox import attachments, reports, store
from inbox import bus as events_bus
from inbox.bus import Bus
from inbox.clock import utcnow
from inbox.db import Database
from inbox.events import ConversationUpdated, MessageCreated
from inbox.models import (
    Channel,
    ConsentAction,
    ConsentState,
    Customer,
    Direction,
    Message,
    MessageStatus,
    WhatsAppTemplate,
)
from inbox.objects import MessageObject
from inbox.phones import address_for
from inbox.refusals import Refused, Why
from inbox.settings import Settings
from inbox.twilio.payloads import CONTENT_SID

MAX_BODY = 1600
MAX_TEMPLATE_VARIABLES = 20  # more than any approved template we have seen uses
MAX_VARIABLE_LENGTH = 1024  # characters in one filled-in variable
PLACEHOLDER = re.compile(r"\{\{\s*(\d{1,2})\s*\}\}")
WHATSAPP_WINDOW = timedelta(hours=24)


class ReplyRefused(Refused):
    """A reply the inbox will not queue (or, at send time, send)."""


MAX_VARIABLE_NAME = 32


@dataclass(frozen=True)
class ReplyRequest:
    conversation_id: int
    staff_id: int | None
    body: str | None = None
    channel: str | None = None
    content_sid: str | None = None
    content_variables: dict[str, str] | None = None
    idempotency_key: str | None = None
    auto_reply: str | None = None  # set for the inbox's own HELP/STOP/START answers
    in_twiml: bool = False  # sent by Twilio from the webhook's TwiML answer, not by the outbox
    media_urls: list[str] = field(default_factory=list)
    send_at: datetime | None = None  # a scheduled reply (inbox.schedule.parse_send_at checked it)
    media_ids: list[int] = field(default_factory=list)  # uploaded attachments (inbox.attachments)


def check_body(body: str | None, content_sid: str | None, content_variables: object, has_media: bool = False) -> None:
    """`content_variables` as the request gave it (JSON): checked here to be a map of texts."""
    if content_sid is not None:
        if not CONTENT_SID.fullmatch(content_sid):
            raise ReplyRefused(Why.INVALID, "invalid_template", "That template id is not valid (it starts with HX).")
        if content_variables is None:
            return
        if not (isinstance(content_variables, dict) and all(isinstance(v, str) for v in content_variables.values())):
            raise ReplyRefused(Why.INVALID, "invalid_template", "Template variables must be text.")
        if (
            len(content_variables) > MAX_TEMPLATE_VARIABLES
            # a value over MAX_VARIABLE_LENGTH is refused by name once the template is known
            or any(len(k) > MAX_VARIABLE_NAME or len(v) > MAX_BODY for k, v in content_variables.items())
        ):
            raise ReplyRefused(
                Why.INVALID,
                "invalid_template",
                f"A template takes at most {MAX_TEMPLATE_VARIABLES} variables, each name up to {MAX_VARIABLE_NAME} "
                f"characters and each value up to {MAX_VARIABLE_LENGTH:,}.",
            )
        return
    if (body is None or not body.strip()) and not has_media:
        raise ReplyRefused(Why.INVALID, "empty_body", "Write a message before sending.")
    if body is not None and len(body) > MAX_BODY:
        raise ReplyRefused(
            Why.INVALID,
            "body_too_long",
            f"This message is {len(body):,} characters long; the limit is {MAX_BODY:,}. "
            "Shorten it or send it as two messages.",
        )


def render_template(template: WhatsAppTemplate, variables: dict[str, str] | None) -> tuple[str, dict[str, str]]:
    """The text a registered template becomes with these variables, and the variables to send.

    Every variable the template has (its named list, and every {{n}} in its text) must be filled
    in: a blank one would reach the customer as an empty gap. Refused with 422 otherwise."""
    variables = variables or {}
    count = max([len(template.variables or [])] + [int(n) for n in PLACEHOLDER.findall(template.body or "")])
    expected = [str(n) for n in range(1, count + 1)]
    unknown = sorted(set(variables) - set(expected))
    if unknown:
        raise ReplyRefused(
            Why.INVALID,
            "unknown_template_variables",
            f"The template “{template.name}” has no variable {', '.join(unknown)}.",
            unknown=unknown,
        )
    missing = [key for key in expected if not variables.get(key, "").strip()]
    if missing:
        names = template.variables or []
        labels = [f"{names[int(k) - 1]} ({{{{{k}}}}})" if int(k) <= len(names) else f"{{{{{k}}}}}" for k in missing]
        raise ReplyRefused(
            Why.INVALID,
            "missing_template_variables",
            f"Fill in every variable of “{template.name}”: {', '.join(labels)} is empty."
            if len(missing) == 1
            else f"Fill in every variable of “{template.name}”: {', '.join(labels)} are empty.",
            missing=missing,
        )
    too_long = [key for key in expected if len(variables[key]) > MAX_VARIABLE_LENGTH]
    if too_long:
        raise ReplyRefused(
            Why.INVALID,
            "template_variable_too_long",
            f"A template variable may be at most {MAX_VARIABLE_LENGTH:,} characters ({', '.join(too_long)} is longer).",
        )
    values = {key: variables[key].strip() for key in expected}
    text = PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template.body or "")
    if not text.strip():  # a template registered without its text: say which one went, with what
        text = f"[{template.name}] " + " · ".join(values[key] for key in expected)
    if len(text) > MAX_BODY:
        raise ReplyRefused(
            Why.INVALID,
            "body_too_long",
            f"Filled in, this template is {len(text):,} characters; the limit is {MAX_BODY:,}.",
        )
    return text, values


async def refusal_for(
    session: AsyncSession,
    customer: Customer,
    conversation_id: int,
    channel: str,
    *,
    is_template: bool,
    auto_reply: str | None,
    consent: str | None = None,
) -> ReplyRefused | None:
    """Why this message may not go to this customer now (None: it may). Used at queue and send time;
    `consent` may be passed in when the caller fetched it for many customers at once."""
    if consent is None:
        consent = (await store.consent_states(session, [customer.id]))[customer.id][channel]
    if (
        consent == ConsentState.OPTED_OUT and auto_reply != ConsentAction.OPT_OUT
    ):  # the STOP confirmation is the one exception
        label = "WhatsApp" if channel == Channel.WHATSAPP else "SMS"
        who = customer.name or customer.whatsapp_profile_name or customer.phone
        return ReplyRefused(
            Why.CONFLICT,
            "opted_out",
            f"{who} has opted out of {label} messages. They must text START before anyone can message them again.",
        )
    if channel == Channel.WHATSAPP and not is_template and not auto_reply:
        last = await store.last_inbound(session, conversation_id, Channel.WHATSAPP)
        if last is None:
            return ReplyRefused(
                Why.CONFLICT,
                "whatsapp_window_closed",
                "The customer has never written on WhatsApp, so only an approved template can be sent there.",
            )
        if utcnow() - last.created_at >= WHATSAPP_WINDOW:
            return ReplyRefused(
                Why.CONFLICT,
                "whatsapp_window_closed",
                "The customer last wrote on WhatsApp more than 24 hours ago, so only an approved template can be sent now.",
            )
    return None


def sender_for(
    settings: Settings, channel: str, last_inbound: Message | None, last_sender: str | None = None
) -> str | None:
    """`From`: the number the customer last wrote to on that channel, else the sender Twilio chose
    for our last message there (a conversation the inbox started), else, with a Messaging Service,
    None (Twilio picks, and reports its choice), else the configured sender."""
    if last_inbound is not None:
        return last_inbound.to_addr
    if last_sender:
        return last_sender
    if settings.twilio_messaging_service_sid:
        return None
    return settings.twilio_whatsapp_from if channel == Channel.WHATSAPP else settings.twilio_phone_number


async def last_sender(session: AsyncSession, conversation_id: int, channel: str) -> str | None:
    """The sender of our latest message on that channel whose sender is known."""
    return await session.scalar(
        select(Message.from_addr)
        .where(
            Message.conversation_id == conversation_id,
            Message.direction == Direction.OUTBOUND,
            Message.channel == channel,
            Message.from_addr != "",
        )
        .order_by(Message.id.desc())
        .limit(1)
    )


@runtime_checkable  # Litestar checks an injected value against its annotation
class OutboxWaker(Protocol):
    """What queueing asks of the outbox (inbox.outbox.Outbox): look for new rows now, not at its next poll."""

    def wake(self) -> None: ...


class NoOutbox:
    """Where no outbox runs (Twilio is not set up): a queued row waits for a process that sends."""

    def wake(self) -> None:
        pass


NO_OUTBOX = NoOutbox()


async def queue(
    db: Database, bus: Bus, settings: Settings, outbox: OutboxWaker, request: ReplyRequest
) -> tuple[MessageObject, bool]:
    """Commits a queued reply and its live events, then wakes the outbox if a row was written."""
    async with db.write() as session:
        result = await queue_in(session, settings, request)
        await events_bus.commit(session, bus)
    if result[1]:
        outbox.wake()
    return result


async def queue_in(session: AsyncSession, settings: Settings, request: ReplyRequest) -> tuple[MessageObject, bool]:
    """Queues a reply inside the caller's transaction: the caller commits it with its events and
    wakes the outbox."""
    key = _idempotency_key(request)
    if key is not None:
        existing = await session.scalar(_with_key(key))
        if existing is not None:
            await store.learn_authors(session, [existing])
            return _replayed(existing, request), False
    check_body(request.body, request.content_sid, request.content_variables, has_media=bool(request.media_ids))
    found = await store.conversation_with_customer(session, request.conversation_id)
    if found is None:
        raise ReplyRefused(Why.NOT_FOUND, "not_found", "There is no such conversation.")
    conversation, customer = found
    body, content_variables = request.body, request.content_variables
    if request.content_sid is not None:
        template = await session.scalar(
            select(WhatsAppTemplate).where(WhatsAppTemplate.content_sid == request.content_sid)
        )
        if template is None:
            raise ReplyRefused(
                Why.INVALID,
                "unknown_template",
                "That template is not registered: a manager adds approved templates in Settings.",
            )
        body, content_variables = render_template(template, request.content_variables)
    last_any = await store.last_inbound(session, conversation.id)
    channel = request.channel or (last_any.channel if last_any else Channel.SMS)
    if channel not in (Channel.SMS, Channel.WHATSAPP):
        raise ReplyRefused(Why.INVALID, "invalid_channel", "channel must be sms or whatsapp.")
    scheduled = request.send_at is not None
    refusal = (
        None  # checked when it goes out (inbox.outbox)
        if scheduled
        else await refusal_for(
            session,
            customer,
            conversation.id,
            channel,
            is_template=request.content_sid is not None,
            auto_reply=request.auto_reply,
        )
    )
    if refusal:
        raise refusal
    if request.media_ids:
        await _check_attachments(session, request, channel, customer.phone)
    last_on_channel = (
        last_any
        if last_any and last_any.channel == channel
        else await store.last_inbound(session, conversation.id, channel)
    )
    known = None if last_on_channel else await last_sender(session, conversation.id, channel)
    from_addr = sender_for(settings, channel, last_on_channel, known)
    now = utcnow()
    values = {
        "conversation_id": conversation.id,
        "direction": Direction.OUTBOUND,
        "channel": channel,
        "from_addr": from_addr or "",
        "to_addr": address_for(channel, customer.phone),
        "body": body or "",
        "media": [{"url": url, "content_type": ""} for url in request.media_urls],
        "status": MessageStatus.SCHEDULED
        if scheduled
        else MessageStatus.ACCEPTED
        if request.in_twiml
        else MessageStatus.QUEUED,
        "staff_id": request.staff_id,
        "idempotency_key": request.idempotency_key,
        "content_sid": request.content_sid,
        "content_variables": content_variables,
        "auto_reply": request.auto_reply,
        "next_attempt_at": request.send_at if scheduled else None if request.in_twiml else now,
        "send_at": request.send_at,
    }
    if (
        request.staff_id is not None and not request.auto_reply and not scheduled
    ):  # a staff reply: the wait it ends, for reports
        values["wait_started_at"] = await reports.wait_started(session, conversation.id, now)
    message = await store.insert_message(session, values, conflict=("staff_id", "idempotency_key") if key else None)
    if message is None:  # the same key raced in from a double-click: answer with the first
        if key is None:  # only an insert with a conflict target gives way
            raise RuntimeError("the reply was not stored, and no Idempotency-Key explains why")
        await session.rollback()
        existing = (await session.execute(_with_key(key))).scalar_one()  # the row that won the race
        await store.learn_authors(session, [existing])
        return _replayed(existing, request), False
    if request.media_ids:
        try:
            message.media = await attachments.attach(session, request.media_ids, message.id, settings.public_url)
        except attachments.AttachmentRefused as refused:
            raise ReplyRefused(refused.why, refused.code, refused.detail) from None
    if not scheduled:  # a scheduled reply becomes the latest activity when it is queued
        await store.touch_conversation(session, conversation, message)
    owner = conversation.assignee_id
    if conversation.assignee_id is None and request.staff_id is not None and not request.auto_reply:
        conversation.assignee_id = request.staff_id  # a reply to a conversation nobody owns: the sender owns it
    consent = (await store.consent_states(session, [customer.id]))[customer.id]
    await store.learn_authors(session, [message])
    await store.learn_assignees(session, [conversation])
    queued = store.message_object(message)
    events_bus.record(session, MessageCreated(conversation.id, queued))
    if scheduled:
        if owner != conversation.assignee_id:
            last = await session.get(Message, conversation.last_message_id) if conversation.last_message_id else None
            events_bus.record(
                session,
                ConversationUpdated(
                    conversation.id, store.conversation_object(conversation, customer, consent, last, None)
                ),
            )
        return queued, True
    events_bus.record(
        session,
        ConversationUpdated(
            conversation.id,
            store.conversation_object(conversation, customer, consent, message, None, last_message_object=queued),
        ),
    )
    return queued, True


async def _check_attachments(session: AsyncSession, request: ReplyRequest, channel: str, phone: str) -> None:
    """The files exist, are not sent yet and fit 5 MB; an MMS goes only where Twilio delivers MMS."""
    if request.content_sid is not None:
        raise ReplyRefused(Why.INVALID, "invalid_media_ids", "A WhatsApp template cannot carry attachments here.")
    try:
        await attachments.check_ids(session, request.media_ids)
    except attachments.AttachmentRefused as refused:
        raise ReplyRefused(refused.why, refused.code, refused.detail) from None
    reason = attachments.mms_refusal(channel, phone)
    if reason:
        raise ReplyRefused(Why.INVALID, "mms_unsupported_country", reason)


def _replayed(existing: Message, request: ReplyRequest) -> MessageObject:
    """The first answer for a retried key; 422 `idempotency_key_reused` when the request differs."""
    same = (
        existing.conversation_id == request.conversation_id
        # a template's stored body is its filled-in text: its variables say what was asked
        and (existing.content_sid is not None or existing.body == (request.body or ""))
        and existing.content_sid == request.content_sid
        and (existing.content_variables or None) == (request.content_variables or None)
        and (request.channel is None or existing.channel == request.channel)
        and [m.get("url") for m in existing.media or [] if "id" not in m] == list(request.media_urls)
        and [m["id"] for m in existing.media or [] if "id" in m] == list(request.media_ids)
        # at once or scheduled, and for when (a "send now" since moved send_at: the key still holds)
        and (existing.send_at is None) == (request.send_at is None)
        and (existing.status != MessageStatus.SCHEDULED or existing.send_at == request.send_at)
    )
    if not same:
        raise ReplyRefused(
            Why.INVALID,
            "idempotency_key_reused",
            "This Idempotency-Key was already used for a different message; use a new key for a new message.",
        )
    return store.message_object(existing)


def _idempotency_key(request: ReplyRequest) -> tuple[int, str] | None:
    """(staff member, Idempotency-Key): a reply is a retry only of the same staff member's keyed reply."""
    if request.idempotency_key and request.staff_id is not None:
        return request.staff_id, request.idempotency_key
    return None


def _with_key(key: tuple[int, str]) -> Select[Message]:
    staff_id, idempotency_key = key
    return select(Message).where(Message.staff_id == staff_id, Message.idempotency_key == idempotency_key)
