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

from litestar import Request, Response, delete, get, post, put
from litestar.params import FromPath, FromQuery
from sqlalchemy import select

from inbox import outreach, quick_replies, store
from inbox.models import Customer
from inbox.web.api import Staff, json_object
from inbox.web.api_docs import NEW_CONVERSATION_BODY, QUICK_REPLY_BODY, errors
from inbox.web.auth import runtime_of
from inbox.web.errors import ApiError

_MANAGERS_ONLY = "Only managers can change the saved replies."


@post(
    "/conversations",
    status_code=201,
    responses=errors(401, 403, 409, 422),
    operation_class=NEW_CONVERSATION_BODY,
)
async def start_conversation(request: Request[Any, Any, Any], staff: Staff) -> Response[dict[str, Any]]:
    """A message to a number as typed, who may never have written: 201 with the conversation
    (a known customer's own) and the queued message. A repeated Idempotency-Key returns the first."""
    payload = await json_object(request)
    to, body, content_sid = payload.get("to"), payload.get("body"), payload.get("content_sid")
    if not isinstance(to, str):
        raise ApiError(422, "invalid_number", "Give the number to write to in `to`.")
    if body is not None and not isinstance(body, str):
        raise ApiError(422, "invalid_body", "body must be text.")
    channel = payload.get("channel", "sms")
    key = request.headers.get("idempotency-key")
    if key is not None and not (0 < len(key) <= 200):
        raise ApiError(422, "invalid_idempotency_key", "Idempotency-Key must be 1 to 200 characters.")
    conversation, message, created = await outreach.start_conversation(
        runtime_of(request),
        outreach.NewConversation(
            to=to,
            staff_id=staff.id,
            channel=channel if isinstance(channel, str) else "",
            body=body,
            content_sid=content_sid if isinstance(content_sid, str) else None if content_sid is None else "",
            content_variables=payload.get("content_variables"),
            idempotency_key=key,
        ),
    )
    return Response(
        {"conversation": conversation, "message": message},
        status_code=201,
        headers={"Idempotent-Replayed": "false" if created else "true"},
    )


@get("/phone-numbers/parse", responses=errors(401, 422))
async def parse_phone_number(request: Request[Any, Any, Any], staff: Staff, number: FromQuery[str]) -> dict[str, Any]:
    """How the inbox reads a typed number (INBOX_DEFAULT_COUNTRY for one without +country): its
    E.164 form, the international way of writing it, its country, and whether it is a known customer."""
    runtime = runtime_of(request)
    country = runtime.settings.default_country
    parsed = outreach.parse_typed(number, country)
    if parsed is None:
        raise outreach.invalid_number(number, country)
    async with runtime.db.read() as session:
        customer = await session.scalar(select(Customer.id).where(Customer.phone == parsed.e164))
        conversation_id = await store.conversation_id_of(session, customer) if customer else None
    return {
        "e164": parsed.e164,
        "international": parsed.international,
        "country": parsed.country,
        "default_country": country,
        "conversation_id": conversation_id,
    }


@get("/quick-replies", responses=errors(401, 404, 422))
async def list_quick_replies(
    request: Request[Any, Any, Any], staff: Staff, conversation_id: FromQuery[int | None] = None
) -> dict[str, Any]:
    """Every saved reply, by title. With `conversation_id`, each also comes `filled` in for that
    conversation's customer: `{"text", "unfilled": [field names nobody could fill]}`."""
    runtime = runtime_of(request)
    items = await quick_replies.listed(
        runtime.db, conversation_id=conversation_id, business_name=runtime.settings.business_name
    )
    return {"quick_replies": items, "fields": list(quick_replies.FIELDS)}


def _managers_only(staff: Any) -> None:
    if not staff.is_manager:
        raise ApiError(403, "forbidden", _MANAGERS_ONLY)


@post("/quick-replies", status_code=201, responses=errors(401, 403, 422), operation_class=QUICK_REPLY_BODY)
async def add_quick_reply(request: Request[Any, Any, Any], staff: Staff) -> dict[str, Any]:
    """Managers only: a new saved reply."""
    _managers_only(staff)
    payload = await json_object(request)
    return await quick_replies.add(runtime_of(request).db, payload.get("title"), payload.get("body"), staff.id)


@put(
    "/quick-replies/{reply_id:int}",
    responses=errors(401, 403, 404, 422),
    operation_class=QUICK_REPLY_BODY,
)
async def change_quick_reply(request: Request[Any, Any, Any], staff: Staff, reply_id: FromPath[int]) -> dict[str, Any]:
    """Managers only: a saved reply's new title and body."""
    _managers_only(staff)
    payload = await json_object(request)
    return await quick_replies.change(runtime_of(request).db, reply_id, payload.get("title"), payload.get("body"))


@delete("/quick-replies/{reply_id:int}", status_code=200, responses=errors(401, 403, 404))
async def delete_quick_reply(request: Request[Any, Any, Any], staff: Staff, reply_id: FromPath[int]) -> dict[str, Any]:
    """Managers only: the saved reply is gone for everyone."""
    _managers_only(staff)
    await quick_replies.remove(runtime_of(request).db, reply_id)
    return {"id": reply_id, "deleted": True}


route_handlers = [
    start_conversation,
    parse_phone_number,
    list_quick_replies,
    add_quick_reply,
    change_quick_reply,
    delete_quick_reply,
]
