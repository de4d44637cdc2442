"""The JSON API (reads and read marks here; replies live in the replies module).

Every route takes the staff member from `api_staff`: a session with CSRF, or a bearer token.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, Response, Router, get, patch, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery
from litestar.response import Stream

from inbox import bus as events_bus
from inbox import consent, outbound, preferences, schedule, store, team
from inbox.accounts import StaffMember
from inbox.csv_cells import csv_line
from inbox.models import Customer
from inbox.web.api_docs import (
    CONSENT_BODY,
    CONVERSATION_CHANGE_BODY,
    CUSTOMER_CHANGE_BODY,
    NOTE_BODY,
    REPLY_BODY,
    errors,
)
from inbox.web.auth import api_staff, runtime_of
from inbox.web.errors import ApiError
from inbox.web.media import media_ids
from inbox.web.services import Db

Staff = NamedDependency[StaffMember]


MAX_JSON_DEPTH = 32


async def json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object, or 400 `invalid_json`: not JSON, not UTF-8, nested deeper than
    MAX_JSON_DEPTH (refused before decoding, so no recursion limit is reached), or not an object."""
    raw = await request.body()
    if _nesting(raw) > MAX_JSON_DEPTH:
        raise ApiError(400, "invalid_json", f"The request body is nested deeper than {MAX_JSON_DEPTH} levels.")
    try:
        payload = msgspec.json.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        raise ApiError(400, "invalid_json", "The request body must be JSON (UTF-8).") from None
    if not isinstance(payload, dict):
        raise ApiError(400, "invalid_json", "The request body must be a JSON object.")
    return payload


def _nesting(raw: bytes) -> int:
    """An upper bound of the JSON's nesting depth (brackets inside strings count too: harmless)."""
    depth = deepest = 0
    for byte in raw.translate(None, _NOT_BRACKETS):
        depth += 1 if byte in b"[{" else -1
        deepest = max(deepest, depth)
        if deepest > MAX_JSON_DEPTH:
            break
    return deepest


_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


@get("/conversations", responses=errors(401, 422))
async def list_conversations(
    request: Request,
    staff: Staff,
    status: FromQuery[str] = "open",
    q: FromQuery[str | None] = None,
    cursor: FromQuery[str | None] = None,
    assignee: FromQuery[str | None] = None,
) -> dict[str, Any]:
    if status not in ("open", "closed", "all"):
        raise ApiError(422, "invalid_status", "status must be open, closed or all.")
    owner: Any = store.ANY_ASSIGNEE
    if assignee == "me":
        owner = staff.id
    elif assignee == "none":
        owner = None
    elif assignee is not None:
        if not (assignee.isascii() and assignee.isdigit() and 0 < int(assignee) <= store.MAX_ID):
            raise ApiError(422, "invalid_assignee", "assignee must be me, none or a staff member's id.")
        owner = int(assignee)
    async with runtime_of(request).db.read() as session:
        try:
            items, next_cursor = await store.list_conversations(
                session,
                staff.id,
                status=status,
                query=(q or "")[:200] or None,
                cursor=cursor,
                country=runtime_of(request).settings.default_country,
                assignee=owner,
            )
        except ValueError:
            raise ApiError(
                422, "invalid_cursor", "That page link is not valid any more; start from the first page."
            ) from None
    return {"conversations": items, "next_cursor": next_cursor}


@get("/conversations/{conversation_id:int}", responses=errors(401, 404))
async def get_conversation(request: Request, staff: Staff, conversation_id: FromPath[int]) -> dict[str, Any]:
    async with runtime_of(request).db.read() as session:
        conversation = await store.get_conversation(session, conversation_id, staff.id)
    if conversation is None:
        raise ApiError(404, "not_found", "There is no such conversation.")
    return conversation


@get("/conversations/counts", responses=errors(401, 403))
async def conversation_counts(db: Db, staff: Staff) -> dict[str, int]:
    """How many conversations each view holds for the caller: mine, unassigned, open, closed."""
    async with db.read() as session:
        return await store.view_counts(session, staff.id)


