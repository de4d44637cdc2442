"""The conversation history as CSV, JSON or NDJSON, streamed from one consistent snapshot.

    query = parse_query(format="csv", since="2024-05-01", customer="+14155550123", ...)
    query = await resolve_staff(db, query)                 # `staff` filter: email or id -> id
    audit_id = await start_audit(db, query, staff_id=..., actor=...)
    async for chunk in stream(db, query, audit_id=audit_id):   # bytes, one chunk per batch
        ...

`GET /api/export` (inbox/web/exports.py) and `inbox export` (inbox/export_cli.py) both run
exactly this, so the same data gives the same bytes through either door. Bad input raises
ExportInputError, whose message is one sentence for a person (422 / exit 2).

Columns, in this order, in every format:

    message_id, sid, conversation_id, customer_name, customer_phone, channel, direction, from,
    to, sent_by (the staff member's email; empty for inbound and automatic replies), body,
    media_urls (space-separated in CSV, a list in JSON), status, error_code, created_at,
    updated_at (ISO 8601 UTC with Z, as store.iso writes them), record_type ("message")

ordered by message id. JSON is one array with one message per line; NDJSON one message per
line. Absent values are empty cells in CSV and null in JSON.

Internal notes follow the messages, ordered by note id, as their own record type: in JSON and
NDJSON `{"record_type": "note", "note_id", "conversation_id", "customer_name", "customer_phone",
"sent_by" (the author's email), "body", "created_at"}`; in CSV a row with record_type `note`,
those cells filled and the message's own cells empty. A channel or direction filter leaves notes
out (they have neither); `staff` keeps the notes that staff member wrote.

Filters: `since` is inclusive; `until` includes what it names: a date means the whole of that
day (UTC), a date-time that instant. Naive values are UTC. An unknown customer gives an empty
export (customers come and go); an unknown staff member is an input error (a typo, surely).

Snapshot. An export is one snapshot of the history taken when it starts: it reads max(message
id) first and never goes beyond it, and every batch runs inside one read transaction — REPEATABLE
READ READ ONLY on PostgreSQL, a deferred read transaction in WAL mode on SQLite — so a message
inserted or a status updated while the export streams is not in it, and each row's status and
updated_at are those of the same moment. (The price: a long export holds back PostgreSQL's
vacuum horizon and SQLite's WAL checkpoint until it finishes.)

Streaming. Keyset pagination over messages alone: `WHERE id > last AND id <= max ... ORDER BY id
LIMIT BATCH_SIZE`, a plain primary-key range scan, one chunk per batch, the next batch fetched
while the current one is formatted, so memory stays flat whatever the size. The customer and
staff columns come from small lookups per batch (bounded cache) in the same snapshot, not from a
join per row. A customer filter becomes `conversation_id = ...`, which walks the
(conversation_id, id) index. For speed the batch query, compiled by SQLAlchemy, runs on the
driver's own connection (asyncpg, aiosqlite), the database formats the timestamps, and CSV
lines are built directly — byte for byte what csv.writer would write (see _CsvFormatter).

Spreadsheet safety (CSV only; JSON and NDJSON carry the values unchanged): every text cell
formula-safe as inbox/csv_cells.py says, an optional byte-order mark for Excel. created_at and
updated_at need not be neutralised: the export writes them itself and they start with a digit.
message_id, conversation_id and error_code are numbers by type and written as they are.

Customer text never reaches logs: this module logs nothing (its callers log ids and counts), and
a database error leaves the stream as ExportFailed, without the SQL statement or its parameters.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import anyio
import msgspec
from sqlalchemy import Text, bindparam, case, cast, func, or_, select, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from inbox import spans
from inbox.csv_cells import FORMULA_TRIGGERS, csv_cell, neutralise_formula
from inbox.db import Database
from inbox.models import Channel, Conversation, Customer, Direction, ExportAudit, Message, Note, Staff, utcnow
from inbox.phones import to_e164, typed_number
from inbox.store import iso

FORMATS = ("csv", "json", "ndjson")
MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "json": "application/json", "ndjson": "application/x-ndjson"}
COLUMNS = (
    "message_id",
    "sid",
    "conversation_id",
    "customer_name",
    "customer_phone",
    "channel",
    "direction",
    "from",
    "to",
    "sent_by",
    "body",
    "media_urls",
    "status",
    "error_code",
    "created_at",
    "updated_at",
    "record_type",
)
BATCH_SIZE = 5000  # rows per query and per chunk; read at call time (tests shrink it)
BOM = "\ufeff".encode()


class ExportInputError(ValueError):
    """A filter or option that makes no sense; `str()` is one sentence for a person."""

    def __init__(self, name: str, sentence: str) -> None:
        super().__init__(sentence)
        self.name = name  # since | until | customer | channel | direction | staff | format


class ExportFailed(RuntimeError):
    """The database failed mid-export. Carries no SQL parameters (they may be customer data)."""


# ---- the query ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportQuery:
    format: str = "csv"
    since: datetime | None = None  # inclusive, UTC
    before: datetime | None = None  # exclusive, UTC (from `until`)
    customer: str | None = None  # the customer's phone as stored (E.164 where it parses)
    channel: str | None = None
    direction: str | None = None
    staff: str | None = None  # as given: an email or a numeric id
    staff_id: int | None = None  # set by resolve_staff
    bom: bool = False  # CSV only
    filters: dict[str, Any] = field(default_factory=dict)  # what the audit log records


def _blank(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def parse_moment(value: str, name: str, *, end: bool = False) -> tuple[datetime, str]:
    """An ISO 8601 date or date-time as (UTC moment, how the audit log writes it).

    A date is the start of that day, or with `end` the start of the next one (so
    `until=2024-05-31` includes the 31st); a date-time with `end` includes its own instant.
    Naive means UTC.
    """
    sentence = (
        f"{name} must be an ISO 8601 date or date and time, such as 2024-05-01 or "
        f"2024-05-01T09:30:00Z (naive times are UTC), or a span back from now such as 12h or 3d; "
        f"{value[:40]!r} is not."
    )
    if (moment := spans.moment_before(value, datetime.now(UTC))) is not None:  # 12h: that long ago
        return moment, iso(moment)
    try:
        day = date.fromisoformat(value)
    except ValueError:
        day = None
    try:
        if day is not None:
            moment = datetime.combine(day, time(), tzinfo=UTC)
            return (moment + timedelta(days=1) if end else moment), day.isoformat()
        moment = datetime.fromisoformat(value)
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        return (moment + timedelta(microseconds=1) if end else moment), iso(moment)
    except (ValueError, OverflowError):
        raise ExportInputError(name, sentence) from None


def parse_query(
    *,
    format: str | None = "csv",
    since: str | None = None,
    until: str | None = None,
    customer: str | None = None,
    channel: str | None = None,
    direction: str | None = None,
    staff: str | None = None,
    bom: bool | str | None = False,
    country: str = "US",
) -> ExportQuery:
    """Checks and normalises the filters the HTTP and CLI doors share. Empty values mean 'any'."""
    fmt = (_blank(format) or "csv").lower()
    if fmt not in FORMATS:
        raise ExportInputError("format", "format must be csv, json or ndjson.")
    filters: dict[str, Any] = {}
    since_at = before = None
    if since := _blank(since):
        since_at, filters["since"] = parse_moment(since, "since")
    if until := _blank(until):
        before, filters["until"] = parse_moment(until, "until", end=True)
    if since_at and before and since_at >= before:
        raise ExportInputError("until", "until must come after since.")
    phone = None
    if customer := _blank(customer):
        # As typed ("(415) 555-0123", "+44 7700 900123"), or E.164 with a "+" a hand-typed URL turned into a space.
        phone = typed_number(customer, country) or to_e164(customer)
        digits = phone.removeprefix("+")
        if not (2 <= len(digits) <= 15 and digits.isascii() and digits.isdigit()):
            # The value is not echoed: it may be a customer's number, and errors are logged.
            raise ExportInputError("customer", "customer must be a phone number in E.164 form, such as +14155550123.")
        filters["customer"] = phone
    if channel := _blank(channel):
        channel = channel.lower()
        if channel not in (Channel.SMS, Channel.WHATSAPP):
            raise ExportInputError("channel", "channel must be sms or whatsapp.")
        filters["channel"] = channel
    if direction := _blank(direction):
        direction = direction.lower()
        if direction not in (Direction.INBOUND, Direction.OUTBOUND):
            raise ExportInputError("direction", "direction must be inbound or outbound.")
        filters["direction"] = direction
    if staff := _blank(staff):
        if len(staff) > 320:
            raise ExportInputError("staff", "staff must be a staff member's email or id.")
        filters["staff"] = staff.lower()
    want_bom = bom if isinstance(bom, bool) else str(bom or "").strip().lower() in ("1", "true", "yes", "on")
    want_bom = want_bom and fmt == "csv"  # JSON must not start with a BOM (RFC 8259)
    if want_bom:
        filters["bom"] = True
    return ExportQuery(fmt, since_at, before, phone, channel, direction, filters.get("staff"), None, want_bom, filters)


async def resolve_staff(db: Database, query: ExportQuery) -> ExportQuery:
    """Turns the `staff` filter (an email or an id) into a staff id; unknown -> ExportInputError."""
    if query.staff is None:
        return query
    by_id = query.staff.isascii() and query.staff.isdigit() and len(query.staff) <= 18  # fits a BIGINT
    condition = Staff.id == int(query.staff) if by_id else Staff.email == query.staff
    async with db.read() as session:
        row = (await session.execute(select(Staff.id, Staff.email).where(condition))).first()
    if row is None:
        raise ExportInputError("staff", "staff must be the email or id of a staff member; there is none such.")
    return replace(query, staff_id=row.id, filters={**query.filters, "staff": row.email})


# ---- the audit log --------------------------------------------------------------------------


async def start_audit(db: Database, query: ExportQuery, *, staff_id: int | None, actor: str) -> int:
    """Records that an export began (committed before the first byte); returns its id."""
    async with db.write() as session:
        entry = ExportAudit(
            staff_id=staff_id, actor=actor[:320], format=query.format, filters=query.filters, created_at=utcnow()
        )
        session.add(entry)
        await session.flush()
        audit_id = entry.id
        await session.commit()
    return audit_id


async def finish_audit(db: Database, audit_id: int, row_count: int) -> None:
    async with db.write() as session:
        await session.execute(
            update(ExportAudit).where(ExportAudit.id == audit_id).values(row_count=row_count, finished_at=utcnow())
        )
        await session.commit()


def audit_dict(entry: ExportAudit) -> dict[str, Any]:
    return {
        "id": entry.id,
        "staff_id": entry.staff_id,
        "actor": entry.actor,
        "format": entry.format,
        "filters": entry.filters or {},
        "row_count": entry.row_count,
        "created_at": iso(entry.created_at),
        "finished_at": iso(entry.finished_at),
    }


async def audit_entries(session: AsyncSession, *, limit: int = 50, before: int | None = None) -> list[dict[str, Any]]:
    """The newest exports first; `before` is an audit id to page back from."""
    statement = select(ExportAudit).order_by(ExportAudit.id.desc()).limit(limit)
    if before is not None:
        statement = statement.where(ExportAudit.id < before)
    return [audit_dict(entry) for entry in (await session.execute(statement)).scalars()]


# ---- rows -----------------------------------------------------------------------------------

_m = Message.__table__
_conversations = Conversation.__table__
_customers = Customer.__table__
_staff = Staff.__table__
_notes = Note.__table__

CUSTOMER_CACHE = 50_000  # conversations whose customer cells are kept between batches (memory bound)


def iso_utc_sql(column, dialect: str):
    """`column` as store.iso writes it, computed by the database: 2024-05-01T09:30:00.250000Z,
    without the fraction when it is zero. SQLite holds SQLAlchemy's 'YYYY-MM-DD HH:MM:SS.ffffff'."""
    if dialect == "postgresql":
        return func.replace(
            func.to_char(func.timezone("UTC", column), 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), ".000000Z", "Z"
        )
    day, clock, fraction = func.substr(column, 1, 10), func.substr(column, 12, 8), func.substr(column, 21)
    return case(  # the common shapes first: this runs twice per exported row
        (or_(fraction == "", fraction == "000000"), day + "T" + clock + "Z"),
        (func.length(column) == 26, day + "T" + func.substr(column, 12) + "Z"),
        else_=day + "T" + clock + "." + func.substr(fraction + "000000", 1, 6) + "Z",  # a short fraction
    )


