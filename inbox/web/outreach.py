"""Reaching out from the API: a new conversation with a typed number, reading a typed number
back as it will be dialled, and the saved replies (everyone reads them, managers write them).

    POST   /api/conversations                 {"to", "channel", "body"} or a template: 201
    GET    /api/phone-numbers/parse?number=…  how the inbox reads a typed number (the dialog's echo)
    GET    /api/quick-replies[?conversation_id=N]  with each body filled in for that conversation
    POST   /api/quick-replies                 {"title", "body"}: managers, 201
    PUT    /api/quick-replies/{id}            {"title", "body"}: managers
    DELETE /api/quick-replies/{id}            managers
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, delete, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody

from inbox import known_numbers, outreach, quick_replies
from inbox.accounts import StaffMember
from inbox.objects import StartedConversation
from inbox.web.api import Staff, idempotency_key
from inbox.web.api_docs import errors
from inbox.web.bodies import NewConversationBody, QuickReplyBody
from inbox.web.errors import ApiError
from inbox.web.services import AppSettings, Db, EventBus, Outbox

_MANAGERS_ONLY = "Only managers can change the saved replies."


class NumberReading(msgspec.Struct, kw_only=True):
    """A typed number as the inbox will dial it, and the conversation of the customer who has it."""

    e164: str
    international: str
    country: str | None
    default_country: str
    conversation_id: int | None


class QuickReplyList(msgspec.Struct, kw_only=True):
    quick_replies: list[quick_replies.QuickReplyObject]
    fields: list[str]  # the fields a body may hold


class Deleted(msgspec.Struct, kw_only=True):
    id: int
    deleted: bool  # always true


@post("/conversations", status_code=201, responses=errors(401, 403, 409, 422))
async def start_conversation(
    request: Request[Any, Any, Any],
    db: Db,
    bus: EventBus,
    settings: AppSettings,
    outbox: Outbox,
    staff: Staff,
    data: JSONBody[NewConversationBody],
) -> Response[StartedConversation]:
    """A message to a number as typed, who may never have written: 201 with the conversation
    (a known customer's own) and the queued message. A repeated Idempotency-Key returns the first."""
    conversation, message, created = await outreach.start_conversation(
        db,
        bus,
        settings,
        outbox,
        outreach.NewConversation(
            to=data.to,
            staff_id=staff.id,
            channel=data.channel,
            body=data.body,
            content_sid=data.content_sid,
            content_variables=data.content_variables,
            idempotency_key=idempotency_key(request),
        ),
    )
    return Response(
        StartedConversation(conversation=conversation, message=message),
        status_code=201,
        headers={"Idempotent-Replayed": "false" if created else "true"},
    )


@get("/phone-numbers/parse", responses=errors(401, 422))
async def parse_phone_number(db: Db, settings: AppSettings, staff: Staff, number: FromQuery[str]) -> NumberReading:
    """How the inbox reads a typed number (INBOX_DEFAULT_COUNTRY for one without +country): its
    E.164 form, the international way of writing it, its country, and whether it is a known customer."""
    country = settings.default_country
    parsed = outreach.parse_typed(number, country)
    if parsed is None:
        raise outreach.invalid_number(number, country)
    conversation_id = await known_numbers.conversation_of_phone(db, parsed.e164)
    return NumberReading(
        e164=parsed.e164,
        international=parsed.international,
        country=parsed.country,
        default_country=country,
        conversation_id=conversation_id,
    )


@get("/quick-replies", responses=errors(401, 404, 422))
async def list_quick_replies(
    db: Db, settings: AppSettings, staff: Staff, conversation_id: FromQuery[int | None] = None
) -> QuickReplyList:
    """Every saved reply, by title. With `conversation_id`, each also comes `filled` in for that
    conversation's customer: `{"text", "unfilled": [field names nobody could fill]}`."""
    items = await quick_replies.listed(db, conversation_id=conversation_id, business_name=settings.business_name)
    return QuickReplyList(quick_replies=items, fields=list(quick_replies.FIELDS))


def _managers_only(staff: StaffMember) -> None:
    if not staff.is_manager:
        raise ApiError(403, "forbidden", _MANAGERS_ONLY)


@post("/quick-replies", status_code=201, responses=errors(401, 403, 422))
async def add_quick_reply(db: Db, staff: Staff, data: JSONBody[QuickReplyBody]) -> quick_replies.QuickReplyObject:
    """Managers only: a new saved reply."""
    _managers_only(staff)
    return await quick_replies.add(db, data.title, data.body, staff.id)


@put("/quick-replies/{reply_id:int}", responses=errors(401, 403, 404, 422))
async def change_quick_reply(
    db: Db, staff: Staff, reply_id: FromPath[int], data: JSONBody[QuickReplyBody]
) -> quick_replies.QuickReplyObject:
    """Managers only: a saved reply's new title and body."""
    _managers_only(staff)
    return await quick_replies.change(db, reply_id, data.title, data.body)


@delete("/quick-replies/{reply_id:int}", status_code=200, responses=errors(401, 403, 404))
async def delete_quick_reply(db: Db, staff: Staff, reply_id: FromPath[int]) -> Deleted:
    """Managers only: the saved reply is gone for everyone."""
    _managers_only(staff)
    await quick_replies.remove(db, reply_id)
    return Deleted(id=reply_id, deleted=True)


route_handlers = [
    start_conversation,
    parse_phone_number,
    list_quick_replies,
    add_quick_reply,
    change_quick_reply,
    delete_quick_reply,
]
