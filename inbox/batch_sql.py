"""The multi-row statements of the inbound batch and of every commit's events, written out for
the database driver.

    await upsert_customers(connection, {phone: whatsapp_name}, now) -> [CustomerRow]
    await ensure_conversations(connection, [customer_id], now) -> [ConversationRow]
    await insert_messages(connection, [InboundMessage]) -> [StoredMessage]  (stored SIDs are skipped)
    await touch_conversations(connection, [ConversationTouch])
    await insert_events(connection, [(type, conversation_id, data_json)], now) -> [id]
    await known_sids(connection, [sid]) -> {sid}
    await latest_consent(connection, [customer_id]) -> [(customer_id, channel, action)]

This is the webhook's hottest code, and here SQLAlchemy's per-row work (building each row's
parameters, running each value through its type) cost three times what SQLite did: a batch
of 12 took 4.2 ms through Core and 1.0 ms as the same statements on the driver. So each
statement is plain SQL, one multi-row statement per call, its VALUES list rendered for the
batch's size (and kept), executed on the driver inside the caller's transaction (`_execute`: SQLite's writer connection
is called directly, PostgreSQL through `exec_driver_sql`).

The statements are derived from the models' tables (`inbox.table_sql`): each row type below is a
NamedTuple whose fields are named as its table's columns, and the INSERTs write those columns
plus the ones left to their defaults, each value in the form the ORM stores. A column added to
a model (and its migration) needs nothing here unless the inbound batch must set it.
tests/test_batch_sql.py holds the statements' text to SQLAlchemy's own rendering of them, and
rows written here equal to rows written through the models, on both databases.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import datetime
from operator import itemgetter
from typing import Any, NamedTuple

from sqlalchemy.ext.asyncio import AsyncConnection

from inbox.models import (
    Conversation,
    ConversationStatus,
    Customer,
    Direction,
    Event,
    MediaItem,
    Message,
    MessageStatus,
)
from inbox.sqlite_inline import InlineConnection
from inbox.table_sql import Dialect, DriverRow, MultiRowInsert, RowReader, RowUpdate, dialect_named

# ---- the rows: each field is the column of that name -----------------------------------------


class CustomerRow(NamedTuple):
    """A customer as the batch has it: the fields store.customer_object reads."""

    id: int
    phone: str
    name: str | None
    whatsapp_profile_name: str | None
    notes: str | None


class ConversationRow(NamedTuple):
    id: int
    customer_id: int
    status: str
    last_message_id: int | None
    last_activity_at: datetime
    assignee_id: int | None


class InboundMessage(NamedTuple):
    """One inbound message to insert (its id comes from the database; the columns it leaves
    out get their defaults, as through the ORM)."""

    conversation_id: int
    sid: str
    channel: str
    from_addr: str
    to_addr: str
    body: str
    media: list[MediaItem]
    keyword: str | None
    probable_opt_out: bool
    created_at: datetime
    updated_at: datetime
    direction: str = Direction.INBOUND
    status: str = MessageStatus.RECEIVED


class StoredMessage(NamedTuple):
    """An inbound message as stored: its id, then InboundMessage's fields (the same names, in
    the same order: checked below), so `StoredMessage(id, *message)`. It has what
    store.message_object reads of a Message; the columns an inbound message leaves empty are None."""

    id: int
    conversation_id: int
    sid: str
    channel: str
    from_addr: str
    to_addr: str
    body: str
    media: list[MediaItem]
    keyword: str | None
    probable_opt_out: bool
    created_at: datetime
    updated_at: datetime
    direction: str
    status: str

    @property
    def error_code(self) -> None:
        return None

    @property
    def error_message(self) -> None:
        return None

    @property
    def staff_id(self) -> None:
        return None

    @property
    def auto_reply(self) -> None:
        return None

    @property
    def content_sid(self) -> None:
        return None

    @property
    def send_at(self) -> None:
        return None


if StoredMessage._fields != ("id", *InboundMessage._fields):
    raise TypeError("StoredMessage's fields must be id and then InboundMessage's, in its order")


class ConversationTouch(NamedTuple):
    """A conversation's new latest message (and its time): it opens again, too."""

    id: int
    last_message_id: int | None
    last_activity_at: datetime
    status: str = ConversationStatus.OPEN


# The events' rows are the bus's (type, conversation id, data as JSON) tuples.
EVENT_FIELDS = ("type", "conversation_id", "data")

# ---- the statements -------------------------------------------------------------------------

_KNOWN_SIDS = "SELECT sid FROM messages WHERE sid IN ({list})"

_LATEST_CONSENT = (
    "SELECT customer_id, channel, action FROM consent_records WHERE id IN (SELECT max(id) FROM consent_records "
    "WHERE customer_id IN ({list}) GROUP BY customer_id, channel)"
)

CUSTOMERS = RowReader(Customer, CustomerRow._fields, CustomerRow._make)
UPSERT_CUSTOMERS = MultiRowInsert(
    Customer,
    ("phone", "whatsapp_profile_name"),  # the rows: upsert_customers' (phone, WhatsApp name) pairs
    # a new WhatsApp name replaces the old one, None keeps it
    "ON CONFLICT (phone) DO UPDATE SET whatsapp_profile_name = "
    "coalesce(excluded.whatsapp_profile_name, customers.whatsapp_profile_name) " + CUSTOMERS.returning,
)

