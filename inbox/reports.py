"""The figures behind the reports page and `GET /api/reports`, each computed by one SQL aggregate.

    parse_period(since, until, zone, now) -> Period      the days and weeks of a period, in the business's zone
    build(connection, period, now) -> dict                every figure, in the API's shape

Nothing loads messages into Python: the database counts, groups, ranks and interpolates, and
only the aggregates (one row per day, staff member, status, week, waiting conversation) come
back. The same SQL runs on SQLite and PostgreSQL.

Days and weeks follow the business's time zone (`INBOX_TIMEZONE`). Their edges are computed
here, in Python, as UTC instants (so a day across a daylight-saving change lasts 23 or 25 hours),
and handed to the database as a small table of buckets (`k`, `lo`, `hi`) that rows join on
`lo <= created_at < hi`, an index range per bucket.

What counts:

- in/out per day: every inbound message; every outbound message (automatic answers included,
  whatever became of it) except scheduled ones not sent yet and canceled ones;
- a *wait* starts with a customer's message (not a STOP/START/HELP keyword: those are answered
  by the keyword handling) that no staff reply has followed yet; the *first response* is the
  first staff reply after it (automatic answers are not replies; a reply is one whatever its
  delivery outcome). Its time is counted on the day of the reply; the customer's message may
  lie before the period. When a staff reply is queued, the start of the wait it ends is stored
  on it (`messages.wait_started_at`, `wait_started`; only staff replies have one), so the report
  reads the period's replies only: working it out from the history at report time took seconds
  on 10M messages (a sort of the period's rows by conversation, and a probe per conversation
  for a wait begun before the period);
- median and 90th percentile interpolate linearly between ranks (PostgreSQL's percentile_cont);
- waiting now: open conversations with a wait not yet answered, oldest first;
- delivery: outbound messages of the period by outcome and Twilio error code;
- consent: ledger records (by when they happened) per week, weeks starting on Monday; the first
  and last week count only the period's days.
"""

# ruff: noqa: S608 - the SQL is assembled from constants of this module; every value is a bound parameter

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, SupportsFloat, TypedDict
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from inbox.twilio.errors import EXPLANATIONS

if TYPE_CHECKING:
    from inbox.db import Database

MAX_DAYS = 366  # one year and a day: the bucket table stays small
DEFAULT_DAYS = 30
WAITING_LIMIT = 200
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# The outcomes of an outbound message, in the order they are shown.
OUTCOMES = ("delivered", "sent", "pending", "undelivered", "failed")
OUTCOME_WORDS = {
    "delivered": "Delivered to the customer's phone.",
    "sent": "Accepted by the carrier; no delivery receipt (yet).",
    "pending": "Not yet handed to the carrier.",
    "undelivered": "The carrier could not deliver it; no error code was given.",
    "failed": "It never left; no error code was given.",
}


def outcome_of(status: str) -> str:
    """An outbound message's status as a delivery outcome (OUTCOMES)."""
    if status in ("delivered", "read"):
        return "delivered"
    return status if status in ("sent", "undelivered", "failed") else "pending"


class ReportInputError(ValueError):
    """A period that makes no sense; `str()` is one sentence for a person, `name` the parameter."""

    def __init__(self, name: str, sentence: str) -> None:
        super().__init__(sentence)
        self.name = name


# One day or week of a period: (its local date, or Monday; lo; hi), lo and hi UTC instants.
Bucket = tuple[date, datetime, datetime]
# (replies, median seconds, 90th percentile seconds); no replies: (0, None, None).
Figures = tuple[int, float | None, float | None]


# ---- the shape of `build`'s answer (GET /api/reports; README, "Reports") --------------------


class ByChannel(TypedDict):
    sms: int
    whatsapp: int


class DayCounts(TypedDict):
    date: str
    inbound: ByChannel
    outbound: ByChannel


class DayResponses(TypedDict):
    date: str
    responses: int
    median_s: float | None
    p90_s: float | None


class StaffRef(TypedDict):
    id: int
    name: str


class StaffResponses(TypedDict):
    staff: StaffRef
    replies: int
    median_s: float | None


class FirstResponse(TypedDict):
    responses: int
    median_s: float | None
    p90_s: float | None
    days: list[DayResponses]
    by_staff: list[StaffResponses]


class CustomerRef(TypedDict):
    id: int
    name: str | None
    phone: str


class Waiting(TypedDict):
    conversation_id: int
    customer: CustomerRef
    since: str
    waiting_s: int