def _conditions(query: ExportQuery, conversation_id: int | None) -> list:
    conditions = []
    if query.since is not None:
        conditions.append(_m.c.created_at >= query.since)
    if query.before is not None:
        conditions.append(_m.c.created_at < query.before)
    if query.customer is not None:
        conditions.append(_m.c.conversation_id == conversation_id)
    if query.channel is not None:
        conditions.append(_m.c.channel == query.channel)
    if query.direction is not None:
        conditions.append(_m.c.direction == query.direction)
    if query.staff_id is not None:
        conditions.append(_m.c.staff_id == query.staff_id)
    return conditions


def _note_conditions(query: ExportQuery, conversation_id: int | None) -> list | None:
    """The filters as they apply to notes; None when they leave every note out."""
    if query.channel is not None or query.direction is not None:
        return None
    conditions = []
    if query.since is not None:
        conditions.append(_notes.c.created_at >= query.since)
    if query.before is not None:
        conditions.append(_notes.c.created_at < query.before)
    if query.customer is not None:
        conditions.append(_notes.c.conversation_id == conversation_id)
    if query.staff_id is not None:
        conditions.append(_notes.c.staff_id == query.staff_id)
    return conditions


class BatchQuery:
    """The keyset query (`id > :after AND id <= :upper ... ORDER BY id LIMIT n`) over messages
    alone, compiled once by SQLAlchemy (with its bind processing) and run on the driver's own
    connection inside the snapshot's transaction: rows come back as the driver's tuples, with no
    Row objects in between. Customers and staff are looked up per batch and cached, which keeps
    the query a plain index range scan."""

    def __init__(
        self,
        connection: AsyncConnection,
        driver: Any,
        dialect: str,
        query: ExportQuery,
        conversation_id: int | None,
        upper: int,
        limit: int,
    ) -> None:
        statement = (
            select(
                _m.c.id,
                _m.c.sid,
                _m.c.conversation_id,
                _m.c.channel,
                _m.c.direction,
                _m.c.from_addr,
                _m.c.to_addr,
                _m.c.staff_id,
                _m.c.body,
                cast(_m.c.media, Text),
                _m.c.status,
                _m.c.error_code,
                iso_utc_sql(_m.c.created_at, dialect),
                iso_utc_sql(_m.c.updated_at, dialect),
            )
            .where(
                _m.c.id > bindparam("after", 0, type_=_m.c.id.type),
                _m.c.id <= upper,
                *_conditions(query, conversation_id),
            )
            .order_by(_m.c.id)
            .limit(limit)
        )
        state = statement.compile(dialect=connection.dialect).construct_expanded_state()
        self.sql = state.statement
        names = list(state.positiontup or ())
        self.values = [
            state.processors[name](state.parameters[name]) if name in state.processors else state.parameters[name]
            for name in names
        ]
        self.after_at = names.index("after")
        self.driver = driver
        self.postgres = dialect == "postgresql"

    async def run(self, after: int) -> list:
        values = list(self.values)
        values[self.after_at] = after
        if self.postgres:  # asyncpg
            return await self.driver.fetch(self.sql, *values)
        cursor = await self.driver.execute(self.sql, values)  # aiosqlite
        try:
            return await cursor.fetchall()
        finally:
            await cursor.close()