CONVERSATIONS = RowReader(Conversation, ConversationRow._fields, ConversationRow._make)
ENSURE_CONVERSATIONS = MultiRowInsert(
    Conversation,
    ("customer_id",),
    # DO UPDATE (of nothing), so that RETURNING has the conversations that existed too
    "ON CONFLICT (customer_id) DO UPDATE SET customer_id = excluded.customer_id " + CONVERSATIONS.returning,
)

INSERT_MESSAGES = MultiRowInsert(Message, InboundMessage._fields, "ON CONFLICT (sid) DO NOTHING RETURNING id, sid")

TOUCH_CONVERSATIONS = RowUpdate(Conversation, ConversationTouch._fields)

INSERT_EVENTS = MultiRowInsert(Event, EVENT_FIELDS, "RETURNING id")

MAX_ROWS = 1000  # per statement: SQLite and PostgreSQL both take up to 32,766 parameters


def _dialect(connection: AsyncConnection) -> Dialect:
    return dialect_named(connection.dialect.name)


@functools.lru_cache(maxsize=1024)
def _list_sql(template: str, dialect: Dialect, items: int) -> str:
    """`template` with its `{list}` replaced by `items` placeholders."""
    return template.replace("{list}", ", ".join(dialect.placeholder(n + 1) for n in range(items)))


async def _execute(
    connection: AsyncConnection, sql: str, parameters: Sequence[Any], *, many: bool = False
) -> Sequence[DriverRow]:
    """`sql` inside the caller's transaction: on SQLite's writer connection straight on the driver
    (inbox.sqlite_inline), elsewhere through exec_driver_sql. The rows are the driver's either way."""
    # The connection the transaction already holds, read without a round trip through the
    # greenlet bridge that get_raw_connection() makes: this runs for every statement of a batch.
    begun = connection.sync_connection
    driver = begun.connection.driver_connection if begun is not None else None
    if isinstance(driver, InlineConnection):
        return driver.run_now(sql, parameters, many=many)
    result = await connection.exec_driver_sql(sql, parameters)
    return [] if many else result.all()


async def _insert(
    connection: AsyncConnection, statement: MultiRowInsert, rows: Sequence[tuple[Any, ...]], now: datetime
) -> list[DriverRow]:
    """One multi-row statement per MAX_ROWS of `rows`, in order; the rows they RETURN."""
    dialect = _dialect(connection)
    values, width = statement.parameters(dialect, rows, now), statement.width
    returned: list[DriverRow] = []
    for start in range(0, len(values), MAX_ROWS * width):
        chunk = tuple(values[start : start + MAX_ROWS * width])
        returned += await _execute(connection, statement.sql(dialect, len(chunk) // width), chunk)
    return returned


async def known_sids(connection: AsyncConnection, sids: list[str]) -> set[str]:
    """Which of these Twilio SIDs are stored already."""
    sql = _list_sql(_KNOWN_SIDS, _dialect(connection), len(sids))
    return {sid for (sid,) in await _execute(connection, sql, tuple(sids))}


async def latest_consent(connection: AsyncConnection, customer_ids: list[int]) -> list[tuple[int, str, str]]:
    """(customer id, channel, action) of each customer's latest consent record per channel."""
    sql = _list_sql(_LATEST_CONSENT, _dialect(connection), len(customer_ids))
    return [tuple(row) for row in await _execute(connection, sql, tuple(customer_ids))]


async def upsert_customers(
    connection: AsyncConnection, profiles: dict[str, str | None], now: datetime
) -> list[CustomerRow]:
    """The customers with these numbers ({phone: WhatsApp name or None}), created on first
    contact; safe under concurrent copies on other processes. Numbers in sorted order, so
    that two batches never lock the same rows in opposite orders."""
    returned = await _insert(connection, UPSERT_CUSTOMERS, sorted(profiles.items()), now)
    return CUSTOMERS.read(_dialect(connection), returned)


async def ensure_conversations(
    connection: AsyncConnection, customer_ids: list[int], now: datetime
) -> list[ConversationRow]:
    """Each customer's one conversation, across SMS and WhatsApp, created on first contact."""
    rows = [(customer_id,) for customer_id in sorted(set(customer_ids))]
    return CONVERSATIONS.read(_dialect(connection), await _insert(connection, ENSURE_CONVERSATIONS, rows, now))


_by_id = itemgetter(0)


async def insert_messages(
    connection: AsyncConnection, messages: list[InboundMessage], now: datetime
) -> list[StoredMessage]:
    """The messages inserted, in id order; those whose SID is stored already are skipped."""
    returned = await _insert(connection, INSERT_MESSAGES, messages, now)
    ids = {sid: id for id, sid in returned}
    return sorted((StoredMessage(ids[m.sid], *m) for m in messages if m.sid in ids), key=_by_id)


async def touch_conversations(connection: AsyncConnection, touches: list[ConversationTouch]) -> None:
    """Each conversation's new latest message and its time; open again, too."""
    if not touches:
        return
    dialect = _dialect(connection)
    await _execute(
        connection, TOUCH_CONVERSATIONS.sql(dialect), TOUCH_CONVERSATIONS.parameters(dialect, touches), many=True
    )


async def insert_events(
    connection: AsyncConnection, events: list[tuple[str, int | None, str]], now: datetime
) -> list[int]:
    """[(type, conversation id, data as JSON)] -> their ids, in the order given.

    Ids are allocated in VALUES order while one transaction alone writes events (the caller
    holds the lock for it), so the sorted ids match the rows."""
    return sorted(id for (id,) in await _insert(connection, INSERT_EVENTS, events, now))
