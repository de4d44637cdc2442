"""The JSON API (reads and read marks here; replies live in the replies module).

Every route takes the staff member from `api_staff`: a session with CSRF, or a bearer token.
A JSON body arrives as its Struct (inbox.web.bodies), read strictly by `ApiRequest`. Handlers
translate: the domain functions they call own their transactions and rules.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, Router, get, patch, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.response import Stream
from litestar.types import ControllerRouterHandler

from inbox import consent, conversations, objects, outbound, preferences, read_marks, schedule, team
from inbox.accounts import StaffMember
from inbox.csv_cells import csv_line
from inbox.web.api_docs import errors
from inbox.web.auth import api_staff
from inbox.web.bodies import (
    AT_LEAST_ONE_FIELD,
    ConsentChange,
    ConversationChange,
    CustomerChange,
    NoteBody,
    ReplyBody,
)
from inbox.web.errors import ApiError
from inbox.web.media import media_ids
from inbox.web.request_body import ApiRequest
from inbox.web.services import AppSettings, Db, EventBus, Outbox

Staff = NamedDependency[StaffMember]


@get("/conversations", responses=errors(401, 422))
async def list_conversations(
    db: Db,
    settings: AppSettings,
    staff: Staff,
    status: FromQuery[str] = "open",
    q: FromQuery[str | None] = None,
    cursor: FromQuery[str | None] = None,
    assignee: FromQuery[str | None] = None,
) -> objects.ConversationPage:
    if status not in ("open", "closed", "all"):
        raise ApiError(422, "invalid_status", "status must be open, closed or all.")
    owner: int | object | None = conversations.ANY_ASSIGNEE
    if assignee == "me":
        owner = staff.id
    elif assignee == "none":
        owner = None
    elif assignee is not None:
        if not (assignee.isascii() and assignee.isdigit() and 0 < int(assignee) <= conversations.MAX_ID):
            raise ApiError(422, "invalid_assignee", "assignee must be me, none or a staff member's id.")
        owner = int(assignee)
    return await conversations.listed(
        db,
        staff.id,
        status=status,
        query=(q or "")[:200] or None,
        cursor=cursor,
        country=settings.default_country,
        assignee=owner,
    )


@get("/conversations/{conversation_id:int}", responses=errors(401, 404))
async def get_conversation(db: Db, staff: Staff, conversation_id: FromPath[int]) -> objects.ConversationDetail:
    return await conversations.one(db, conversation_id, staff.id)


@get("/conversations/counts", responses=errors(401, 403))
async def conversation_counts(db: Db, staff: Staff) -> conversations.ViewCounts:
    """How many conversations each view holds for the caller: mine, unassigned, open, closed."""
    return await conversations.view_counts(db, staff.id)


@patch("/conversations/{conversation_id:int}", responses=errors(401, 403, 404, 422))
async def update_conversation(
    db: Db,
    bus: EventBus,
    staff: Staff,
    conversation_id: FromPath[int],
    data: Annotated[ConversationChange, AT_LEAST_ONE_FIELD],
) -> objects.ConversationObject:
    """Close or reopen (`status`) and/or give an owner (`assignee_id`, null for nobody)."""
    return await team.update_conversation(db, bus, conversation_id, status=data.status, assignee_id=data.assignee_id)


@post("/conversations/{conversation_id:int}/notes", status_code=201, responses=errors(401, 403, 404, 422))
async def add_note(
    db: Db, bus: EventBus, staff: Staff, conversation_id: FromPath[int], data: JSONBody[NoteBody]
) -> objects.NoteObject:
    """An internal note: stored and shown to the team, never sent to the customer."""
    return await team.add_note(db, bus, conversation_id, staff.id, data.body)


@get("/customers/{customer_id:int}", responses=errors(401, 403, 404))
async def get_customer(db: Db, staff: Staff, customer_id: FromPath[int]) -> objects.CustomerCard:
    """The customer card: the customer with first and last contact and number of conversations."""
    return await team.customer_card(db, customer_id)


@patch("/customers/{customer_id:int}", responses=errors(401, 403, 404, 422))
async def update_customer(
    db: Db, bus: EventBus, staff: Staff, customer_id: FromPath[int], data: Annotated[CustomerChange, AT_LEAST_ONE_FIELD]
) -> objects.CustomerObject:
    """The customer's name and the team's notes about them."""
    return await team.update_customer(db, bus, customer_id, name=data.name, notes=data.notes)


@post("/conversations/{conversation_id:int}/read", status_code=200, responses=errors(401, 403, 404))
async def mark_read(db: Db, staff: Staff, conversation_id: FromPath[int]) -> read_marks.ReadMark:
    return await read_marks.mark_read(db, conversation_id, staff.id)


@post("/conversations/{conversation_id:int}/unread", status_code=200, responses=errors(401, 403, 404))
async def mark_unread(db: Db, staff: Staff, conversation_id: FromPath[int]) -> read_marks.UnreadMark:
    """Marks the customer's latest message unread again for this staff member only."""
    return await read_marks.mark_unread(db, conversation_id, staff.id)