async def fetch_batch(connection: AsyncConnection, query: BatchQuery, after: int) -> Sequence[Sequence[Any]]:
    """One keyset page: the rows with id > after. (Tests wrap this to pause an export.)"""
    return await query.run(after)


def _media_urls(raw: str | None) -> list[str]:
    if not raw or raw == "[]" or raw == "null":
        return []
    try:
        items = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return []
    if not isinstance(items, list):
        return []
    return [item["url"] for item in items if isinstance(item, dict) and isinstance(item.get("url"), str)]


class _Formatter:
    """Turns batches into bytes: head, one chunk per batch, tail. `customer` and `sender` prepare
    the looked-up cells once per customer and staff member rather than once per row."""

    def head(self) -> bytes:
        return b""

    def customer(self, name: str | None, phone: str | None) -> tuple:
        return (name, phone)

    def sender(self, email: str | None) -> Any:
        return email

    def batch(
        self, rows: Sequence[Sequence[Any]], customers: dict[int, tuple], senders: dict[int | None, Any], first: bool
    ) -> bytes:
        raise NotImplementedError

    def notes(
        self, rows: Sequence[Sequence[Any]], customers: dict[int, tuple], senders: dict[int | None, Any], first: bool
    ) -> bytes:
        """Internal notes: rows of (note id, conversation id, staff id, body, created_at)."""
        raise NotImplementedError

    def tail(self) -> bytes:
        return b""