@patch(
    "/conversations/{conversation_id:int}",
    responses=errors(401, 403, 404, 422),
    operation_class=CONVERSATION_CHANGE_BODY,
)
async def update_conversation(request: Request, staff: Staff, conversation_id: FromPath[int]) -> dict[str, Any]:
    """Close or reopen (`status`) and/or give an owner (`assignee_id`, null for nobody)."""
    payload = await json_object(request)
    if not ({"status", "assignee_id"} & payload.keys()):
        raise ApiError(422, "nothing_to_change", "Give status, assignee_id or both.")
    status = payload.get("status")
    if "status" in payload and not isinstance(status, str):
        raise ApiError(422, "invalid_status", "status must be open or closed.")
    return await team.update_conversation(
        runtime_of(request),
        conversation_id,
        status=status,
        assignee_id=payload.get("assignee_id", team.UNSET),
    )


@post(
    "/conversations/{conversation_id:int}/notes",
    status_code=201,
    responses=errors(401, 403, 404, 422),
    operation_class=NOTE_BODY,
)
async def add_note(request: Request, staff: Staff, conversation_id: FromPath[int]) -> dict[str, Any]:
    """An internal note: stored and shown to the team, never sent to the customer."""
    payload = await json_object(request)
    return await team.add_note(runtime_of(request), conversation_id, staff.id, payload.get("body"))


@get("/customers/{customer_id:int}", responses=errors(401, 403, 404))
async def get_customer(request: Request, staff: Staff, customer_id: FromPath[int]) -> dict[str, Any]:
    """The customer card: the customer with first and last contact and number of conversations."""
    async with runtime_of(request).db.read() as session:
        card = await team.customer_card(session, customer_id) if customer_id <= store.MAX_ID else None
    if card is None:
        raise ApiError(404, "not_found", "There is no such customer.")
    return card


@patch(
    "/customers/{customer_id:int}",
    responses=errors(401, 403, 404, 422),
    operation_class=CUSTOMER_CHANGE_BODY,
)
async def update_customer(request: Request, staff: Staff, customer_id: FromPath[int]) -> dict[str, Any]:
    """The customer's name and the team's notes about them."""
    payload = await json_object(request)
    if not ({"name", "notes"} & payload.keys()):
        raise ApiError(422, "nothing_to_change", "Give name, notes or both.")
    return await team.update_customer(
        runtime_of(request),
        customer_id,
        name=payload.get("name", team.UNSET),
        notes=payload.get("notes", team.UNSET),
    )


@post("/conversations/{conversation_id:int}/read", status_code=200, responses=errors(401, 403, 404))
async def mark_read(request: Request, staff: Staff, conversation_id: FromPath[int]) -> dict[str, Any]:
    async with runtime_of(request).db.write() as session:
        if not await store.conversation_exists(session, conversation_id):
            raise ApiError(404, "not_found", "There is no such conversation.")
        upto = await store.mark_read(session, conversation_id, staff.id)
        await session.commit()
    return {"conversation_id": conversation_id, "last_read_message_id": upto, "unread_count": 0}


@post("/conversations/{conversation_id:int}/unread", status_code=200, responses=errors(401, 403, 404))
async def mark_unread(request: Request, staff: Staff, conversation_id: FromPath[int]) -> dict[str, Any]:
    """Marks the customer's latest message unread again for this staff member only."""
    async with runtime_of(request).db.write() as session:
        if not await store.conversation_exists(session, conversation_id):
            raise ApiError(404, "not_found", "There is no such conversation.")
        unread = await store.mark_unread(session, conversation_id, staff.id)
        await session.commit()
    return {"conversation_id": conversation_id, "unread_count": unread}


@post(
    "/conversations/{conversation_id:int}/messages",
    status_code=202,
    responses=errors(401, 403, 404, 409, 422),
    operation_class=REPLY_BODY,
)
async def send_reply(request: Request, staff: Staff, conversation_id: FromPath[int]) -> Response:
    """Queues a reply (202); the outbox sends it, at `send_at` when given. A repeated Idempotency-Key
    returns the first."""
    payload = await json_object(request)
    body, content_sid = payload.get("body"), payload.get("content_sid")
    if body is not None and not isinstance(body, str):
        raise ApiError(422, "invalid_body", "body must be text.")
    key = request.headers.get("idempotency-key")
    if key is not None and not (0 < len(key) <= 200):
        raise ApiError(422, "invalid_idempotency_key", "Idempotency-Key must be 1 to 200 characters.")
    reply = outbound.ReplyRequest(
        conversation_id=conversation_id,
        staff_id=staff.id,
        body=body,
        channel=payload.get("channel"),
        content_sid=content_sid if isinstance(content_sid, str) else None if content_sid is None else "",
        content_variables=payload.get("content_variables"),
        idempotency_key=key,
        send_at=schedule.parse_send_at(payload.get("send_at")),  # a scheduled reply (inbox.schedule)
        media_ids=media_ids(payload.get("media_ids")),
    )
    message, created = await outbound.queue_reply(runtime_of(request), reply)
    # The message itself (docs/API.md); a replayed key is marked in a header.
    return Response(message, status_code=202, headers={"Idempotent-Replayed": "false" if created else "true"})


