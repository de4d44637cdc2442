"""The SQL of conversations, customers, messages and events: one function per question or command.

Functions take an open session and never commit: the caller owns the transaction (see bus.commit).
The `*_object` functions build the objects the API and the live events carry (inbox.objects).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from sqlalchemy import ColumnElement, ScalarSelect, Select, and_, case, exists, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, InstrumentedAttribute, aliased

from inbox import batch_sql, search
from inbox.accounts import display_name
from inbox.clock import utcnow
from inbox.models import (
    Channel,
    ConsentAction,
    ConsentState,
    Conversation,
    ConversationRead,
    ConversationStatus,
    Customer,
    Direction,
    Event,
    MediaItem,
    Message,
    MessageStatus,
    Note,
    Staff,
)
from inbox.objects import (
    AUTOMATIC_AUTHOR,
    CUSTOMER_AUTHOR,
    Author,
    ConversationDetail,
    ConversationObject,
    CustomerObject,
    MessageObject,
    NamedStaff,
    NoteObject,
    StaffAuthor,
    detail,
)
from inbox.phones import time_zone_of

PAGE_SIZE = 50
_Select = TypeVar("_Select", bound=Select[*tuple[Any, ...]])


def _insert(session: AsyncSession, model: type[DeclarativeBase]) -> postgresql.Insert | sqlite.Insert:
    """INSERT with the dialect's ON CONFLICT clauses."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(model)
    return sqlite.insert(model)


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


# ---- shapes -------------------------------------------------------------------------------
# The `*_object` functions read these fields, which the models have and so do the inbound batch's
# rows (inbox.batch_sql's NamedTuples, inbox.inbound's threads): the protocols say which.