class _CsvFormatter(_Formatter):
    """RFC 4180 with CRLF, every text cell through neutralise_formula. Each line is byte for byte
    what csv.writer(lineterminator="\\r\\n") writes for the same cells (tests hold it to that), but
    built with one f-string: most cells need no quoting, and csv.writer's per-character loop
    was the export's largest cost."""

    def __init__(self, bom: bool) -> None:
        self.bom = bom

    def head(self) -> bytes:
        return (BOM if self.bom else b"") + (",".join(COLUMNS) + "\r\n").encode()

    def customer(self, name, phone):
        return (csv_cell(neutralise_formula(name) or ""), csv_cell(neutralise_formula(phone) or ""))

    def sender(self, email):
        return csv_cell(neutralise_formula(email) or "")

    def batch(self, rows, customers, senders, first):
        lines = []
        line = lines.append
        triggers = FORMULA_TRIGGERS
        for (
            mid,
            sid,
            cid,
            channel,
            direction,
            from_,
            to,
            staff_id,
            body,
            media,
            status,
            error_code,
            created,
            updated,
        ) in rows:
            name, phone = customers[cid]
            # The formula rule, inline (this loop runs once per message): see neutralise_formula.
            if sid and sid[0] in triggers:
                sid = "'" + sid
            if channel and channel[0] in triggers:
                channel = "'" + channel
            if direction and direction[0] in triggers:
                direction = "'" + direction
            if from_ and from_[0] in triggers:
                from_ = "'" + from_
            if to and to[0] in triggers:
                to = "'" + to
            if status and status[0] in triggers:
                status = "'" + status
            if body and body[0] in triggers:
                body = "'" + body
            if '"' in body or "," in body or "\n" in body or "\r" in body:
                body = '"' + body.replace('"', '""') + '"'
            urls = "" if media == "[]" else csv_cell(neutralise_formula(" ".join(_media_urls(media))))
            plain = f"{sid}{channel}{direction}{from_}{to}{status}"
            if '"' in plain or "," in plain or "\n" in plain or "\r" in plain:  # odd data: quote each cell
                sid, channel, direction, from_, to, status = (
                    csv_cell(cell) if cell is not None else None
                    for cell in (sid, channel, direction, from_, to, status)
                )
            line(
                f"{mid},{sid or ''},{cid},{name},{phone},{channel},{direction},{from_},{to},{senders[staff_id]},"
                f"{body},{urls},{status},{'' if error_code is None else error_code},{created},{updated},message\r\n"
            )
        return "".join(lines).encode()

    def notes(self, rows, customers, senders, first):
        lines = []
        for _note_id, cid, staff_id, body, created in rows:
            name, phone = customers[cid]
            text = csv_cell(neutralise_formula(body) or "")
            lines.append(f",,{cid},{name},{phone},,,,,{senders[staff_id]},{text},,,,{iso(created)},,note\r\n")
        return "".join(lines).encode()


