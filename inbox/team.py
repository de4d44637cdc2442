"""Team workflow: open and closed, who owns a conversation, internal notes, the customer card.

    await update_conversation(db, bus, conversation_id, status=..., assignee_id=...)  -> conversation (or TeamRefused)
    await add_note(db, bus, conversation_id, staff_id, body)                          -> note
    await update_customer(db, bus, customer_id, name=..., notes=...)                  -> customer
    await customer_card(db, customer_id)                                              -> customer with contact figures

Each function owns its transaction: the change and its live event commit together
(`conversation.updated`, `note.created`, `customer.updated`), and the event is published after.
Any staff member may close, reopen, assign, write notes and edit a customer: these are the
everyday work of a shared inbox, not a manager's decisions.

The two automatic moves live where messages are stored: a customer's new message reopens a
closed conversation and keeps its owner (inbox.inbound), and a staff reply to a conversation
nobody owns makes the sender its owner (inbox.outbound).
"""

from __future__ import annotations

from msgspec import UNSET, UnsetType
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from inbox import bus as events_bus
from inbox import objects, store
from inbox.bus import Bus
from inbox.db import Database
from inbox.events import ConversationUpdated, CustomerUpdated, NoteCreated
from inbox.models import ConversationStatus, Customer, Message, Note, Staff
from inbox.refusals import Refused, Why

MAX_NOTE = 5000  # characters in one internal note
MAX_NAME = 200
MAX_CUSTOMER_NOTES = 5000
# A field not given is UNSET (msgspec's, as the API's bodies leave it); None means "nobody" for the owner.


class TeamRefused(Refused):
    """A change to a conversation, a note or a customer card that the inbox will not make."""


async def update_conversation(
    db: Database,
    bus: Bus,
    conversation_id: int,
    *,
    status: str | UnsetType = UNSET,
    assignee_id: int | UnsetType | None = UNSET,
) -> objects.ConversationObject:
    """Closes or reopens a conversation and/or gives it an owner (None: nobody)."""
    if status is UNSET and assignee_id is UNSET:
        raise TeamRefused(Why.INVALID, "nothing_to_change", "Give status, assignee_id or both.")
    if status is not UNSET and status not in tuple(ConversationStatus):
        raise TeamRefused(Why.INVALID, "invalid_status", "status must be open or closed.")
    if isinstance(assignee_id, int) and (type(assignee_id) is not int or assignee_id <= 0):
        raise TeamRefused(Why.INVALID, "unknown_staff", "assignee_id must be a staff member's id or null.")
    async with db.write() as session:
        found = await store.conversation_with_customer(session, conversation_id)
        if found is None:
            raise TeamRefused(Why.NOT_FOUND, "not_found", "There is no such conversation.")
        conversation, _customer = found
        if isinstance(assignee_id, int):
            staff = await session.get(Staff, assignee_id) if assignee_id <= store.MAX_ID else None
            if staff is None or staff.disabled:
                raise TeamRefused(
                    Why.INVALID, "unknown_staff", "There is no such staff member (or the account is disabled)."
                )
        changed = False
        if not isinstance(status, UnsetType) and conversation.status != status:
            conversation.status, changed = status, True
        if not isinstance(assignee_id, UnsetType) and conversation.assignee_id != assignee_id:
            conversation.assignee_id, changed = assignee_id, True
        await session.flush()
        summary = await store.conversation_summary(session, conversation_id)
        if summary is None:  # it was found above, in this transaction
            raise LookupError(f"conversation {conversation_id} vanished")
        if changed:
            events_bus.record(session, ConversationUpdated(conversation_id, summary))
        await events_bus.commit(session, bus)
    return summary


