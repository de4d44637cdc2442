"""Test the Twilio connection from the settings page (managers; JSON for static/js/connection.js).

    POST /settings/connection/check     -> {"ok", "checks": [{"name", "ok", "text"}], "senders", "account_name"}
    POST /settings/connection/test-sms  {"to": "<a number as typed>"}
                                        -> 202 {"message", "conversation", "after": <event id>}

The check asks Twilio through the official client with the configured credentials
(inbox.twilio.connection). The test SMS is an ordinary new message (inbox.outreach): it goes
through the outbox like any reply, so its ticks arrive as `message.updated` events, which the
page follows on /ws from `after`.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, post
from litestar.di import Provide

from inbox import event_log, outreach
from inbox.objects import ConversationObject, MessageObject
from inbox.twilio.client import TwilioSender
from inbox.twilio.connection import check_connection
from inbox.web.api import Staff
from inbox.web.auth import api_staff
from inbox.web.errors import ApiError
from inbox.web.request_body import json_object
from inbox.web.services import AppSettings, Db, EventBus, Outbox

_MANAGERS_ONLY = "Only managers can test the Twilio connection."
_STAFF = {"staff": Provide(api_staff)}


class CheckLine(msgspec.Struct, kw_only=True):
    name: str  # credentials | messaging_service | senders | twilio
    ok: bool
    text: str


class ConnectionCheck(msgspec.Struct, kw_only=True):
    ok: bool
    checks: list[CheckLine]
    senders: list[str]
    # Absent (not null) when Twilio is not set up, so nobody was asked.
    account_name: str | msgspec.UnsetType | None = msgspec.UNSET


class TestSms(msgspec.Struct, kw_only=True):
    """The queued test message, its conversation, and the event id to follow its ticks from."""

    message: MessageObject
    conversation: ConversationObject
    after: int


def _managers_only(staff: Any) -> None:
    if not staff.is_manager:
        raise ApiError(403, "forbidden", _MANAGERS_ONLY)


@post("/settings/connection/check", status_code=200, include_in_schema=False, dependencies=_STAFF)
async def check(settings: AppSettings, staff: Staff) -> ConnectionCheck:
    """Whether the credentials work and the Messaging Service and its senders exist, in words."""
    _managers_only(staff)
    if not settings.twilio_configured:
        text = "Twilio is not set up: set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN (or an API key) and restart."
        return ConnectionCheck(ok=False, checks=[CheckLine(name="credentials", ok=False, text=text)], senders=[])
    sender = TwilioSender.from_settings(settings)
    await sender.start()
    try:
        report = await check_connection(
            sender,
            messaging_service_sid=settings.twilio_messaging_service_sid,
            uses_api_key=bool(settings.twilio_api_key_sid),
        )
    finally:
        await sender.aclose()
    return ConnectionCheck(
        ok=report.ok,
        checks=[CheckLine(name=c.name, ok=c.ok, text=c.text) for c in report.checks],
        senders=report.senders,
        account_name=report.account_name,
    )


@post("/settings/connection/test-sms", status_code=202, include_in_schema=False, dependencies=_STAFF)
async def test_sms(
    request: Request[Any, Any, Any], db: Db, bus: EventBus, settings: AppSettings, outbox: Outbox, staff: Staff
) -> Response[TestSms]:
    """A test SMS to a typed number, through the outbox like any message."""
    _managers_only(staff)
    payload = await json_object(request)
    to = payload.get("to")
    if not isinstance(to, str):
        raise ApiError(422, "invalid_number", "Type the number to send the test SMS to.")
    if not settings.twilio_configured:  # then no outbox runs (inbox.runtime)
        raise ApiError(409, "twilio_not_configured", "Twilio is not set up, so nothing can be sent yet.")
    after = await event_log.latest_id(db)
    body = f"Test message from {settings.business_name}: the inbox can send SMS through Twilio."
    conversation, message, _ = await outreach.start_conversation(
        db, bus, settings, outbox, outreach.NewConversation(to=to, staff_id=staff.id, channel="sms", body=body)
    )
    return Response(TestSms(message=message, conversation=conversation, after=after), status_code=202)


route_handlers = [check, test_sms]