class _JsonRow(msgspec.Struct, rename={"from_": "from"}):
    message_id: int
    sid: str | None
    conversation_id: int
    customer_name: str | None
    customer_phone: str | None
    channel: str
    direction: str
    from_: str
    to: str
    sent_by: str | None
    body: str
    media_urls: list[str]
    status: str
    error_code: int | None
    created_at: str | None
    updated_at: str | None
    record_type: str = "message"


class _JsonNote(msgspec.Struct):
    record_type: str
    note_id: int
    conversation_id: int
    customer_name: str | None
    customer_phone: str | None
    sent_by: str | None
    body: str
    created_at: str | None


class _NdjsonFormatter(_Formatter):
    _encoder = msgspec.json.Encoder()

    def _lines(self, rows, customers, senders) -> bytes:
        return self._encoder.encode_lines(
            [
                _JsonRow(
                    mid,
                    sid,
                    cid,
                    *customers[cid],
                    channel,
                    direction,
                    from_,
                    to,
                    senders[staff_id],
                    body,
                    _media_urls(media),
                    status,
                    error_code,
                    created,
                    updated,
                )
                for (
                    mid,
                    sid,
                    cid,
                    channel,
                    direction,
                    from_,
                    to,
                    staff_id,
                    body,
                    media,
                    status,
                    error_code,
                    created,
                    updated,
                ) in rows
            ]
        )

    def batch(self, rows, customers, senders, first):
        return self._lines(rows, customers, senders)

    def _note_lines(self, rows, customers, senders) -> bytes:
        return self._encoder.encode_lines(
            [
                _JsonNote("note", note_id, cid, *customers[cid], senders[staff_id], body, iso(created))
                for note_id, cid, staff_id, body, created in rows
            ]
        )

    def notes(self, rows, customers, senders, first):
        return self._note_lines(rows, customers, senders)


