"""The objects the API answers with and the live events carry (docs/API.md, "Objects").

Each is a msgspec Struct: one definition gives the JSON (fields go out in the order they are
declared here, every one of them, null included), the schema Litestar publishes at
/schema/openapi.json, and the types mypy checks. `inbox.store` builds them from rows
(`message_object`, `conversation_object`, …); nothing else assembles them by hand.

Times are ISO 8601 text in UTC with a `Z` (`store.iso`), as they always were on the wire.
"""

from __future__ import annotations

from typing import Any

import msgspec

from inbox.models import Channel, ConsentState, ConversationStatus, Direction, MediaItem, MessageStatus


class CustomerAuthor(msgspec.Struct, frozen=True, tag_field="type", tag="customer"):
    """An inbound message: the customer wrote it."""


class AutomaticAuthor(msgspec.Struct, frozen=True, tag_field="type", tag="automatic"):
    """The inbox's own answer (HELP, STOP, START), or a message nobody on the team sent."""


class StaffAuthor(msgspec.Struct, frozen=True, tag_field="type", tag="staff"):
    """A reply a staff member sent; `name` is their display name."""

    id: int
    name: str | None


Author = CustomerAuthor | AutomaticAuthor | StaffAuthor
CUSTOMER_AUTHOR, AUTOMATIC_AUTHOR = CustomerAuthor(), AutomaticAuthor()


class NamedStaff(msgspec.Struct, frozen=True):
    """A staff member named on an object: a conversation's owner, a note's author."""

    id: int
    name: str | None


class MessageObject(msgspec.Struct, kw_only=True):
    id: int
    conversation_id: int
    sid: str | None
    direction: Direction
    channel: Channel
    from_: str = msgspec.field(name="from")
    to: str
    body: str
    media: list[MediaItem]
    status: MessageStatus
    error_code: int | None
    error_message: str | None
    staff_id: int | None
    keyword: str | None  # inbound: opt_out | opt_in | help when the whole message was one
    probable_opt_out: bool  # inbound: reads like "please stop texting me"
    auto_reply: str | None  # outbound: the inbox's own answer to a keyword
    content_sid: str | None
    author: Author
    created_at: str | None
    updated_at: str | None
    send_at: str | None  # a scheduled reply: when it was asked to go out


class CustomerObject(msgspec.Struct, kw_only=True):
    id: int
    name: str | None  # the name the team gave, else the WhatsApp profile name
    phone: str
    whatsapp_profile_name: str | None
    notes: str
    time_zone: str | None  # IANA, from the number; None when unknown
    consent: dict[str, ConsentState]  # channel -> standing


class CustomerCard(CustomerObject, kw_only=True):
    """A customer with what the card shows beside the name."""

    first_contact_at: str | None
    last_contact_at: str | None
    message_count: int
    inbound_count: int


class ConversationObject(msgspec.Struct, kw_only=True):
    id: int
    status: ConversationStatus
    assignee: NamedStaff | None
    customer: CustomerObject
    unread_count: int | None  # the asking staff member's; null in live events
    last_message: MessageObject | None
    last_activity_at: str | None


class NoteObject(msgspec.Struct, kw_only=True):
    id: int
    conversation_id: int
    body: str
    author: NamedStaff | None
    created_at: str | None


class ConversationDetail(ConversationObject, kw_only=True):
    """A conversation with its whole thread and the team's notes, oldest first."""

    messages: list[MessageObject]
    notes: list[NoteObject]


class ConsentRecordObject(msgspec.Struct, kw_only=True):
    id: int
    customer_id: int
    channel: Channel
    action: str  # opt_out | opt_in
    source: str
    evidence: dict[str, Any]
    staff_id: int | None
    occurred_at: str | None
    created_at: str | None


class ConsentHistory(msgspec.Struct, kw_only=True):
    """A customer's consent records, oldest first, and the standing derived from them."""

    customer_id: int
    consent: dict[str, ConsentState]
    records: list[ConsentRecordObject]


class ConversationPage(msgspec.Struct, kw_only=True):
    """A page of conversations, newest activity first; `next_cursor` asks for the next one."""

    conversations: list[ConversationObject]
    next_cursor: str | None


class StartedConversation(msgspec.Struct, kw_only=True):
    """A message to a number as typed: the customer's conversation and the queued message."""

    conversation: ConversationObject
    message: MessageObject


def detail(summary: ConversationObject, messages: list[MessageObject], notes: list[NoteObject]) -> ConversationDetail:
    return ConversationDetail(**msgspec.structs.asdict(summary), messages=messages, notes=notes)


def card(customer: CustomerObject, **contact: Any) -> CustomerCard:
    return CustomerCard(**msgspec.structs.asdict(customer), **contact)
