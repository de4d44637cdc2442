"""What staff read of the conversations: the list and its views, one conversation, the inbox page.

    await listed(db, staff_id, status=..., query=..., cursor=..., country=..., assignee=...)
                                           -> ConversationPage {conversations, next_cursor}
    await one(db, conversation_id, staff_id)  -> the conversation with its messages and notes
    await view_counts(db, staff_id)           -> ViewCounts {mine, unassigned, open, closed}
    await inbox_view(db, opened)              -> InboxView, or None when `opened` names no conversation

Each call owns one read session; the SQL is inbox.store's. A cursor that no longer reads and a
conversation that does not exist are ConversationRefused (invalid, not found).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgspec

from inbox import accounts, objects, store
from inbox.db import Database
from inbox.refusals import Refused, Why

ANY_ASSIGNEE = store.ANY_ASSIGNEE  # `listed`: whoever owns it, or nobody
MAX_ID = store.MAX_ID  # ids are 64-bit integers: anything larger names nothing


class ConversationRefused(Refused):
    """A read of the conversations that names something that is not there."""


async def listed(
    db: Database,
    staff_id: int,
    *,
    status: str,
    query: str | None,
    cursor: str | None,
    country: str,
    assignee: int | object | None = ANY_ASSIGNEE,
) -> objects.ConversationPage:
    """A page of conversations, newest activity first; `next_cursor` reads the next page."""
    async with db.read() as session:
        try:
            items, next_cursor = await store.list_conversations(
                session, staff_id, status=status, query=query, cursor=cursor, country=country, assignee=assignee
            )
        except ValueError:
            raise ConversationRefused(
                Why.INVALID, "invalid_cursor", "That page link is not valid any more; start from the first page."
            ) from None
    return objects.ConversationPage(conversations=items, next_cursor=next_cursor)


async def one(db: Database, conversation_id: int, staff_id: int) -> objects.ConversationDetail:
    async with db.read() as session:
        conversation = await store.get_conversation(session, conversation_id, staff_id)
    if conversation is None:
        raise ConversationRefused(Why.NOT_FOUND, "not_found", "There is no such conversation.")
    return conversation


class ViewCounts(msgspec.Struct, kw_only=True):
    """How many conversations each view of the list holds for one staff member."""

    mine: int  # open ones they own
    unassigned: int  # open ones nobody owns
    open: int
    closed: int


async def view_counts(db: Database, staff_id: int) -> ViewCounts:
    async with db.read() as session:
        return ViewCounts(**await store.view_counts(session, staff_id))


@dataclass(frozen=True)
class InboxView:
    """What the inbox page is rendered with."""

    last_event_id: int  # the page's socket replays from here, so nothing after the render is missed
    team: list[dict[str, Any]]  # enabled accounts, {"id", "name"}, by name: whom a thread can be given to


async def inbox_view(db: Database, opened: int | None = None) -> InboxView | None:
    """The page's starting point; None when `opened` (the conversation a link opens) does not exist."""
    async with db.read() as session:
        last_event_id = await store.latest_event_id(session)
        team = [
            {"id": row.id, "name": accounts.display_name(row.name, row.email)}
            for row in await accounts.list_staff(session)
            if row.enabled
        ]
        if opened is not None and not await store.conversation_exists(session, opened):
            return None
    return InboxView(last_event_id, sorted(team, key=lambda member: member["name"].casefold()))