class _JsonFormatter(_NdjsonFormatter):
    """One array, one message per line. Encoded JSON holds no raw newline, so the line breaks
    encode_lines puts between messages are the only ones and become the commas."""

    def head(self) -> bytes:
        return b"["

    def batch(self, rows, customers, senders, first):
        lines = self._lines(rows, customers, senders)
        return (b"\n" if first else b",\n") + lines[:-1].replace(b"\n", b",\n")

    def notes(self, rows, customers, senders, first):
        lines = self._note_lines(rows, customers, senders)
        return (b"\n" if first else b",\n") + lines[:-1].replace(b"\n", b",\n")

    def tail(self) -> bytes:
        return b"\n]\n"


def formatter(query: ExportQuery) -> _Formatter:
    if query.format == "csv":
        return _CsvFormatter(query.bom)
    return _JsonFormatter() if query.format == "json" else _NdjsonFormatter()


# ---- the stream -----------------------------------------------------------------------------


async def _open_snapshot(db: Database) -> AsyncConnection:
    """A connection in a transaction that sees one moment of the database for all its reads."""
    connection = await db.read_engine.connect()
    try:
        if db.dialect == "postgresql":
            await connection.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        await connection.begin()  # SQLite: a deferred BEGIN; the snapshot starts at the first read
    except BaseException:
        await _close(connection)
        raise
    return connection


async def _close(connection: AsyncConnection) -> None:
    with anyio.CancelScope(shield=True):  # a client hanging up must not leak the connection
        await connection.close()


