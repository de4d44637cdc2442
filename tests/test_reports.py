"""Reports: a history whose every figure is known by construction, on SQLite and PostgreSQL.

The business is in Europe/London and the period (Thursday 28 March to Tuesday 2 April 2024)
crosses the spring change: Sunday 31 March lasts 23 hours, and from then on local midnight is
23:00 UTC the day before. Messages sit on either side of those edges, so a report that grouped
by the UTC date, or added a fixed offset, would get different numbers.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import insert, text

from inbox import reports
from inbox.db import Database
from inbox.models import ConsentRecord, Conversation, Customer, Message, Staff

LONDON = ZoneInfo("Europe/London")
NOW = datetime(2024, 4, 3, 12, 0, tzinfo=UTC)
ANN, BOB = 1, 2


def at(day: str, clock: str) -> datetime:
    """A local London time as a UTC instant."""
    return datetime.fromisoformat(f"{day}T{clock}").replace(tzinfo=LONDON).astimezone(UTC)


# (conversation, local day, local time, kind, channel, extra)
#   kind: "in" a customer's message, "ann"/"bob" a staff reply, "auto" an automatic answer
HISTORY = [
    # A: an old, answered question; then one asked before the period and answered inside it.
    ("A", "2024-03-19", "10:00", "in", "sms", {}),
    ("A", "2024-03-20", "10:00", "ann", "sms", {"status": "delivered"}),
    ("A", "2024-03-27", "23:00", "in", "sms", {}),  # the wait starts here (GMT)
    ("A", "2024-03-29", "00:30", "in", "sms", {}),  # same wait
    ("A", "2024-03-29", "01:00", "auto", "sms", {"status": "delivered", "auto_reply": "help"}),  # not a reply
    ("A", "2024-03-29", "01:30", "ann", "sms", {"status": "delivered"}),  # first response: 26.5 h
    ("A", "2024-03-29", "02:00", "bob", "sms", {"status": "sent"}),  # a reply, not a first response
    # E: closed without an answer; F: still waiting (and writes again after the period).
    ("E", "2024-03-30", "10:00", "in", "sms", {}),
    ("F", "2024-03-30", "12:00", "in", "sms", {}),
    ("F", "2024-04-03", "09:00", "in", "sms", {}),
    # B on WhatsApp: across the change (00:30 GMT -> 03:00 BST is 1.5 h, not 2.5 h).
    ("B", "2024-03-31", "00:30", "in", "whatsapp", {}),
    ("B", "2024-03-31", "03:00", "bob", "whatsapp", {"status": "read"}),
    ("B", "2024-04-01", "00:10", "in", "whatsapp", {}),  # 31 March 23:10 UTC: local day 1 April
    ("B", "2024-04-01", "00:40", "ann", "whatsapp", {"status": "failed", "error_code": 63016}),  # still a reply
    # C: answered in 5 minutes, then STOP (a keyword asks for no answer) and its automatic answer.
    ("C", "2024-04-01", "09:00", "in", "sms", {}),
    ("C", "2024-04-01", "09:05", "ann", "sms", {"status": "undelivered", "error_code": 30007}),
    ("C", "2024-04-01", "10:00", "in", "sms", {"keyword": "opt_out"}),
    ("C", "2024-04-01", "10:00:01", "auto", "sms", {"status": "delivered", "auto_reply": "opt_out"}),
    # G: 20 minutes.
    ("G", "2024-04-01", "12:00", "in", "sms", {}),
    ("G", "2024-04-01", "12:20", "bob", "sms", {"status": "delivered"}),
    # D: waiting; an automatic answer still in the outbox does not end the wait; a scheduled and a
    # canceled staff message are not replies and not counted as sent.
    ("D", "2024-04-02", "08:00", "in", "sms", {}),
    ("D", "2024-04-02", "08:01", "auto", "sms", {"status": "queued", "auto_reply": "help"}),
    ("D", "2024-04-02", "08:30", "in", "sms", {}),
    ("D", "2024-04-02", "09:00", "ann", "sms", {"status": "scheduled"}),
    ("D", "2024-04-02", "09:10", "ann", "sms", {"status": "canceled"}),
]
CUSTOMERS = {
    "A": ("+447700900001", "Alice"),
    "B": ("+447700900002", None),
    "C": ("+447700900003", "=HYPERLINK(1)"),
    "D": ("+447700900004", "Dev"),
    "E": ("+447700900005", "Eve"),
    "F": ("+447700900006", "Fay"),
    "G": ("+447700900007", "Gus"),
}
CLOSED = {"E"}
CONSENT = [
    ("C", "2024-03-27", "12:00", "opt_out"),  # before the period
    ("C", "2024-03-29", "12:00", "opt_out"),  # week of 25 March
    ("C", "2024-04-01", "00:30", "opt_in"),  # 31 March 23:30 UTC: local week of 1 April
    ("C", "2024-04-01", "10:00", "opt_out"),
    ("C", "2024-04-03", "10:00", "opt_out"),  # after the period
]


async def _seed(database_url: str) -> None:
    db = Database(database_url)
    try:
        async with db.write() as session:
            await session.execute(
                insert(Staff),
                [
                    {
                        "id": ANN,
                        "email": "ann@example.com",
                        "name": "Ann",
                        "role": "receptionist",
                        "password_hash": "x",
                    },
                    {"id": BOB, "email": "bob@example.com", "name": "Bob", "role": "manager", "password_hash": "x"},
                ],
            )
            conversations = {}
            for n, (key, (phone, name)) in enumerate(CUSTOMERS.items(), start=1):
                await session.execute(insert(Customer).values(id=n, phone=phone, name=name))
                await session.execute(
                    insert(Conversation).values(
                        id=n, customer_id=n, status="closed" if key in CLOSED else "open", last_activity_at=NOW
                    )
                )
                conversations[key] = n
            for key, day, clock, kind, channel, extra in HISTORY:
                phone = CUSTOMERS[key][0]
                address = phone if channel == "sms" else f"whatsapp:{phone}"
                inbound = kind == "in"
                moment = at(day, clock)
                await session.execute(
                    insert(Message).values(
                        conversation_id=conversations[key],
                        direction="inbound" if inbound else "outbound",
                        channel=channel,
                        from_addr=address if inbound else "+15005550006",
                        to_addr="+15005550006" if inbound else address,
                        body="hello",
                        media=[],
                        status=extra.get("status", "received"),
                        error_code=extra.get("error_code"),
                        staff_id={"ann": ANN, "bob": BOB}.get(kind),
                        auto_reply=extra.get("auto_reply"),
                        keyword=extra.get("keyword"),
                        created_at=moment,
                        updated_at=moment,
                    )
                )
            for key, day, clock, action in CONSENT:
                await session.execute(
                    insert(ConsentRecord).values(
                        customer_id=conversations[key],
                        channel="sms",
                        action=action,
                        source="keyword",
                        evidence={},
                        occurred_at=at(day, clock),
                    )
                )
            await session.execute(
                text(
                    "UPDATE conversations SET last_message_id = "
                    "(SELECT MAX(id) FROM messages WHERE messages.conversation_id = conversations.id)"
                )
            )
            # Rows written straight to the tables: each staff reply's wait as queueing would store it.
            await session.execute(text(reports.BACKFILL_WAITS))
            if db.dialect == "postgresql":  # ids were given: move the sequences past them
                for table in ("staff", "customers", "conversations"):
                    await session.execute(
                        text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table}))")
                    )
            await session.commit()
    finally:
        await db.dispose()


async def _report(database_url: str, period: reports.Period) -> dict:
    db = Database(database_url)
    try:
        return await reports.report(db, period, NOW)
    finally:
        await db.dispose()


def report(database_url: str, since: str = "2024-03-28", until: str = "2024-04-02") -> dict:
    return asyncio.run(_report(database_url, reports.parse_period(since, until, LONDON, NOW)))


@pytest.fixture
def seeded(database_url) -> str:
    asyncio.run(_seed(database_url))
    return database_url


def day(date: str, in_sms=0, in_wa=0, out_sms=0, out_wa=0) -> dict:
    return {
        "date": date,
        "inbound": {"sms": in_sms, "whatsapp": in_wa},
        "outbound": {"sms": out_sms, "whatsapp": out_wa},
    }


def test_messages_per_day_by_channel_with_zeros(seeded) -> None:
    figures = report(seeded)
    assert figures["since"] == "2024-03-28T00:00:00Z"
    assert figures["until"] == "2024-04-02T23:00:00Z"  # 3 April, 00:00 BST
    assert figures["timezone"] == "Europe/London"
    assert figures["days"] == [
        day("2024-03-28"),
        day("2024-03-29", in_sms=1, out_sms=3),
        day("2024-03-30", in_sms=2),
        day("2024-03-31", in_wa=1, out_wa=1),
        day("2024-04-01", in_sms=3, in_wa=1, out_sms=3, out_wa=1),
        day("2024-04-02", in_sms=2, out_sms=1),
    ]


def test_first_response_times(seeded) -> None:
    first = report(seeded)["first_response"]
    # 300, 1200, 1800, 5400, 95400: the median is the 3rd; p90 lies 60% of the way from the 4th to the 5th.
    assert (first["responses"], first["median_s"], first["p90_s"]) == (5, 1800, 59400)
    assert first["days"] == [
        {"date": "2024-03-28", "responses": 0, "median_s": None, "p90_s": None},
        {"date": "2024-03-29", "responses": 1, "median_s": 95400, "p90_s": 95400},
        {"date": "2024-03-30", "responses": 0, "median_s": None, "p90_s": None},
        {"date": "2024-03-31", "responses": 1, "median_s": 5400, "p90_s": 5400},
        {"date": "2024-04-01", "responses": 3, "median_s": 1200, "p90_s": 1680},
        {"date": "2024-04-02", "responses": 0, "median_s": None, "p90_s": None},
    ]
    assert first["by_staff"] == [
        {"staff": {"id": ANN, "name": "Ann"}, "replies": 3, "median_s": 1800},
        {"staff": {"id": BOB, "name": "Bob"}, "replies": 2, "median_s": 3300},
    ]


def test_conversations_waiting_now_oldest_first(seeded) -> None:
    figures = report(seeded)
    assert figures["waiting_total"] == 2
    assert figures["waiting"] == [
        {
            "conversation_id": 6,
            "customer": {"id": 6, "name": "Fay", "phone": "+447700900006"},
            "since": "2024-03-30T12:00:00Z",
            "waiting_s": 4 * 86400,
        },
        {
            "conversation_id": 4,
            "customer": {"id": 4, "name": "Dev", "phone": "+447700900004"},
            "since": "2024-04-02T07:00:00Z",
            "waiting_s": 29 * 3600,
        },
    ]


def test_delivery_outcomes_by_error_code(seeded) -> None:
    figures = report(seeded)
    assert figures["delivery_total"] == 9
    assert [(d["status"], d["error_code"], d["count"], d["share"]) for d in figures["delivery"]] == [
        ("delivered", None, 5, 0.5556),
        ("sent", None, 1, 0.1111),
        ("pending", None, 1, 0.1111),
        ("undelivered", 30007, 1, 0.1111),
        ("failed", 63016, 1, 0.1111),
    ]
    reasons = {d["error_code"]: d["reason"] for d in figures["delivery"]}
    assert "spam" in reasons[30007] and "24 hours" in reasons[63016]


def test_opt_outs_and_opt_ins_per_week(seeded) -> None:
    assert report(seeded)["consent"] == [
        {"week": "2024-03-25", "opt_out": 1, "opt_in": 0},
        {"week": "2024-04-01", "opt_out": 1, "opt_in": 1},
    ]


def test_a_period_with_nothing_in_it(seeded) -> None:
    figures = report(seeded, "2023-01-01", "2023-01-03")
    assert figures["days"] == [day("2023-01-01"), day("2023-01-02"), day("2023-01-03")]
    assert figures["first_response"]["responses"] == 0 and figures["first_response"]["median_s"] is None
    assert figures["first_response"]["by_staff"] == [] and figures["delivery"] == []
    assert figures["consent"] == [
        {"week": "2022-12-26", "opt_out": 0, "opt_in": 0},
        {"week": "2023-01-02", "opt_out": 0, "opt_in": 0},
    ]
    assert figures["waiting_total"] == 2  # "now" does not depend on the period


# ---- periods, without a database ------------------------------------------------------------


def test_days_across_daylight_saving_changes_last_23_and_25_hours() -> None:
    spring = reports.parse_period("2024-03-30", "2024-04-01", LONDON, NOW)
    assert [(d, hi - lo) for d, lo, hi in spring.days] == [
        (date(2024, 3, 30), timedelta(hours=24)),
        (date(2024, 3, 31), timedelta(hours=23)),
        (date(2024, 4, 1), timedelta(hours=24)),
    ]
    new_york = ZoneInfo("America/New_York")
    autumn = reports.parse_period("2024-11-03", "2024-11-03", new_york, NOW)
    [(_, lo, hi)] = autumn.days
    assert (lo, hi - lo) == (datetime(2024, 11, 3, 4, tzinfo=UTC), timedelta(hours=25))


def test_default_period_is_the_last_30_days_in_the_business_zone() -> None:
    late = datetime(2024, 4, 30, 23, 30, tzinfo=UTC)  # already 1 May in London
    period = reports.parse_period(None, None, LONDON, late)
    assert (period.days[0][0], period.days[-1][0], len(period.days)) == (date(2024, 4, 2), date(2024, 5, 1), 30)
    week = reports.preset("week", LONDON, late)
    assert (week.days[0][0], week.days[-1][0]) == (date(2024, 4, 29), date(2024, 5, 1))


def test_times_without_a_zone_are_the_business_zone() -> None:
    period = reports.parse_period("2024-04-01T09:00", "2024-04-01T17:00:00+00:00", LONDON, NOW)
    assert (period.since, period.until) == (datetime(2024, 4, 1, 8, tzinfo=UTC), datetime(2024, 4, 1, 17, tzinfo=UTC))


@pytest.mark.parametrize(
    ("since", "until", "name"),
    [
        ("yesterday", None, "since"),
        ("2024-04-01", "2024-13-01", "until"),
        ("2024-04-02", "2024-04-01", "until"),
        ("2022-01-01", "2024-01-01", "until"),
    ],
)
def test_bad_periods_are_refused_with_a_sentence(since, until, name) -> None:
    with pytest.raises(reports.ReportInputError) as caught:
        reports.parse_period(since, until, LONDON, NOW)
    assert caught.value.name == name and str(caught.value).endswith(".")


async def _seed_autumn(database_url: str) -> None:
    """New York, 3 November 2024 (25 hours): a customer writes and is answered three times."""
    new_york = ZoneInfo("America/New_York")
    times = [  # (local time written, local time answered)
        ("2024-11-03T00:20", "2024-11-03T00:30"),  # EDT: 600 s on the 3rd
        ("2024-11-03T23:00", "2024-11-03T23:30"),  # EST, 04:30 UTC on the 4th: 1800 s on the 3rd
        ("2024-11-04T00:00", "2024-11-04T00:10"),  # 600 s on the 4th
    ]
    db = Database(database_url)
    try:
        async with db.write() as session:
            await session.execute(
                insert(Staff).values(id=ANN, email="ann@example.com", name="Ann", role="manager", password_hash="x")
            )
            await session.execute(insert(Customer).values(id=1, phone="+12125550100"))
            await session.execute(insert(Conversation).values(id=1, customer_id=1, status="open", last_activity_at=NOW))
            for asked, answered in times:
                for local, inbound in ((asked, True), (answered, False)):
                    moment = datetime.fromisoformat(local).replace(tzinfo=new_york).astimezone(UTC)
                    await session.execute(
                        insert(Message).values(
                            conversation_id=1,
                            direction="inbound" if inbound else "outbound",
                            channel="sms",
                            from_addr="a",
                            to_addr="b",
                            body="",
                            media=[],
                            status="received" if inbound else "delivered",
                            staff_id=None if inbound else ANN,
                            created_at=moment,
                            updated_at=moment,
                        )
                    )
            await session.execute(text(reports.BACKFILL_WAITS))
            await session.commit()
    finally:
        await db.dispose()


def test_a_25_hour_day_keeps_its_late_evening(database_url) -> None:
    asyncio.run(_seed_autumn(database_url))
    period = reports.parse_period("2024-11-03", "2024-11-04", ZoneInfo("America/New_York"), NOW)
    figures = asyncio.run(_report(database_url, period))
    assert [(d["date"], d["inbound"]["sms"], d["outbound"]["sms"]) for d in figures["days"]] == [
        ("2024-11-03", 2, 2),
        ("2024-11-04", 1, 1),
    ]
    assert [(d["date"], d["responses"], d["median_s"]) for d in figures["first_response"]["days"]] == [
        ("2024-11-03", 2, 1200),
        ("2024-11-04", 1, 600),
    ]
