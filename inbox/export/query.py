"""What an export covers: the filters `GET /api/export` and `inbox export` share, checked and
normalised. Bad input raises ExportInputError, whose message is one sentence for a person."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select

from inbox import spans
from inbox.db import Database
from inbox.models import Channel, Direction, Staff
from inbox.phones import to_e164, typed_number
from inbox.store import iso

FORMATS = ("csv", "json", "ndjson")
MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "json": "application/json", "ndjson": "application/x-ndjson"}


class ExportInputError(ValueError):
    """A filter or option that makes no sense; `str()` is one sentence for a person."""

    def __init__(self, name: str, sentence: str) -> None:
        super().__init__(sentence)
        self.name = name  # since | until | customer | channel | direction | staff | format


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
        return moment, iso(moment) or ""
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
        return (moment + timedelta(microseconds=1) if end else moment), iso(moment) or ""
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
