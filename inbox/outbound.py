"""Queue a reply: every check, then one committed `queued` row (the outbox). Never calls Twilio.

    queue_reply(runtime, ReplyRequest) -> (message dict, created?)  or raises ReplyRefused

Checks, in order: the conversation exists; a body (1–1,600 characters) or an approved template;
the customer has not opted out of that channel; on WhatsApp a free-form body only within 24 h of
the customer's last WhatsApp message. The sender is the number the customer last wrote to on
that channel (sticky), so a conversation never jumps between numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from inbox import bus as events_bus
from inbox import reports, store
from inbox.events import ConversationUpdated, MessageCreated
from inbox.models import (
    Channel,
    ConsentAction,
    ConsentState,
    Direction,
    Message,
    MessageStatus,
    WhatsAppTemplate,
    utcnow,
)
from inbox.phones import address_for
from inbox.refusals import Refused, Why
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


def check_body(body: str | None, content_sid: str | None, content_variables: Any) -> None:
    if content_sid is not None:
        if not CONTENT_SID.fullmatch(content_sid):
            raise ReplyRefused(Why.INVALID, "invalid_template", "That template id is not valid (it starts with HX).")
        if content_variables is not None and not (
            isinstance(content_variables, dict) and all(isinstance(v, str) for v in content_variables.values())
        ):
            raise ReplyRefused(Why.INVALID, "invalid_template", "Template variables must be text.")
        if content_variables and (
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
    if body is None or not body.strip():
        raise ReplyRefused(Why.INVALID, "empty_body", "Write a message before sending.")
    if len(body) > MAX_BODY:
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


async def whatsapp_window_open(session, conversation_id: int) -> bool:
    last = await store.last_inbound(session, conversation_id, Channel.WHATSAPP)
    return last is not None and utcnow() - last.created_at < WHATSAPP_WINDOW


async def refusal_for(
    session,
    customer,
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


def sender_for(settings, channel: str, last_inbound: Message | None) -> str | None:
    """`From`: the number the customer last wrote to on that channel, else the configured sender
    (None: the Messaging Service picks)."""
    if last_inbound is not None:
        return last_inbound.to_addr
    return settings.twilio_whatsapp_from if channel == Channel.WHATSAPP else settings.twilio_phone_number


async def queue_reply(runtime, request: ReplyRequest, session=None) -> tuple[dict[str, Any], bool]:
    """Commits a queued reply and its live events; with `session`, joins the caller's transaction."""
    if session is not None:
        return await _queue(runtime, request, session)
    async with runtime.db.write() as session:
        result = await _queue(runtime, request, session)
        await events_bus.commit(session, runtime.bus)
    if result[1]:
        runtime.wake_outbox()
    return result


async def _queue(runtime, request: ReplyRequest, session) -> tuple[dict[str, Any], bool]:
    if request.idempotency_key and request.staff_id is not None:
        existing = await _by_idempotency_key(session, request.staff_id, request.idempotency_key)
        if existing is not None:
            await store.learn_authors(session, [existing])
            return _replayed(existing, request), False
    check_body(request.body, request.content_sid, request.content_variables)
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
    refusal = await refusal_for(
        session,
        customer,
        conversation.id,
        channel,
        is_template=request.content_sid is not None,
        auto_reply=request.auto_reply,
    )
    if refusal:
        raise refusal
    last_on_channel = (
        last_any
        if last_any and last_any.channel == channel
        else await store.last_inbound(session, conversation.id, channel)
    )
    from_addr = sender_for(runtime.settings, channel, last_on_channel)
    now = utcnow()
    values = {
        "conversation_id": conversation.id,
        "direction": Direction.OUTBOUND,
        "channel": channel,
        "from_addr": from_addr or "",
        "to_addr": address_for(channel, customer.phone),
        "body": body or "",
        "media": [{"url": url, "content_type": ""} for url in request.media_urls],
        "status": MessageStatus.ACCEPTED if request.in_twiml else MessageStatus.QUEUED,
        "staff_id": request.staff_id,
        "idempotency_key": request.idempotency_key,
        "content_sid": request.content_sid,
        "content_variables": content_variables,
        "auto_reply": request.auto_reply,
        "next_attempt_at": None if request.in_twiml else now,
    }
    if request.staff_id is not None and not request.auto_reply:  # a staff reply: the wait it ends, for reports
        values["wait_started_at"] = await reports.wait_started(session, conversation.id, now)
    message = await store.insert_message(
        session, values, conflict=("staff_id", "idempotency_key") if request.idempotency_key else None
    )
    if message is None:  # the same key raced in from a double-click: answer with the first
        await session.rollback()
        existing = await _by_idempotency_key(session, request.staff_id, request.idempotency_key)
        await store.learn_authors(session, [existing])
        return _replayed(existing, request), False
    await store.touch_conversation(session, conversation, message)
    if conversation.assignee_id is None and request.staff_id is not None and not request.auto_reply:
        conversation.assignee_id = request.staff_id  # a reply to a conversation nobody owns: the sender owns it
    consent = (await store.consent_states(session, [customer.id]))[customer.id]
    await store.learn_authors(session, [message])
    await store.learn_assignees(session, [conversation])
    message_json = store.message_dict(message)
    events_bus.record(session, MessageCreated(conversation.id, message_json))
    events_bus.record(
        session,
        ConversationUpdated(
            conversation.id,
            store.conversation_dict(conversation, customer, consent, message, None, last_message_json=message_json),
        ),
    )
    return message_json, True


def _replayed(existing: Message, request: ReplyRequest) -> dict[str, Any]:
    """The first answer for a retried key; 422 `idempotency_key_reused` when the request differs."""
    same = (
        existing.conversation_id == request.conversation_id
        # a template's stored body is its filled-in text: its variables say what was asked
        and (existing.content_sid is not None or existing.body == (request.body or ""))
        and existing.content_sid == request.content_sid
        and (existing.content_variables or None) == (request.content_variables or None)
        and (request.channel is None or existing.channel == request.channel)
        and [m.get("url") for m in existing.media or []] == list(request.media_urls)
    )
    if not same:
        raise ReplyRefused(
            Why.INVALID,
            "idempotency_key_reused",
            "This Idempotency-Key was already used for a different message; use a new key for a new message.",
        )
    return store.message_dict(existing)


async def _by_idempotency_key(session, staff_id: int, key: str) -> Message | None:
    return (
        await session.execute(select(Message).where(Message.staff_id == staff_id, Message.idempotency_key == key))
    ).scalar_one_or_none()