async def add_note(db: Database, bus: Bus, conversation_id: int, staff_id: int, body: str) -> objects.NoteObject:
    """An internal note in the thread. It is stored and shown to the team; nothing is sent."""
    if not body.strip():
        raise TeamRefused(Why.INVALID, "empty_body", "Write the note before saving it.")
    if len(body) > MAX_NOTE:
        raise TeamRefused(Why.INVALID, "body_too_long", f"A note may be at most {MAX_NOTE:,} characters.")
    if "\x00" in body:  # PostgreSQL text cannot hold it
        raise TeamRefused(Why.INVALID, "invalid_body", "A note cannot contain a NUL character.")
    async with db.write() as session:
        if not await store.conversation_exists(session, conversation_id):
            raise TeamRefused(Why.NOT_FOUND, "not_found", "There is no such conversation.")
        note = Note(conversation_id=conversation_id, staff_id=staff_id, body=body.strip())
        session.add(note)
        await session.flush()
        names = await store.staff_names(session, [staff_id])
        written = store.note_object(note, names.get(staff_id))
        events_bus.record(session, NoteCreated(conversation_id, written))
        await events_bus.commit(session, bus)
    return written


async def update_customer(
    db: Database,
    bus: Bus,
    customer_id: int,
    *,
    name: str | UnsetType | None = UNSET,
    notes: str | UnsetType | None = UNSET,
) -> objects.CustomerObject:
    """Sets the name a person typed (an empty one falls back to the WhatsApp profile name) and
    the team's notes about the customer (None clears either)."""
    if name is UNSET and notes is UNSET:
        raise TeamRefused(Why.INVALID, "nothing_to_change", "Give name, notes or both.")
    for field, value, limit in (("name", name, MAX_NAME), ("notes", notes, MAX_CUSTOMER_NOTES)):
        if not isinstance(value, str):
            continue
        if len(value) > limit:
            raise TeamRefused(Why.INVALID, f"invalid_{field}", f"{field} may be at most {limit:,} characters.")
        if "\x00" in value:  # PostgreSQL text cannot hold it
            raise TeamRefused(Why.INVALID, f"invalid_{field}", f"{field} cannot contain a NUL character.")
    async with db.write() as session:
        customer = await session.get(Customer, customer_id) if 0 < customer_id <= store.MAX_ID else None
        if customer is None:
            raise TeamRefused(Why.NOT_FOUND, "not_found", "There is no such customer.")
        if not isinstance(name, UnsetType):
            customer.name = (name or "").strip() or None
        if not isinstance(notes, UnsetType):
            customer.notes = (notes or "").strip() or None
        await session.flush()
        consent = (await store.consent_states(session, [customer.id]))[customer.id]
        updated = store.customer_object(customer, consent)
        conversation_id = await store.conversation_id_of(session, customer.id)
        events_bus.record(session, CustomerUpdated(conversation_id, updated))
        await events_bus.commit(session, bus)
    return updated


async def customer_card(db: Database, customer_id: int) -> objects.CustomerCard:
    """The customer with what the card shows beside the name: first and last contact, and how many
    messages their conversation holds (all, and from them). A customer has exactly one
    conversation, so a count of conversations would always say 1: the messages say more."""
    async with db.read() as session:
        card = await _card(session, customer_id) if customer_id <= store.MAX_ID else None
    if card is None:
        raise TeamRefused(Why.NOT_FOUND, "not_found", "There is no such customer.")
    return card


async def _card(session: AsyncSession, customer_id: int) -> objects.CustomerCard | None:
    customer = await session.get(Customer, customer_id)
    if customer is None:
        return None
    consent = (await store.consent_states(session, [customer.id]))[customer.id]
    found = store.customer_object(customer, consent)
    conversation_id = await store.conversation_id_of(session, customer.id)
    first = last = None
    total = inbound = 0
    if conversation_id is not None:
        row = (
            await session.execute(
                select(
                    func.count(Message.id),
                    func.count(Message.id).filter(Message.direction == "inbound"),
                    func.min(Message.created_at),
                    func.max(Message.created_at),
                ).where(Message.conversation_id == conversation_id)
            )
        ).one()
        total, inbound, first, last = row
    return objects.card(
        found,
        first_contact_at=store.iso(first),
        last_contact_at=store.iso(last),
        message_count=total,
        inbound_count=inbound,
    )