class Delivery(TypedDict):
    status: str
    error_code: int | None
    reason: str
    count: int
    share: float


class ConsentWeek(TypedDict):
    week: str
    opt_out: int
    opt_in: int


class Report(TypedDict):
    since: str
    until: str
    timezone: str
    days: list[DayCounts]
    first_response: FirstResponse
    waiting: list[Waiting]
    waiting_total: int
    delivery: list[Delivery]
    delivery_total: int
    consent: list[ConsentWeek]


@dataclass(frozen=True)
class Period:
    since: datetime  # inclusive, UTC
    until: datetime  # exclusive, UTC
    zone: ZoneInfo
    days: tuple[Bucket, ...]  # (local date, lo, hi), clipped to the period
    weeks: tuple[Bucket, ...]  # (Monday, lo, hi), clipped to the period


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(), tzinfo=zone).astimezone(UTC)


def _moment(value: str, name: str, zone: ZoneInfo, *, end: bool) -> datetime:
    """A date (its start, or with `end` the start of the next day) or a date-time (naive: the
    business's zone) as a UTC instant."""
    sentence = (
        f"{name} must be an ISO 8601 date or date and time, such as 2024-05-01 or 2024-05-01T09:30:00Z; "
        f"{value[:40]!r} is not."
    )
    try:
        day = date.fromisoformat(value)
    except ValueError:
        day = None
    try:
        if day is not None:
            return local_midnight(day + timedelta(days=1) if end else day, zone)
        moment = datetime.fromisoformat(value)
        return (moment.replace(tzinfo=zone) if moment.tzinfo is None else moment).astimezone(UTC)
    except (ValueError, OverflowError):
        raise ReportInputError(name, sentence) from None


def _buckets(starts: list[date], since: datetime, until: datetime, zone: ZoneInfo, step: int) -> tuple[Bucket, ...]:
    buckets: list[Bucket] = []
    for start in starts:
        lo = max(local_midnight(start, zone), since)
        hi = min(local_midnight(start + timedelta(days=step), zone), until)
        buckets.append((start, lo, hi))
    return tuple(buckets)


