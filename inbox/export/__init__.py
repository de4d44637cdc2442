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

from inbox.export.audit import AuditEntry, audit_entries, audit_entry, finish_audit, start_audit
from inbox.export.formats import COLUMNS, formatter
from inbox.export.query import (
    FORMATS,
    MEDIA_TYPES,
    ExportInputError,
    ExportQuery,
    parse_moment,
    parse_query,
    resolve_staff,
)
from inbox.export.slots import MAX_CONCURRENT_EXPORTS, ExportSlots
from inbox.export.streaming import ExportFailed, describe_failure, stream

__all__ = [
    "COLUMNS",
    "FORMATS",
    "MAX_CONCURRENT_EXPORTS",
    "MEDIA_TYPES",
    "AuditEntry",
    "ExportFailed",
    "ExportInputError",
    "ExportQuery",
    "ExportSlots",
    "audit_entries",
    "audit_entry",
    "describe_failure",
    "finish_audit",
    "formatter",
    "parse_moment",
    "parse_query",
    "resolve_staff",
    "start_audit",
    "stream",
]