async def _load_customers(
    connection: AsyncConnection, ids: set[int], shape: _Formatter, customers: dict[int, tuple]
) -> None:
    # Two primary-key lookups rather than a join: given a long IN list, SQLite's planner scans
    # every customer for the join (seconds per batch at 20,000 customers). In slices of 900
    # ids: SQLite before 3.32 allows 999 parameters per statement.
    name = func.coalesce(func.nullif(_customers.c.name, ""), _customers.c.whatsapp_profile_name)
    wanted = sorted(ids)
    for start in range(0, len(wanted), 900):
        owners = dict(
            (
                await connection.execute(
                    select(_conversations.c.id, _conversations.c.customer_id).where(
                        _conversations.c.id.in_(wanted[start : start + 900])
                    )
                )
            ).all()
        )
        people = {
            customer_id: (customer_name, phone)
            for customer_id, customer_name, phone in await connection.execute(
                select(_customers.c.id, name, _customers.c.phone).where(
                    _customers.c.id.in_(sorted(set(owners.values())))
                )
            )
        }
        for conversation_id, customer_id in owners.items():
            customers[conversation_id] = shape.customer(*people[customer_id])


async def stream(
    db: Database,
    query: ExportQuery,
    *,
    audit_id: int | None = None,
    on_total: Callable[[int], None] | None = None,
    on_rows: Callable[[int], None] | None = None,
    batch_size: int | None = None,
) -> AsyncIterator[bytes]:
    """The export's bytes: the head, then one chunk per batch, then the tail.

    `on_total(n)`, when given, is told how many rows the snapshot holds before the first batch
    (it costs a COUNT); `on_rows(n)` after each batch. When the last byte has been handed over,
    the audit entry `audit_id` gets its row count and finished_at.
    """
    limit = batch_size or BATCH_SIZE
    shape = formatter(query)
    rows_out = 0
    connection = await _open_snapshot(db)
    try:
        pending: asyncio.Future | None = None
        try:
            upper = await connection.scalar(select(func.coalesce(func.max(_m.c.id), 0)))
            notes_upper = await connection.scalar(select(func.coalesce(func.max(_notes.c.id), 0)))
            conversation_id = None
            if query.customer is not None:
                conversation_id = await connection.scalar(
                    select(_conversations.c.id)
                    .join(_customers, _customers.c.id == _conversations.c.customer_id)
                    .where(_customers.c.phone == query.customer)
                )
            empty = query.customer is not None and conversation_id is None
            note_filters = None if empty else _note_conditions(query, conversation_id)
            if on_total is not None:
                total = (
                    0
                    if empty
                    else await connection.scalar(
                        select(func.count())
                        .select_from(_m)
                        .where(_m.c.id <= upper, *_conditions(query, conversation_id))
                    )
                )
                if note_filters is not None:
                    total += await connection.scalar(
                        select(func.count()).select_from(_notes).where(_notes.c.id <= notes_upper, *note_filters)
                    )
                on_total(int(total))
            senders: dict[int | None, Any] = {None: shape.sender(None)}
            for staff_id, email in await connection.execute(select(_staff.c.id, _staff.c.email)):
                senders[staff_id] = shape.sender(email)
            yield shape.head()
            customers: dict[int, tuple] = {}
            if not empty:
                driver = (await connection.get_raw_connection()).driver_connection
                batches = BatchQuery(connection, driver, db.dialect, query, conversation_id, upper, limit)
                rows = await fetch_batch(connection, batches, 0)
                first = True
                while rows:
                    needed = {row[2] for row in rows}
                    missing = needed.difference(customers)
                    if missing:
                        if len(customers) + len(missing) > CUSTOMER_CACHE:  # start afresh with this batch's
                            customers.clear()
                            missing = needed
                        await _load_customers(connection, missing, shape, customers)
                    # The next page is fetched while this one is formatted and sent.
                    if len(rows) == limit:
                        pending = asyncio.ensure_future(fetch_batch(connection, batches, rows[-1][0]))
                    chunk = shape.batch(rows, customers, senders, first)
                    rows_out += len(rows)
                    first = False
                    if on_rows is not None:
                        on_rows(len(rows))
                    yield chunk
                    if pending is None:
                        break
                    rows, pending = await pending, None
            if note_filters is not None:
                after = 0
                while True:
                    notes = (
                        await connection.execute(
                            select(
                                _notes.c.id,
                                _notes.c.conversation_id,
                                _notes.c.staff_id,
                                _notes.c.body,
                                _notes.c.created_at,
                            )
                            .where(_notes.c.id > after, _notes.c.id <= notes_upper, *note_filters)
                            .order_by(_notes.c.id)
                            .limit(limit)
                        )
                    ).all()
                    if not notes:
                        break
                    missing = {row[1] for row in notes}.difference(customers)
                    if missing:
                        await _load_customers(connection, missing, shape, customers)
                    yield shape.notes(notes, customers, senders, rows_out == 0)
                    rows_out += len(notes)
                    if on_rows is not None:
                        on_rows(len(notes))
                    after = notes[-1][0]
        except SQLAlchemyError as exc:
            raise ExportFailed(describe_failure(exc)) from None
        except Exception as exc:
            if _is_driver_error(exc):
                raise ExportFailed(describe_failure(exc)) from None
            raise
        finally:
            if pending is not None:
                pending.cancel()
                with anyio.CancelScope(shield=True):
                    await asyncio.gather(pending, return_exceptions=True)
    finally:
        await _close(connection)
    yield shape.tail()
    if audit_id is not None:
        await finish_audit(db, audit_id, rows_out)


