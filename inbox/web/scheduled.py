"""Scheduled replies over HTTP (the reply itself is POSTed with `send_at`: inbox.web.api).

    DELETE /api/messages/{id}            cancels a scheduled reply: 200 `canceled`; 409 `already_sent` once queued
    POST   /api/messages/{id}/send-now   queues a scheduled reply at once: 200 `queued`

Both answer with the message; the change also goes out live as `message.updated`.
"""

from __future__ import annotations

from litestar import delete, post
from litestar.di import NamedDependency
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath

from inbox import schedule
from inbox.accounts import StaffMember
from inbox.objects import MessageObject
from inbox.web.api_docs import errors
from inbox.web.services import Db, EventBus, Outbox

Staff = NamedDependency[StaffMember]


@delete("/messages/{message_id:int}", status_code=200, responses=errors(401, 403, 404, 409))
async def cancel_message(db: Db, bus: EventBus, staff: Staff, message_id: FromPath[int]) -> MessageObject:
    """Cancels a scheduled reply that has not gone out; it is never sent."""
    return await schedule.cancel(db, bus, message_id)  # a refusal maps to 404/409 (inbox.web.errors)


@post("/messages/{message_id:int}/send-now", status_code=200, responses=errors(401, 403, 404, 409))
async def send_message_now(
    db: Db, bus: EventBus, outbox: Outbox, staff: Staff, message_id: FromPath[int]
) -> MessageObject:
    """Sends a scheduled reply at once instead of at its time (consent and the window are checked as it goes)."""
    return await schedule.send_now(db, bus, outbox, message_id)  # a refusal maps to 404/409 (inbox.web.errors)


route_handlers: list[HTTPRouteHandler] = [cancel_message, send_message_now]
