"""The closed set of live event types: what `/ws` sends, one JSON text frame each.

Every frame is `{"id": <increasing integer>, "type": ..., "conversation_id": ..., "data": {...}}`.
Clients ignore types they do not know, so types may be added but never changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from inbox.objects import ConsentRecordObject, ConversationObject, CustomerObject, MessageObject, NoteObject


@dataclass(frozen=True)
class LiveEvent:
    type: ClassVar[str]
    conversation_id: int | None

    def data(self) -> dict[str, Any]:
        raise NotImplementedError


@dataclass(frozen=True)
class MessageCreated(LiveEvent):
    """A message joined a thread (inbound from a customer, or a reply queued by staff).

    data: `{"message": message}`."""

    type: ClassVar[str] = "message.created"
    message: MessageObject

    def data(self) -> dict[str, Any]:
        return {"message": self.message}


@dataclass(frozen=True)
class MessageUpdated(LiveEvent):
    """A message changed: its delivery status moved forward, or it failed with an error code.

    data: `{"message": message}`."""

    type: ClassVar[str] = "message.updated"
    message: MessageObject

    def data(self) -> dict[str, Any]:
        return {"message": self.message}


@dataclass(frozen=True)
class ConversationUpdated(LiveEvent):
    """A conversation's summary changed: new last message, status, customer name, unread count.

    data: `{"conversation": conversation}` without its messages. Unread counts belong to each
    staff member, so here `unread_count` is null: a client keeps its own from the inbound
    `message.created` events it sees and resets it when it marks the thread read."""

    type: ClassVar[str] = "conversation.updated"
    conversation: ConversationObject

    def data(self) -> dict[str, Any]:
        return {"conversation": self.conversation}


@dataclass(frozen=True)
class ConsentChanged(LiveEvent):
    """A customer opted out or in on a channel.

    data: `{"customer": customer, "record": consent record}`."""

    type: ClassVar[str] = "consent.changed"
    customer: CustomerObject
    record: ConsentRecordObject

    def data(self) -> dict[str, Any]:
        return {"customer": self.customer, "record": self.record}


@dataclass(frozen=True)
class NoteCreated(LiveEvent):
    """A staff member wrote an internal note in a thread (only the team sees it).

    data: `{"note": note}`."""

    type: ClassVar[str] = "note.created"
    note: NoteObject

    def data(self) -> dict[str, Any]:
        return {"note": self.note}


@dataclass(frozen=True)
class CustomerUpdated(LiveEvent):
    """A customer's name or the team's notes about them changed.

    data: `{"customer": customer}`."""

    type: ClassVar[str] = "customer.updated"
    customer: CustomerObject

    def data(self) -> dict[str, Any]:
        return {"customer": self.customer}


EVENT_TYPES: tuple[type[LiveEvent], ...] = (
    MessageCreated,
    MessageUpdated,
    ConversationUpdated,
    ConsentChanged,
    NoteCreated,
    CustomerUpdated,
)