class MessageFields(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def conversation_id(self) -> int: ...
    @property
    def sid(self) -> str | None: ...
    @property
    def direction(self) -> str: ...
    @property
    def channel(self) -> str: ...
    @property
    def from_addr(self) -> str: ...
    @property
    def to_addr(self) -> str: ...
    @property
    def body(self) -> str: ...
    @property
    def media(self) -> list[MediaItem]: ...
    @property
    def status(self) -> str: ...
    @property
    def error_code(self) -> int | None: ...
    @property
    def error_message(self) -> str | None: ...
    @property
    def staff_id(self) -> int | None: ...
    @property
    def keyword(self) -> str | None: ...
    @property
    def probable_opt_out(self) -> bool: ...
    @property
    def auto_reply(self) -> str | None: ...
    @property
    def content_sid(self) -> str | None: ...
    @property
    def send_at(self) -> datetime | None: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def updated_at(self) -> datetime: ...


class ConversationFields(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def customer_id(self) -> int: ...
    @property
    def status(self) -> str: ...
    @property
    def assignee_id(self) -> int | None: ...
    @property
    def last_message_id(self) -> int | None: ...
    @property
    def last_activity_at(self) -> datetime: ...


class CustomerFields(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def phone(self) -> str: ...
    @property
    def name(self) -> str | None: ...
    @property
    def whatsapp_profile_name(self) -> str | None: ...
    @property
    def notes(self) -> str | None: ...


# Display names given to rows for the objects (author, assignee): not columns, so the models do not declare them.
_AUTHOR_NAME, _ASSIGNEE_NAME = "author_name", "assignee_name"


async def learn_authors(session: AsyncSession, messages: Iterable[MessageFields | None]) -> None:
    """Gives each outbound staff message its sender's name (`message.author_name`) for `author`.

    One query per call for the names not seen yet in this session; nothing is kept between
    sessions, so each database (and a renamed account) answers for itself."""
    authored = [(m, m.staff_id) for m in messages if m is not None and m.staff_id is not None]
    if not authored:
        return
    known = await staff_names(session, [staff_id for _, staff_id in authored])
    for message, staff_id in authored:
        setattr(message, _AUTHOR_NAME, known.get(staff_id))


async def staff_names(session: AsyncSession, staff_ids: Iterable[int | None]) -> dict[int, str]:
    """Each staff member's display name (their name, else the part of their email before the @),
    from the same per-session cache as learn_authors."""
    known: dict[int, str] = session.info.setdefault("staff_names", {})
    wanted = {i for i in staff_ids if i is not None} - known.keys()
    if wanted:
        for staff_id, name, email in await session.execute(
            select(Staff.id, Staff.name, Staff.email).where(Staff.id.in_(wanted))
        ):
            known[staff_id] = display_name(name, email)
    return known


async def learn_assignees(session: AsyncSession, conversations: Iterable[ConversationFields]) -> None:
    """Gives each conversation its owner's name (`conversation.assignee_name`) for `assignee`."""
    owned = [(c, c.assignee_id) for c in conversations if c.assignee_id is not None]
    if not owned:
        return
    known = await staff_names(session, [assignee_id for _, assignee_id in owned])
    for conversation, assignee_id in owned:
        setattr(conversation, _ASSIGNEE_NAME, known.get(assignee_id))


def assignee_of(conversation: ConversationFields) -> NamedStaff | None:
    if conversation.assignee_id is None:
        return None
    return NamedStaff(conversation.assignee_id, getattr(conversation, _ASSIGNEE_NAME, None))


def author_of(message: MessageFields) -> Author:
    """Who wrote it (docs/API.md, `author`): the customer, a staff member, or the inbox itself."""
    if message.direction == Direction.INBOUND:
        return CUSTOMER_AUTHOR
    if message.staff_id is None:  # the inbox's own answers (HELP/STOP/START) and anything without a sender
        return AUTOMATIC_AUTHOR
    return StaffAuthor(message.staff_id, getattr(message, _AUTHOR_NAME, None))


# Stored text to its enum member by a dict lookup: calling the enum class costs more than the rest
# of a field, and every inbound webhook builds these objects.
_DIRECTION = {member.value: member for member in Direction}
_CHANNEL = {member.value: member for member in Channel}
_MESSAGE_STATUS = {member.value: member for member in MessageStatus}
_CONVERSATION_STATUS = {member.value: member for member in ConversationStatus}


def message_object(message: MessageFields) -> MessageObject:
    return MessageObject(
        id=message.id,
        conversation_id=message.conversation_id,
        sid=message.sid,
        direction=_DIRECTION[message.direction],
        channel=_CHANNEL[message.channel],
        from_=message.from_addr,
        to=message.to_addr,
        body=message.body,
        media=message.media or [],
        status=_MESSAGE_STATUS[message.status],
        error_code=message.error_code,
        error_message=message.error_message,
        staff_id=message.staff_id,
        keyword=message.keyword,
        probable_opt_out=bool(message.probable_opt_out),
        auto_reply=message.auto_reply,
        content_sid=message.content_sid,
        author=author_of(message),
        created_at=iso(message.created_at),
        updated_at=iso(message.updated_at),
        send_at=iso(message.send_at),
    )


_NO_CONSENT = {"sms": ConsentState.UNKNOWN, "whatsapp": ConsentState.UNKNOWN}


def customer_object(customer: CustomerFields, consent: Mapping[str, ConsentState] | None = None) -> CustomerObject:
    return CustomerObject(
        id=customer.id,
        name=customer.name or customer.whatsapp_profile_name,
        phone=customer.phone,
        whatsapp_profile_name=customer.whatsapp_profile_name,
        notes=customer.notes or "",
        time_zone=time_zone_of(customer.phone),
        consent=dict(consent or _NO_CONSENT),
    )


def note_object(note: Note, author_name: str | None) -> NoteObject:
    return NoteObject(
        id=note.id,
        conversation_id=note.conversation_id,
        body=note.body,
        author=None if note.staff_id is None else NamedStaff(note.staff_id, author_name),
        created_at=iso(note.created_at),
    )


def conversation_object(
    conversation: ConversationFields,
    customer: CustomerFields,
    consent: Mapping[str, ConsentState] | None,
    last_message: MessageFields | None,
    unread_count: int | None,
    *,
    last_message_object: MessageObject | None = None,  # message_object(last_message), when the caller has it
) -> ConversationObject:
    if last_message_object is None and last_message is not None:
        last_message_object = message_object(last_message)
    return ConversationObject(
        id=conversation.id,
        status=_CONVERSATION_STATUS[conversation.status],
        assignee=assignee_of(conversation),
        customer=customer_object(customer, consent),
        unread_count=unread_count,
        last_message=last_message_object,
        last_activity_at=iso(conversation.last_activity_at),
    )


# ---- customers and conversations ----------------------------------------------------------


async def upsert_customer(session: AsyncSession, phone: str, profile_name: str | None) -> Customer:
    """The customer with this number, created on first contact (the batch form: inbox.batch_sql)."""
    row = (await batch_sql.upsert_customers(await session.connection(), {phone: profile_name}, utcnow()))[0]
    return _written(await session.get(Customer, row.id))


async def ensure_conversation(session: AsyncSession, customer_id: int) -> Conversation:
    """The customer's one conversation, across SMS and WhatsApp, created on first contact."""
    row = (await batch_sql.ensure_conversations(await session.connection(), [customer_id], utcnow()))[0]
    return _written(await session.get(Conversation, row.id))


_Row = TypeVar("_Row")


def _written(row: _Row | None) -> _Row:
    """A row this transaction has just written (session.get answers None only if it is gone)."""
    if row is None:
        raise LookupError("a row written by this transaction is missing from it")
    return row


async def consent_states(session: AsyncSession, customer_ids: list[int]) -> dict[int, dict[str, ConsentState]]:
    """Each customer's current consent per channel: the latest ledger record wins."""
    states = {cid: {"sms": ConsentState.UNKNOWN, "whatsapp": ConsentState.UNKNOWN} for cid in customer_ids}
    if not customer_ids:
        return states
    for customer_id, channel, action in await batch_sql.latest_consent(await session.connection(), list(states)):
        states[customer_id][channel] = (
            ConsentState.OPTED_OUT if action == ConsentAction.OPT_OUT else ConsentState.OPTED_IN
        )
    return states


# ---- messages ---------------------------------------------------------------------------


async def sid_exists(session: AsyncSession, sid: str) -> bool:
    return bool(await session.scalar(select(exists().where(Message.sid == sid))))


async def insert_message(
    session: AsyncSession, values: dict[str, Any], conflict: tuple[str, ...] | None = None
) -> Message | None:
    """Insert a message; None when it is already stored: its Twilio SID (a redelivery), or the
    `conflict` columns (an Idempotency-Key)."""
    now = utcnow()
    values = {"created_at": now, "updated_at": now, **values}
    statement = _insert(session, Message).values(**values)
    if conflict:
        statement = statement.on_conflict_do_nothing(index_elements=list(conflict))
    elif values.get("sid"):
        statement = statement.on_conflict_do_nothing(index_elements=["sid"])
    return (await session.execute(statement.returning(Message))).scalar()


def is_latest(conversation: ConversationFields, message: MessageFields) -> bool:
    """Whether `message` becomes the conversation's latest activity: a message recovered late,
    with an older time, does not push newer activity aside."""
    return conversation.last_message_id is None or message.created_at >= conversation.last_activity_at


async def touch_conversation(session: AsyncSession, conversation: Conversation, message: Message) -> None:
    """A new message makes this the conversation's latest activity (see is_latest) and reopens it."""
    if is_latest(conversation, message):
        conversation.last_message_id = message.id
        conversation.last_activity_at = message.created_at
    conversation.status = ConversationStatus.OPEN


# ---- reads for the API ------------------------------------------------------------------


def _unread_count() -> ScalarSelect[int]:
    """Inbound messages after the staff member's read mark; the outer query joins the mark."""
    unread = aliased(Message)  # the outer query joins `messages` for the last message already
    return (
        select(func.count(unread.id))
        .where(
            unread.conversation_id == Conversation.id,
            unread.direction == Direction.INBOUND,
            unread.id > func.coalesce(ConversationRead.last_read_message_id, 0),
        )
        .correlate(Conversation, ConversationRead)
        .scalar_subquery()
    )


def _join_read_mark(statement: _Select, staff_id: int) -> _Select:
    return statement.outerjoin(
        ConversationRead,
        and_(ConversationRead.conversation_id == Conversation.id, ConversationRead.staff_id == staff_id),
    )


def encode_cursor(moment: datetime, conversation_id: int) -> str:
    return base64.urlsafe_b64encode(f"{moment.isoformat()}|{conversation_id}".encode()).decode()


MAX_CURSOR = 200
MAX_ID = 2**63 - 1  # ids are 64-bit integers: anything larger names nothing


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """Raises ValueError on anything that is not a cursor this module made."""
    if len(cursor) > MAX_CURSOR:
        raise ValueError("not a cursor")
    try:
        moment_text, id_text = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        moment, conversation_id = datetime.fromisoformat(moment_text), int(id_text)
        sane = (
            moment.tzinfo is not None and 0 < conversation_id <= MAX_ID and 1970 <= moment.astimezone(UTC).year < 9999
        )
    except Exception as exc:
        raise ValueError("not a cursor") from exc
    if not sane:
        raise ValueError("not a cursor")
    return moment, conversation_id


ANY_ASSIGNEE = object()  # list_conversations: whoever owns it, or nobody


async def view_counts(session: AsyncSession, staff_id: int) -> dict[str, int]:
    """How many conversations each view of the list holds for this staff member:
    `mine` and `unassigned` (open ones), `open` (all open), `closed`."""
    rows = await session.execute(
        select(Conversation.status, Conversation.assignee_id, func.count()).group_by(
            Conversation.status, Conversation.assignee_id
        )
    )
    counts = {"mine": 0, "unassigned": 0, "open": 0, "closed": 0}
    for status, assignee_id, count in rows:
        if status == ConversationStatus.CLOSED:
            counts["closed"] += count
            continue
        counts["open"] += count
        if assignee_id is None:
            counts["unassigned"] += count
        elif assignee_id == staff_id:
            counts["mine"] += count
    return counts


async def list_conversations(
    session: AsyncSession,
    staff_id: int,
    *,
    status: str = "open",
    query: str | None = None,
    cursor: str | None = None,
    limit: int = PAGE_SIZE,
    country: str = "US",
    assignee: int | object | None = ANY_ASSIGNEE,
) -> tuple[list[ConversationObject], str | None]:
    """Conversations, newest activity first, with customer, last message and unread count;
    `assignee`: a staff id, None (nobody owns it), or ANY_ASSIGNEE."""
    statement = (
        _join_read_mark(select(Conversation, Customer, _unread_count().label("unread"), Message), staff_id)
        .join(Customer, Customer.id == Conversation.customer_id)
        .outerjoin(Message, Message.id == Conversation.last_message_id)
        .order_by(Conversation.last_activity_at.desc(), Conversation.id.desc())
        .limit(limit + 1)
    )
    if status in ("open", "closed"):
        statement = statement.where(Conversation.status == status)
    if assignee is None:
        statement = statement.where(Conversation.assignee_id.is_(None))
    elif assignee is not ANY_ASSIGNEE:
        statement = statement.where(Conversation.assignee_id == assignee)
    if query and (matching := await search.conversations_matching(session, query, country)) is not None:
        statement = statement.where(matching)
    if cursor:
        moment, conversation_id = decode_cursor(cursor)
        statement = statement.where(
            or_(
                Conversation.last_activity_at < moment,
                and_(Conversation.last_activity_at == moment, Conversation.id < conversation_id),
            )
        )
    rows = (await session.execute(statement)).all()
    await learn_authors(session, [message for *_, message in rows])
    await learn_assignees(session, [conversation for conversation, *_ in rows])
    more = len(rows) > limit
    rows = rows[:limit]
    consent = await consent_states(session, [customer.id for _, customer, _, _ in rows])
    items = [
        conversation_object(conversation, customer, consent[customer.id], message, unread)
        for conversation, customer, unread, message in rows
    ]
    next_cursor = None
    if more and rows:
        tail = rows[-1][0]
        next_cursor = encode_cursor(tail.last_activity_at, tail.id)
    return items, next_cursor


async def conversation_summary(
    session: AsyncSession, conversation_id: int, staff_id: int | None = None
) -> ConversationObject | None:
    """One conversation without its messages; unread_count only when a staff member asks."""
    found = await conversation_with_customer(session, conversation_id)
    if found is None:
        return None
    conversation, customer = found
    last = await session.get(Message, conversation.last_message_id) if conversation.last_message_id else None
    if last is not None:
        await learn_authors(session, [last])
    await learn_assignees(session, [conversation])
    unread = None
    if staff_id is not None:
        unread = await session.scalar(
            _join_read_mark(select(_unread_count()).select_from(Conversation), staff_id).where(
                Conversation.id == conversation_id
            )
        )
    consent = await consent_states(session, [customer.id])
    return conversation_object(conversation, customer, consent[customer.id], last, unread)


def thread_order() -> tuple[ColumnElement[Any], InstrumentedAttribute[int]]:
    """The order a thread reads in: each message at the time it entered the conversation (arrived,
    or was queued to go out; a scheduled reply's created_at becomes the moment it was released),
    and a reply still waiting at its send time, below everything that comes before then. Not the
    id: a customer who writes while a reply waits must read above it, then and afterwards."""
    placed_at = case((Message.status == MessageStatus.SCHEDULED, Message.send_at), else_=Message.created_at)
    return placed_at, Message.id


async def get_conversation(session: AsyncSession, conversation_id: int, staff_id: int) -> ConversationDetail | None:
    summary = await conversation_summary(session, conversation_id, staff_id)
    if summary is None:
        return None
    messages = list(
        (
            await session.execute(
                select(Message).where(Message.conversation_id == conversation_id).order_by(*thread_order())
            )
        ).scalars()
    )
    await learn_authors(session, messages)
    return detail(summary, [message_object(m) for m in messages], await notes_of(session, conversation_id))


async def notes_of(session: AsyncSession, conversation_id: int) -> list[NoteObject]:
    """The conversation's internal notes, oldest first."""
    notes = list(
        (await session.execute(select(Note).where(Note.conversation_id == conversation_id).order_by(Note.id))).scalars()
    )
    names = await staff_names(session, [n.staff_id for n in notes])
    return [note_object(n, None if n.staff_id is None else names.get(n.staff_id)) for n in notes]


async def mark_read(session: AsyncSession, conversation_id: int, staff_id: int) -> int:
    """Marks everything up to the newest message read for this staff member; returns that id."""
    newest = (
        await session.scalar(
            select(func.coalesce(func.max(Message.id), 0)).where(Message.conversation_id == conversation_id)
        )
    ) or 0
    statement = _insert(session, ConversationRead).values(
        conversation_id=conversation_id, staff_id=staff_id, last_read_message_id=newest
    )
    statement = statement.on_conflict_do_update(
        index_elements=["conversation_id", "staff_id"], set_={"last_read_message_id": newest}
    )
    await session.execute(statement)
    return newest


async def mark_unread(session: AsyncSession, conversation_id: int, staff_id: int) -> int:
    """Marks the customer's latest message unread again for this staff member (the read mark
    moves to just before it); returns the unread count that leaves (0 when they never wrote)."""
    last_inbound = await session.scalar(
        select(func.max(Message.id)).where(
            Message.conversation_id == conversation_id, Message.direction == Direction.INBOUND
        )
    )
    if last_inbound is None:
        return 0
    mark = last_inbound - 1
    current = await session.scalar(
        select(ConversationRead.last_read_message_id).where(
            ConversationRead.conversation_id == conversation_id, ConversationRead.staff_id == staff_id
        )
    )
    if current is None or current > mark:
        statement = _insert(session, ConversationRead).values(
            conversation_id=conversation_id, staff_id=staff_id, last_read_message_id=mark
        )
        statement = statement.on_conflict_do_update(
            index_elements=["conversation_id", "staff_id"], set_={"last_read_message_id": mark}
        )
        await session.execute(statement)
    unread = await session.scalar(
        _join_read_mark(select(_unread_count()).select_from(Conversation), staff_id).where(
            Conversation.id == conversation_id
        )
    )
    return unread or 0


# ---- events -----------------------------------------------------------------------------


async def events_after(session: AsyncSession, after: int, limit: int = 500) -> list[tuple[int, str, int | None, str]]:
    rows = await session.execute(
        select(Event.id, Event.type, Event.conversation_id, Event.data)
        .where(Event.id > after)
        .order_by(Event.id)
        .limit(limit)
    )
    return [(event_id, kind, conversation_id, data) for event_id, kind, conversation_id, data in rows]


async def latest_event_id(session: AsyncSession) -> int:
    return (await session.scalar(select(func.coalesce(func.max(Event.id), 0)))) or 0


async def conversation_exists(session: AsyncSession, conversation_id: int) -> bool:
    return bool(await session.scalar(select(exists().where(Conversation.id == conversation_id))))


async def conversation_id_of(session: AsyncSession, customer_id: int) -> int | None:
    return await session.scalar(select(Conversation.id).where(Conversation.customer_id == customer_id))


async def last_inbound(session: AsyncSession, conversation_id: int, channel: str | None = None) -> Message | None:
    """The customer's latest message (on one channel, if given): its `to` is the sticky sender."""
    statement = select(Message).where(
        Message.conversation_id == conversation_id, Message.direction == Direction.INBOUND
    )
    if channel:
        statement = statement.where(Message.channel == channel)
    return (await session.execute(statement.order_by(Message.id.desc()).limit(1))).scalar_one_or_none()


async def message_by_sid(session: AsyncSession, sid: str) -> Message | None:
    return (await session.execute(select(Message).where(Message.sid == sid))).scalar_one_or_none()


async def conversation_with_customer(
    session: AsyncSession, conversation_id: int
) -> tuple[Conversation, Customer] | None:
    row = (
        await session.execute(
            select(Conversation, Customer)
            .join(Customer, Customer.id == Conversation.customer_id)
            .where(Conversation.id == conversation_id)
        )
    ).first()
    return (row[0], row[1]) if row else None