def idempotency_key(request: Request[Any, Any, Any]) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is not None and not (0 < len(key) <= 200):
        raise ApiError(422, "invalid_idempotency_key", "Idempotency-Key must be 1 to 200 characters.")
    return key


@post(
    "/conversations/{conversation_id:int}/messages",
    status_code=202,
    responses=errors(401, 403, 404, 409, 422),
)
async def send_reply(
    request: Request[Any, Any, Any],
    db: Db,
    bus: EventBus,
    settings: AppSettings,
    outbox: Outbox,
    staff: Staff,
    conversation_id: FromPath[int],
    data: JSONBody[ReplyBody],
) -> Response[objects.MessageObject]:
    """Queues a reply (202); the outbox sends it, at `send_at` when given. A repeated Idempotency-Key
    returns the first."""
    reply = outbound.ReplyRequest(
        conversation_id=conversation_id,
        staff_id=staff.id,
        body=data.body,
        channel=data.channel,
        content_sid=data.content_sid,
        content_variables=data.content_variables,
        idempotency_key=idempotency_key(request),
        send_at=schedule.parse_send_at(data.send_at),  # a scheduled reply (inbox.schedule)
        media_ids=media_ids(data.media_ids),
    )
    message, created = await outbound.queue(db, bus, settings, outbox, reply)
    # The message itself (docs/API.md); a replayed key is marked in a header.
    return Response(message, status_code=202, headers={"Idempotent-Replayed": "false" if created else "true"})


@get("/customers/{customer_id:int}/consent", responses=errors(401, 404))
async def customer_consent(db: Db, staff: Staff, customer_id: FromPath[int]) -> objects.ConsentHistory:
    """The customer's consent records, oldest first, and the state derived from them."""
    return await consent.customer_consent(db, customer_id)


@post("/customers/{customer_id:int}/consent", status_code=201, responses=errors(401, 403, 404, 409, 422))
async def record_consent(
    db: Db, bus: EventBus, staff: Staff, customer_id: FromPath[int], data: JSONBody[ConsentChange]
) -> objects.ConsentRecordObject:
    """Staff record a verbal opt-out or opt-in, with a note. Undoing a customer's own STOP needs a manager."""
    return await consent.record_staff_change(
        db, bus, staff, customer_id, channel=data.channel, action=data.action, note=data.note
    )


@get("/consent/export", responses=errors(401, 403, 422))
async def consent_export(db: Db, staff: Staff, format: FromQuery[str] = "csv") -> Stream:
    """Managers only: the whole consent ledger, for an audit, as CSV (spreadsheet-safe) or JSON."""
    if not staff.is_manager:
        raise ApiError(403, "forbidden", "Only managers can export the consent records.")
    if format not in ("csv", "json"):
        raise ApiError(422, "invalid_format", "format must be csv or json.")

    async def csv_chunks() -> AsyncIterator[bytes]:
        lines = [csv_line(consent.EXPORT_COLUMNS)]
        size = 0
        async for row in consent.ledger_rows(db):
            cells: dict[str, Any] = {**row, "evidence": msgspec.json.encode(row["evidence"]).decode()}
            lines.append(
                csv_line(
                    c if isinstance(c, int) or c is None else str(c) for c in (cells[n] for n in consent.EXPORT_COLUMNS)
                )
            )
            size += len(lines[-1])
            if size > 64_000:
                yield "".join(lines).encode()
                lines, size = [], 0
        yield "".join(lines).encode()

    async def json_chunks() -> AsyncIterator[bytes]:
        yield b"["
        first = True
        async for row in consent.ledger_rows(db):
            yield (b"" if first else b",") + msgspec.json.encode(row)
            first = False
        yield b"]"

    name = f"consent-records.{format}"
    return Stream(
        csv_chunks() if format == "csv" else json_chunks(),
        media_type="text/csv; charset=utf-8" if format == "csv" else "application/json",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


class Me(msgspec.Struct, kw_only=True):
    id: int
    email: str
    name: str
    role: str  # receptionist | manager
    preferences: preferences.Preferences


@get("/me", responses=errors(401))
async def me(db: Db, staff: Staff) -> Me:
    """The caller, with their own preferences (PATCH /api/me/preferences changes them)."""
    mine = await preferences.preferences_of(db, staff.id)
    return Me(id=staff.id, email=staff.email, name=staff.name, role=staff.role, preferences=mine)


def api_router(extra_handlers: list[ControllerRouterHandler] | None = None) -> Router:
    return Router(
        path="/api",
        route_handlers=[
            list_conversations,
            conversation_counts,
            get_conversation,
            update_conversation,
            add_note,
            get_customer,
            update_customer,
            mark_read,
            mark_unread,
            send_reply,
            customer_consent,
            record_consent,
            consent_export,
            me,
            *(extra_handlers or []),
        ],
        dependencies={"staff": Provide(api_staff)},
        request_class=ApiRequest,  # JSON bodies are read strictly into their Structs
    )