def _is_driver_error(exc: BaseException) -> bool:
    """An error raised by asyncpg or sqlite3 directly (the batches bypass SQLAlchemy's wrapping)."""
    module = type(exc).__module__
    return module.startswith(("asyncpg", "sqlite3", "aiosqlite"))


def describe_failure(exc: BaseException) -> str:
    """The driver's own one-line message, never the statement or its parameters."""
    origin = getattr(exc, "orig", None) or exc
    text = str(origin).strip().splitlines()[0] if str(origin).strip() else type(origin).__name__
    if isinstance(origin, SQLAlchemyError):  # its message embeds [SQL: ...] [parameters: ...]
        text = text.split("[SQL:", 1)[0].strip() or type(origin).__name__
    return f"the database failed during the export: {text}"


# ---- the printable transcript ----------------------------------------------------------------


async def transcript(session: AsyncSession, conversation_id: int) -> dict[str, Any] | None:
    """One conversation, all its messages oldest first, with each reply's staff sender."""
    head = (
        await session.execute(
            select(Conversation.id, Conversation.status, Customer.name, Customer.whatsapp_profile_name, Customer.phone)
            .join(Customer, Customer.id == Conversation.customer_id)
            .where(Conversation.id == conversation_id)
        )
    ).first()
    if head is None:
        return None
    rows = await session.execute(
        select(
            Message.id,
            Message.direction,
            Message.channel,
            Message.from_addr,
            Message.to_addr,
            Message.body,
            Message.media,
            Message.status,
            Message.error_code,
            Message.auto_reply,
            Message.created_at,
            Staff.name.label("staff_name"),
            Staff.email.label("staff_email"),
        )
        .outerjoin(Staff, Staff.id == Message.staff_id)
        .where(Message.conversation_id == conversation_id)
        .order_by(Message.id)
    )
    messages = []
    for row in rows:
        media = [
            {
                "url": item.get("url", ""),
                "content_type": item.get("content_type", ""),
                "linkable": str(item.get("url", "")).startswith(("https://", "http://")),
            }
            for item in (row.media or [])
            if isinstance(item, dict)
        ]
        messages.append(
            {
                "id": row.id,
                "direction": row.direction,
                "channel": row.channel,
                "from": row.from_addr,
                "to": row.to_addr,
                "body": row.body,
                "media": media,
                "status": row.status,
                "error_code": row.error_code,
                "auto_reply": row.auto_reply,
                "staff_name": row.staff_name or row.staff_email,
                "created_at": row.created_at,
            }
        )
    return {
        "id": head.id,
        "status": head.status,
        "customer_name": head.name or head.whatsapp_profile_name,
        "customer_phone": head.phone,
        "messages": messages,
    }