@get("/customers/{customer_id:int}/consent", responses=errors(401, 404))
async def customer_consent(request: Request, staff: Staff, customer_id: FromPath[int]) -> dict[str, Any]:
    """The customer's consent records, oldest first, and the state derived from them."""
    async with runtime_of(request).db.read() as session:
        customer = await session.get(Customer, customer_id)
        if customer is None:
            raise ApiError(404, "not_found", "There is no such customer.")
        records = await consent.history(session, customer_id)
        states = (await store.consent_states(session, [customer_id]))[customer_id]
    return {"customer_id": customer_id, "consent": states, "records": records}


@post(
    "/customers/{customer_id:int}/consent",
    status_code=201,
    responses=errors(401, 403, 404, 409, 422),
    operation_class=CONSENT_BODY,
)
async def record_consent(request: Request, staff: Staff, customer_id: FromPath[int]) -> dict[str, Any]:
    """Staff record a verbal opt-out or opt-in, with a note. Undoing a customer's own STOP needs a manager."""
    payload = await json_object(request)
    channel, action = payload.get("channel"), payload.get("action")
    note = str(payload.get("note") or "").strip()
    if channel not in ("sms", "whatsapp") or action not in (consent.OPT_IN, consent.OPT_OUT):
        raise ApiError(422, "invalid_consent", "channel must be sms or whatsapp, action opt_in or opt_out.")
    if not note or len(note) > 1000:
        raise ApiError(
            422, "note_required", "Write a short note saying how the customer asked (1 to 1,000 characters)."
        )
    runtime = runtime_of(request)
    async with runtime.db.write() as session:
        customer = await session.get(Customer, customer_id)
        if customer is None:
            raise ApiError(404, "not_found", "There is no such customer.")
        latest = await consent.latest(session, customer_id, channel)
        if latest is not None and latest.action == action:
            raise ApiError(
                409, "unchanged", f"The customer is already {'opted out' if action == consent.OPT_OUT else 'opted in'}."
            )
        if (
            action == consent.OPT_IN
            and latest is not None
            and latest.source in consent.CUSTOMER_SOURCES
            and not staff.is_manager
        ):
            raise ApiError(
                403,
                "needs_manager",
                "The customer opted out by texting STOP. Only a manager can record "
                "that they asked to be messaged again.",
            )
        record = await consent.append(
            session,
            customer,
            channel=channel,
            action=action,
            source="staff",
            evidence={"staff_id": staff.id, "staff_email": staff.email, "note": note},
            staff_id=staff.id,
        )
        await events_bus.commit(session, runtime.bus)
    return consent.record_dict(record)


@get("/consent/export", responses=errors(401, 403, 422))
async def consent_export(request: Request, staff: Staff, format: FromQuery[str] = "csv") -> Stream:
    """Managers only: the whole consent ledger, for an audit, as CSV (spreadsheet-safe) or JSON."""
    if not staff.is_manager:
        raise ApiError(403, "forbidden", "Only managers can export the consent records.")
    if format not in ("csv", "json"):
        raise ApiError(422, "invalid_format", "format must be csv or json.")
    db = runtime_of(request).db

    async def csv_chunks():
        lines = [csv_line(consent.EXPORT_COLUMNS)]
        size = 0
        async for row in consent.ledger_rows(db):
            cells = {**row, "evidence": msgspec.json.encode(row["evidence"]).decode()}
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

    async def json_chunks():
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


@get("/me", responses=errors(401))
async def me(request: Request, staff: Staff) -> dict[str, Any]:
    """The caller, with their own preferences (PATCH /api/me/preferences changes them)."""
    async with runtime_of(request).db.read() as session:
        mine = await preferences.preferences_of(session, staff.id)
    return {"id": staff.id, "email": staff.email, "name": staff.name, "role": staff.role, "preferences": mine}


def api_router(extra_handlers: list | None = None) -> Router:
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
    )
