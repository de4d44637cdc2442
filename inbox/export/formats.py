"""Turning batches of rows into CSV, JSON or NDJSON bytes, in the export's column order."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from inbox.csv_cells import FORMULA_TRIGGERS, csv_cell, neutralise_formula
from inbox.export.query import ExportQuery
from inbox.store import iso

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
BOM = "\ufeff".encode()

Rows = Sequence[Sequence[Any]]  # the driver's tuples, in BatchQuery's column order
CustomerCells = tuple[Any, Any]  # (name, phone) as the format writes them
Customers = dict[int, CustomerCells]  # by conversation id
Senders = dict[int | None, Any]  # by staff id: the email as the format writes it


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

    def customer(self, name: str | None, phone: str | None) -> CustomerCells:
        return (name, phone)

    def sender(self, email: str | None) -> Any:
        return email

    def batch(self, rows: Rows, customers: Customers, senders: Senders, first: bool) -> bytes:
        raise NotImplementedError

    def notes(self, rows: Rows, customers: Customers, senders: Senders, first: bool) -> bytes:
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

    def customer(self, name: str | None, phone: str | None) -> CustomerCells:
        return (csv_cell(neutralise_formula(name) or ""), csv_cell(neutralise_formula(phone) or ""))

    def sender(self, email: str | None) -> str:
        return csv_cell(neutralise_formula(email) or "")

    def batch(self, rows: Rows, customers: Customers, senders: Senders, first: bool) -> bytes:
        lines: list[str] = []
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
            urls = "" if media == "[]" else csv_cell(neutralise_formula(" ".join(_media_urls(media))) or "")
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

    def notes(self, rows: Rows, customers: Customers, senders: Senders, first: bool) -> bytes:
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

    def _lines(self, rows: Rows, customers: Customers, senders: Senders) -> bytes:
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

    def batch(self, rows: Rows, customers: Customers, senders: Senders, first: bool) -> bytes:
        return self._lines(rows, customers, senders)

    def _note_lines(self, rows: Rows, customers: Customers, senders: Senders) -> bytes:
        return self._encoder.encode_lines(
            [
                _JsonNote("note", note_id, cid, *customers[cid], senders[staff_id], body, iso(created))
                for note_id, cid, staff_id, body, created in rows
            ]
        )

    def notes(self, rows: Rows, customers: Customers, senders: Senders, first: bool) -> bytes:
        return self._note_lines(rows, customers, senders)


class _JsonFormatter(_NdjsonFormatter):
    """One array, one message per line. Encoded JSON holds no raw newline, so the line breaks
    encode_lines puts between messages are the only ones and become the commas."""

    def head(self) -> bytes:
        return b"["

    def batch(self, rows: Rows, customers: Customers, senders: Senders, first: bool) -> bytes:
        lines = self._lines(rows, customers, senders)
        return (b"\n" if first else b",\n") + lines[:-1].replace(b"\n", b",\n")

    def notes(self, rows: Rows, customers: Customers, senders: Senders, first: bool) -> bytes:
        lines = self._note_lines(rows, customers, senders)
        return (b"\n" if first else b",\n") + lines[:-1].replace(b"\n", b",\n")

    def tail(self) -> bytes:
        return b"\n]\n"


def formatter(query: ExportQuery) -> _Formatter:
    if query.format == "csv":
        return _CsvFormatter(query.bom)
    return _JsonFormatter() if query.format == "json" else _NdjsonFormatter()
