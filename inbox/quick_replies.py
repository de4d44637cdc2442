"""Saved replies: answers managers keep (title and body) and everyone uses from the composer.

    await listed(db, conversation_id=None, business_name=...) -> [QuickReplyObject, ...]  (filled in when given)
    await add(db, title, body, staff_id) / change(db, id, title, body) -> QuickReplyObject; remove(db, id)
    fill(body, customer_name, business_name) -> Filled(text, unfilled)

Each call owns its transaction; a refusal (QuickReplyRefused) changes nothing.

A body may hold `{first_name}`, `{name}` and `{business_name}`; `fill` puts in what is known for
the open conversation and leaves a field it cannot fill (no name known) as it was, named in
`unfilled`, so the composer shows it and refuses to send it until someone edits it. Other text
in braces is left alone: only these three names are fields.
"""

from __future__ import annotations

import re

import msgspec
from sqlalchemy import delete, select

from inbox import store
from inbox.clock import utcnow
from inbox.db import Database
from inbox.models import QuickReply
from inbox.refusals import Refused, Why
from inbox.store import iso

MAX_TITLE = 200
MAX_BODY = 1600  # a reply's own limit
FIELDS = ("first_name", "name", "business_name")
FIELD = re.compile(r"\{(first_name|name|business_name)\}")


class QuickReplyRefused(Refused):
    """A saved reply the inbox will not store (or cannot find)."""


class Filled(msgspec.Struct, frozen=True, kw_only=True):
    text: str
    unfilled: list[str]  # field names left in the text, in order, once each


class QuickReplyObject(msgspec.Struct, kw_only=True):
    id: int
    title: str
    body: str
    created_by: int | None
    created_at: str | None
    updated_at: str | None
    # Only when the list was asked for one conversation: absent (not null) otherwise.
    filled: Filled | msgspec.UnsetType = msgspec.UNSET


def fill(body: str, customer_name: str | None, business_name: str) -> Filled:
    name = " ".join((customer_name or "").split())
    values = {"name": name, "first_name": name.split(" ")[0] if name else "", "business_name": business_name.strip()}
    unfilled: list[str] = []

    def put(match: re.Match[str]) -> str:
        key = match.group(1)
        if values[key]:
            return values[key]
        if key not in unfilled:
            unfilled.append(key)
        return match.group(0)

    return Filled(text=FIELD.sub(put, body), unfilled=unfilled)


def checked(title: object, body: object) -> tuple[str, str]:
    """(title, body) stripped, or QuickReplyRefused (invalid) naming what is wrong."""
    if not isinstance(title, str) or not title.strip():
        raise QuickReplyRefused(Why.INVALID, "invalid_title", "Give the saved reply a title.")
    if len(title.strip()) > MAX_TITLE:
        raise QuickReplyRefused(Why.INVALID, "invalid_title", f"A title is at most {MAX_TITLE} characters.")
    if not isinstance(body, str) or not body.strip():
        raise QuickReplyRefused(Why.INVALID, "empty_body", "Write the text of the saved reply.")
    if len(body.strip()) > MAX_BODY:
        raise QuickReplyRefused(
            Why.INVALID, "body_too_long", f"A saved reply is at most {MAX_BODY:,} characters, like any reply."
        )
    if "\x00" in title or "\x00" in body:
        raise QuickReplyRefused(Why.INVALID, "invalid_body", "The text holds a NUL character.")
    return title.strip(), body.strip()


def reply_object(reply: QuickReply, filled: Filled | msgspec.UnsetType = msgspec.UNSET) -> QuickReplyObject:
    return QuickReplyObject(
        id=reply.id,
        title=reply.title,
        body=reply.body,
        created_by=reply.created_by,
        created_at=iso(reply.created_at),
        updated_at=iso(reply.updated_at),
        filled=filled,
    )


async def listed(db: Database, *, conversation_id: int | None, business_name: str) -> list[QuickReplyObject]:
    """Every saved reply, by title; with a conversation, each also `filled` in for its customer."""
    async with db.read() as session:
        customer_name: str | None = None
        if conversation_id is not None:
            found = (
                await store.conversation_with_customer(session, conversation_id)
                if 0 < conversation_id <= store.MAX_ID
                else None
            )
            if found is None:
                raise QuickReplyRefused(Why.NOT_FOUND, "not_found", "There is no such conversation.")
            customer_name = found[1].name or found[1].whatsapp_profile_name
        replies = (await session.execute(select(QuickReply).order_by(QuickReply.title, QuickReply.id))).scalars()
        items = [
            reply_object(
                reply,
                msgspec.UNSET if conversation_id is None else fill(reply.body, customer_name, business_name),
            )
            for reply in replies
        ]
    return items


async def add(db: Database, title: object, body: object, staff_id: int) -> QuickReplyObject:
    title, body = checked(title, body)
    now = utcnow()
    async with db.write() as session:
        reply = QuickReply(title=title, body=body, created_by=staff_id, created_at=now, updated_at=now)
        session.add(reply)
        await session.flush()
        result = reply_object(reply)
        await session.commit()
    return result


async def change(db: Database, reply_id: int, title: object, body: object) -> QuickReplyObject:
    title, body = checked(title, body)
    async with db.write() as session:
        reply = await session.get(QuickReply, reply_id) if 0 < reply_id <= store.MAX_ID else None
        if reply is None:
            raise QuickReplyRefused(Why.NOT_FOUND, "not_found", "There is no such saved reply.")
        reply.title, reply.body = title, body
        reply.updated_at = utcnow()
        await session.flush()
        result = reply_object(reply)
        await session.commit()
    return result


async def remove(db: Database, reply_id: int) -> None:
    async with db.write() as session:
        deleted = await session.execute(delete(QuickReply).where(QuickReply.id == reply_id).returning(QuickReply.id))
        if deleted.scalar() is None:
            raise QuickReplyRefused(Why.NOT_FOUND, "not_found", "There is no such saved reply.")
        await session.commit()