def make_period(since: datetime, until: datetime, zone: ZoneInfo) -> Period:
    if until <= since:
        raise ReportInputError("until", "until must come after since.")
    first = since.astimezone(zone).date()
    last = (until - timedelta(microseconds=1)).astimezone(zone).date()
    count = (last - first).days + 1
    if count > MAX_DAYS:
        raise ReportInputError("until", f"A report covers at most {MAX_DAYS} days; this period has {count}.")
    days = [first + timedelta(days=i) for i in range(count)]
    monday = first - timedelta(days=first.weekday())
    weeks = [monday + timedelta(weeks=i) for i in range((last - monday).days // 7 + 1)]
    return Period(since, until, zone, _buckets(days, since, until, zone, 1), _buckets(weeks, since, until, zone, 7))


def parse_period(since: str | None, until: str | None, zone: ZoneInfo, now: datetime) -> Period:
    """The period asked for; by default the last 30 days (today and the 29 before, local)."""
    since, until = (since or "").strip() or None, (until or "").strip() or None
    today = now.astimezone(zone).date()
    end = _moment(until, "until", zone, end=True) if until else local_midnight(today + timedelta(days=1), zone)
    if since:
        start = _moment(since, "since", zone, end=False)
    else:
        last = (end - timedelta(microseconds=1)).astimezone(zone).date()
        start = local_midnight(last - timedelta(days=DEFAULT_DAYS - 1), zone)
    return make_period(start, end, zone)


def preset(name: str, zone: ZoneInfo, now: datetime) -> Period:
    """`week`: this week so far (from Monday); `30d`: the last 30 days, today included."""
    today = now.astimezone(zone).date()
    tomorrow = local_midnight(today + timedelta(days=1), zone)
    if name == "week":
        return make_period(local_midnight(today - timedelta(days=today.weekday()), zone), tomorrow, zone)
    return make_period(local_midnight(today - timedelta(days=DEFAULT_DAYS - 1), zone), tomorrow, zone)


# ---- SQL ------------------------------------------------------------------------------------


def _offset(zone: ZoneInfo, moment: datetime) -> int:
    offset = moment.astimezone(zone).utcoffset()
    if offset is None:  # never: a moment in a ZoneInfo always has an offset
        raise ValueError(f"{zone.key} gives {moment} no UTC offset")
    return int(offset.total_seconds())


def _offset_changes(period: Period) -> list[tuple[datetime, int]]:
    """(the first instant of a new UTC offset, that offset) for each change inside the period."""
    changes: list[tuple[datetime, int]] = []
    for _, lo, hi in period.days:
        end = hi - timedelta(seconds=1)
        if _offset(period.zone, lo) == _offset(period.zone, end):
            continue
        low, high = lo, end  # the offset differs between them: find the second it changes
        while (high - low) > timedelta(seconds=1):
            middle = low + (high - low) / 2
            middle = middle.replace(microsecond=0)
            if _offset(period.zone, middle) == _offset(period.zone, lo):
                low = middle
            else:
                high = middle
        changes.append((high, _offset(period.zone, high)))
    return changes


class _Sql:
    """The few places where the two databases differ: how an instant is bound and subtracted."""

    def __init__(self, dialect: str) -> None:
        self.pg = dialect == "postgresql"

    def bind(self, moment: datetime) -> datetime | str:
        # SQLite holds SQLAlchemy's text form of naive UTC; PostgreSQL a timestamptz.
        return moment if self.pg else moment.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")

    def param(self, name: str) -> str:
        return f"CAST(:{name} AS timestamptz)" if self.pg else f":{name}"

    def seconds(self, later: str, earlier: str) -> str:
        if self.pg:
            return f"EXTRACT(EPOCH FROM ({later} - {earlier}))"
        return f"((julianday({later}) - julianday({earlier})) * 86400.0)"

    def epoch(self, column: str) -> str:
        """Whole seconds since 1970 (UTC), as an integer."""
        if self.pg:
            return f"CAST(FLOOR(EXTRACT(EPOCH FROM {column})) AS bigint)"
        return f"CAST(strftime('%s', {column}) AS INTEGER)"

    def local_day(self, column: str, period: Period, params: dict[str, Any]) -> str:
        """The index, in `period.days`, of the local day holding the instant `column`: whole
        seconds plus the zone's offset, divided into days, one CASE branch per offset in force
        during the period (two across a daylight-saving change). For rows inside the period."""
        first = period.days[0][0]
        midnight = local_midnight(first, period.zone)
        base = int(midnight.timestamp()) + _offset(period.zone, midnight)
        branches: list[tuple[str, int]] = []  # (the bound instant an offset starts at, that offset)
        instant = period.since
        for change, _ in _offset_changes(period):
            params[f"change{len(branches)}"] = self.bind(change)
            branches.append((self.param(f"change{len(branches)}"), _offset(period.zone, instant)))
            instant = change
        last = _offset(period.zone, instant)
        seconds = self.epoch(column)
        day = "(({s} + {o} - {b}) / 86400)"
        if not branches:
            return day.format(s=seconds, o=last, b=base)
        cases = " ".join(f"WHEN {column} < {at} THEN {day.format(s=seconds, o=o, b=base)}" for at, o in branches)
        return f"CASE {cases} ELSE {day.format(s=seconds, o=last, b=base)} END"

    def read(self, value: datetime | str | None) -> datetime | None:
        return None if value is None else self.instant(value)

    def instant(self, value: datetime | str) -> datetime:
        """A column's instant as the driver gives it (SQLite: SQLAlchemy's text of naive UTC)."""
        if isinstance(value, datetime):
            return value.astimezone(UTC)
        return datetime.fromisoformat(value).replace(tzinfo=UTC)

    def buckets(self, buckets: tuple[Bucket, ...], prefix: str, params: dict[str, Any]) -> str:
        """`name(k, lo, hi) AS (VALUES ...)` with the instants bound as parameters."""
        rows = []
        for k, (_, lo, hi) in enumerate(buckets):
            params[f"{prefix}lo{k}"], params[f"{prefix}hi{k}"] = self.bind(lo), self.bind(hi)
            rows.append(f"({k}, {self.param(f'{prefix}lo{k}')}, {self.param(f'{prefix}hi{k}')})")
        return f"{prefix}buckets(k, lo, hi) AS (VALUES {', '.join(rows)})"


# A staff member's reply: what ends a wait. Automatic answers have no staff_id and an auto_reply.
REPLY = (
    "{m}.direction = 'outbound' AND {m}.staff_id IS NOT NULL AND {m}.auto_reply IS NULL "
    "AND {m}.status NOT IN ('scheduled', 'canceled')"
)
# A customer's message that asks for an answer (keywords are answered by the keyword handling).
ASK = "{m}.direction = 'inbound' AND {m}.keyword IS NULL"
# The first unanswered customer message of a conversation `{c}` before the instant `{before}`.
FIRST_UNANSWERED = (
    "(SELECT MIN(i.created_at) FROM messages i WHERE i.conversation_id = {c} AND "
    + ASK.format(m="i")
    + " AND i.created_at < {before} AND i.created_at > COALESCE((SELECT MAX(p.created_at) FROM messages p "
    "WHERE p.conversation_id = {c} AND " + REPLY.format(m="p") + " AND p.created_at < {before}), {epoch}))"
)


def _days_sql(sql: _Sql, period: Period, params: dict[str, Any]) -> str:
    """Messages per day, direction, channel, outcome and error code: the per-day chart and the
    delivery outcomes both add these up (one pass over the period's rows, index-only)."""
    return (
        f"WITH {sql.buckets(period.days, 'd', params)} "
        "SELECT b.k, m.direction, m.channel, m.status, m.error_code, COUNT(*) "
        "FROM dbuckets b CROSS JOIN messages m "
        "WHERE m.created_at >= b.lo AND m.created_at < b.hi AND m.status NOT IN ('scheduled', 'canceled') "
        "GROUP BY b.k, m.direction, m.channel, m.status, m.error_code"
    )


def _percentile(p10: int) -> str:
    """The p10/10 percentile of `secs` over ranks `i` (0-based) of `n` rows, interpolated."""
    lo = f"(((n - 1) * {p10}) / 10)"
    frac = f"((((n - 1) * {p10}) % 10) / 10.0)"
    return (
        f"SUM(CASE WHEN i = {lo} THEN secs * (1 - {frac}) ELSE 0 END)"
        f" + SUM(CASE WHEN i = {lo} + 1 THEN secs * {frac} ELSE 0 END)"
    )


def _first_response_sql(sql: _Sql, period: Period, params: dict[str, Any]) -> str:
    since, until = sql.param("since"), sql.param("until")
    return f"""
WITH resp AS (
  SELECT {sql.local_day("m.created_at", period, params)} AS day, m.staff_id,
         {sql.seconds("m.created_at", "m.wait_started_at")} AS secs
  FROM messages m
  WHERE m.created_at >= {since} AND m.created_at < {until} AND m.wait_started_at IS NOT NULL
    AND m.status NOT IN ('scheduled', 'canceled')
)
{_PERCENTILES_PG if sql.pg else _PERCENTILES}"""


async def wait_started(session: AsyncSession, conversation_id: int, before: datetime) -> datetime | None:
    """When the wait that a staff reply written at `before` ends began: the customer's first
    message since the last staff reply, or None (then the reply is not a first response).
    Called as the reply is queued (inbox.outbound), stored on it as `wait_started_at`."""
    connection = await session.connection()
    sql = _Sql(connection.dialect.name)
    statement = FIRST_UNANSWERED.format(c=":conversation", before=sql.param("before"), epoch=sql.param("epoch"))
    value = await connection.scalar(
        text("SELECT " + statement),
        {"conversation": conversation_id, "before": sql.bind(before), "epoch": sql.bind(EPOCH)},
    )
    return sql.read(value)


# Every staff reply's wait_started_at from the history, in one statement (the migration that
# added the column runs a copy of it; tests and benchmarks that write rows directly use this).
BACKFILL_WAITS = f"""
WITH w AS (
  SELECT m.id, m.conversation_id, m.created_at,
         CASE WHEN m.direction = 'inbound' THEN 1 ELSE 0 END AS asks,
         CASE WHEN m.direction = 'outbound' THEN 1 ELSE 0 END AS answers
  FROM messages m
  WHERE ({ASK.format(m="m")}) OR ({REPLY.format(m="m")})
),
g AS (
  SELECT id, conversation_id, created_at, asks, answers,
         COALESCE(SUM(answers) OVER (PARTITION BY conversation_id ORDER BY created_at, id
                                     ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS turn
  FROM w
),
t AS (
  SELECT MIN(CASE WHEN asks = 1 THEN created_at END) AS asked, MAX(CASE WHEN answers = 1 THEN id END) AS reply_id
  FROM g GROUP BY conversation_id, turn
)
UPDATE messages SET wait_started_at = t.asked FROM t
WHERE messages.id = t.reply_id AND t.asked IS NOT NULL
"""


# The median and 90th percentile of `resp.secs` per day (kind 0), per staff member (kind 1) and
# over the period (kind 2). PostgreSQL has percentile_cont; SQLite ranks and interpolates the
# same way (position p * (n - 1) between the ranks either side).
_PERCENTILES_PG = """
SELECT CASE WHEN GROUPING(day) = 0 THEN 0 WHEN GROUPING(staff_id) = 0 THEN 1 ELSE 2 END AS kind,
       CASE WHEN GROUPING(day) = 0 THEN day WHEN GROUPING(staff_id) = 0 THEN staff_id ELSE 0 END AS k,
       COUNT(*) AS n,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY CAST(secs AS double precision)) AS median,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY CAST(secs AS double precision)) AS p90
FROM resp GROUP BY GROUPING SETS ((day), (staff_id), ())
"""
_PERCENTILES = f"""
, parts AS (
  SELECT 0 AS kind, day AS k, secs FROM resp
  UNION ALL SELECT 1 AS kind, staff_id AS k, secs FROM resp
  UNION ALL SELECT 2 AS kind, 0 AS k, secs FROM resp
),
ranked AS (
  SELECT kind, k, secs,
         ROW_NUMBER() OVER (PARTITION BY kind, k ORDER BY secs) - 1 AS i,
         COUNT(*) OVER (PARTITION BY kind, k) AS n
  FROM parts
)
SELECT kind, k, MAX(n) AS n, {_percentile(5)} AS median, {_percentile(9)} AS p90
FROM ranked GROUP BY kind, k
"""


def _waiting_sql(sql: _Sql) -> str:
    first = FIRST_UNANSWERED.format(c="c.id", before=sql.param("now"), epoch=sql.param("epoch"))
    # A conversation whose last message is a staff reply cannot be waiting: skip the subqueries.
    return f"""
WITH candidates AS MATERIALIZED (
  SELECT c.id AS conversation_id, c.customer_id, {first} AS since
  FROM conversations c
  LEFT JOIN messages lm ON lm.id = c.last_message_id
  WHERE c.status = 'open' AND (lm.id IS NULL OR NOT ({REPLY.format(m="lm")}))
),
waiting AS (
  SELECT conversation_id, customer_id, since, COUNT(*) OVER () AS total
  FROM candidates WHERE since IS NOT NULL
  ORDER BY since, conversation_id
  LIMIT :limit
)
SELECT w.conversation_id, w.since, w.total, cu.id AS customer_id, cu.name, cu.whatsapp_profile_name, cu.phone
FROM waiting w JOIN customers cu ON cu.id = w.customer_id
ORDER BY w.since, w.conversation_id
"""


def _consent_sql(sql: _Sql, period: Period, params: dict[str, Any]) -> str:
    return (
        f"WITH {sql.buckets(period.weeks, 'w', params)} "
        "SELECT b.k, r.action, COUNT(*) FROM wbuckets b CROSS JOIN consent_records r "
        "WHERE r.occurred_at >= b.lo AND r.occurred_at < b.hi GROUP BY b.k, r.action"
    )


def _round(value: SupportsFloat | None) -> float | None:
    return None if value is None else round(float(value), 3)


def reason(outcome: str, code: int | None) -> str:
    if code is None:
        return OUTCOME_WORDS[outcome]
    return EXPLANATIONS.get(code, f"Twilio error {code}.")


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


async def build(connection: AsyncConnection, period: Period, now: datetime) -> Report:
    """Every figure of the period, in `GET /api/reports`'s shape (docs/API.md)."""
    sql = _Sql(connection.dialect.name)
    base = {"since": sql.bind(period.since), "until": sql.bind(period.until), "epoch": sql.bind(EPOCH)}

    # Messages in and out per day, by channel: zeros for the days with none.
    days: list[DayCounts] = [
        {"date": day.isoformat(), "inbound": {"sms": 0, "whatsapp": 0}, "outbound": {"sms": 0, "whatsapp": 0}}
        for day, _, _ in period.days
    ]
    params: dict[str, Any] = {}
    outcome_counts: dict[tuple[str, int | None], int] = {}
    rows = await connection.execute(text(_days_sql(sql, period, params)), params)
    for k, direction, channel, status, code, count in rows:
        if direction in ("inbound", "outbound") and channel in ("sms", "whatsapp"):
            days[k][direction][channel] += count
        if direction == "outbound":
            outcome = outcome_of(status)
            outcome_counts[(outcome, code)] = outcome_counts.get((outcome, code), 0) + count

    # First responses: per day, per staff member, and over the whole period.
    params = dict(base)
    per_day: dict[int, Figures] = {}
    per_staff: dict[int, Figures] = {}
    overall: Figures = (0, None, None)
    for kind, k, n, median, p90 in await connection.execute(text(_first_response_sql(sql, period, params)), params):
        figures: Figures = (int(n), _round(median), _round(p90))
        if kind == 0:
            per_day[int(k)] = figures
        elif kind == 1:
            per_staff[int(k)] = figures
        else:
            overall = figures
    names: dict[int, str] = {}
    if per_staff:
        ids = sorted(per_staff)
        marks = ", ".join(f":s{i}" for i in range(len(ids)))
        result = await connection.execute(
            text(f"SELECT id, name, email FROM staff WHERE id IN ({marks})"), {f"s{i}": v for i, v in enumerate(ids)}
        )
        names = {row.id: row.name or row.email for row in result}
    by_staff: list[StaffResponses] = sorted(
        (
            {"staff": {"id": sid, "name": names.get(sid, f"Staff #{sid}")}, "replies": n, "median_s": median}
            for sid, (n, median, _) in per_staff.items()
        ),
        key=lambda entry: (-entry["replies"], entry["staff"]["name"], entry["staff"]["id"]),
    )
    first_response: FirstResponse = {
        "responses": overall[0],
        "median_s": overall[1],
        "p90_s": overall[2],
        "days": [
            {
                "date": day.isoformat(),
                "responses": per_day.get(k, (0, None, None))[0],
                "median_s": per_day.get(k, (0, None, None))[1],
                "p90_s": per_day.get(k, (0, None, None))[2],
            }
            for k, (day, _, _) in enumerate(period.days)
        ],
        "by_staff": by_staff,
    }

    # Conversations waiting for an answer now, oldest first.
    waiting: list[Waiting] = []
    waiting_total = 0
    result = await connection.execute(
        text(_waiting_sql(sql)), {"now": sql.bind(now), "epoch": base["epoch"], "limit": WAITING_LIMIT}
    )
    for row in result:
        waiting_total = row.total
        since = sql.instant(row.since)  # never NULL: the query keeps waits that have begun
        waiting.append(
            {
                "conversation_id": row.conversation_id,
                "customer": {"id": row.customer_id, "name": row.name or row.whatsapp_profile_name, "phone": row.phone},
                "since": iso(since),
                "waiting_s": max(0, round((now - since).total_seconds())),
            }
        )

    # Delivery outcomes of the period's outbound messages, as a share of them.
    outcomes = [(outcome, code, count) for (outcome, code), count in outcome_counts.items()]
    sent = sum(count for _, _, count in outcomes)
    outcomes.sort(key=lambda o: (OUTCOMES.index(o[0]), -o[2], o[1] if o[1] is not None else -1))
    delivery: list[Delivery] = [
        {
            "status": outcome,
            "error_code": code,
            "reason": reason(outcome, code),
            "count": count,
            "share": round(count / sent, 4) if sent else 0.0,
        }
        for outcome, code, count in outcomes
    ]

    # Opt-outs and opt-ins per week.
    consent: list[ConsentWeek] = [
        {"week": monday.isoformat(), "opt_out": 0, "opt_in": 0} for monday, _, _ in period.weeks
    ]
    params = {}
    for k, action, count in await connection.execute(text(_consent_sql(sql, period, params)), params):
        if action in ("opt_out", "opt_in"):
            consent[k][action] += count

    return {
        "since": iso(period.since),
        "until": iso(period.until),
        "timezone": period.zone.key,
        "days": days,
        "first_response": first_response,
        "waiting": waiting,
        "waiting_total": waiting_total,
        "delivery": delivery,
        "delivery_total": sent,
        "consent": consent,
    }


async def report(db: Database, period: Period, now: datetime) -> Report:
    """`build` on a read connection of the app's database (one snapshot on PostgreSQL)."""
    async with db.read_engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            await connection.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))
            # The correlated probes make the planner's estimates large enough to start JIT
            # compilation, which cost more (about 1 s) than the whole query; sorts stay in memory.
            await connection.execute(text("SET LOCAL jit = off"))
            await connection.execute(text("SET LOCAL work_mem = '256MB'"))
        return await build(connection, period, now)
