"""Manager exports: exact CSV bytes, formula neutralising, round trips, managers only, a consistent
snapshot while messages arrive, the CLI and HTTP giving the same bytes, the audit log, bad input."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import os
import subprocess
import sys
import threading
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import update

from inbox import csv_cells, export, export_cli, store
from inbox.db import Database
from inbox.export import batches, streaming
from inbox.models import Customer, Message
from tests.support.db import rows, scalar
from tests.support.sandbox import wait_for
from tests.support.servers import ROOT
from tests.support.staff import create_staff, issue_token, signed_in_client
from tests.support.twilio import post_twilio

MANAGER = "manager@example.com"
RECEPTION = "reception@example.com"
HEADER = (
    b"message_id,sid,conversation_id,customer_name,customer_phone,channel,direction,from,to,sent_by,body,"
    b"media_urls,status,error_code,created_at,updated_at,record_type\r\n"
)
NASTY = [
    '=HYPERLINK("http://evil")',
    "+1+1",
    "-2",
    "@SUM(A1)",
    "\tstarts with a tab",
    "\rstarts with CR",
    "\nstarts with LF",
    "'already quoted",
    " =1+1 after a space",
    '\uff1dHYPERLINK("http://evil") full-width',
    "\u3000+1 after an ideographic space",
    "plain, with a comma",
    'He said "hi"\r\nand left 👋🏽',
    "emoji 👨‍👩‍👧‍👦 and عربى and 中文",
    "line one\nline two\n",
    "",
]


def moment(day: int, hour: int, minute: int = 0, second: int = 0, micro: int = 0) -> datetime:
    return datetime(2024, 5, day, hour, minute, second, micro, tzinfo=UTC)


def run(coroutine):
    return asyncio.run(coroutine)


async def _seed(database_url: str, messages: list[dict], customers: dict[str, str | None] | None = None) -> list[int]:
    """Inserts messages straight into the database (as the outbox or a webhook would); returns ids."""
    db = Database(database_url)
    ids = []
    try:
        async with db.write() as session:
            for values in messages:
                values = dict(values)
                phone = values.pop("customer")
                customer = await store.upsert_customer(session, phone, None)
                if customers and phone in customers:
                    customer.name = customers[phone]
                conversation = await store.ensure_conversation(session, customer.id)
                values.setdefault("sid", None)
                values.setdefault("channel", "sms")
                values.setdefault("direction", "inbound")
                business = "+15005550006" if values["channel"] == "sms" else "whatsapp:+14155238886"
                address = phone if values["channel"] == "sms" else f"whatsapp:{phone}"
                inbound = values["direction"] == "inbound"
                values.setdefault("from_addr", address if inbound else business)
                values.setdefault("to_addr", business if inbound else address)
                values.setdefault("status", "received" if inbound else "delivered")
                values.setdefault("media", [])
                message = await store.insert_message(session, {"conversation_id": conversation.id, **values})
                ids.append(message.id)
            await session.commit()
    finally:
        await db.dispose()
    return ids


def seed(database_url: str, messages: list[dict], customers: dict[str, str | None] | None = None) -> list[int]:
    return run(_seed(database_url, messages, customers))


def execute(database_url: str, *statements) -> None:
    async def go() -> None:
        db = Database(database_url)
        try:
            async with db.write() as session:
                for statement in statements:
                    await session.execute(statement)
                await session.commit()
        finally:
            await db.dispose()

    run(go())


@pytest.fixture
def app(serve, database_url):
    server = serve(database_url)
    manager = create_staff(database_url, MANAGER, "manager", name="Maria Manager")
    receptionist = create_staff(database_url, RECEPTION, "receptionist", name="Rita Reception")
    manager_headers = {"Authorization": f"Bearer {issue_token(database_url, MANAGER)}"}
    reception_headers = {"Authorization": f"Bearer {issue_token(database_url, RECEPTION)}"}
    with httpx.Client(base_url=server.url, headers=manager_headers, timeout=30) as client:
        client.server = server
        client.database_url = database_url
        client.manager = manager
        client.receptionist = receptionist
        client.reception_headers = reception_headers
        yield client


def export_bytes(client: httpx.Client, **params) -> bytes:
    response = client.get("/api/export", params=params)
    assert response.status_code == 200, response.text
    return response.content


def inbox_cli(database_url: str, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INBOX_", "TWILIO_"))}
    env["INBOX_DATABASE_URL"] = database_url
    return subprocess.run(
        [sys.executable, "-m", "inbox.cli", "export", *args], cwd=ROOT, env=env, capture_output=True, timeout=120
    )


def read_csv(data: bytes) -> list[dict[str, str]]:
    assert data.startswith((HEADER, b"\xef\xbb\xbf" + HEADER))
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))


def unquote(cell: str) -> str:
    """Undo the neutralising rule: one leading quote goes."""
    return cell[1:] if cell.startswith("'") else cell


# ---- the exact bytes --------------------------------------------------------------------------


def test_csv_bytes_of_a_small_conversation(app) -> None:
    url = app.server.url
    assert post_twilio(url, "inbound_sms").status_code == 200  # +14155550123: "Hi, is my repair ready?"
    [reply] = seed(
        app.database_url,
        [
            {
                "customer": "+14155550123",
                "direction": "outbound",
                "sid": "SM" + "ab" * 16,
                "staff_id": app.manager.id,
                "body": 'Yes, it\'s ready: £40. Say "hi" at the desk.',
                "status": "delivered",
            }
        ],
    )
    assert post_twilio(url, "inbound_mms", From="+14155550123", Body="Here is the crack").status_code == 200
    [failed] = seed(
        app.database_url,
        [
            {
                "customer": "+14155550123",
                "direction": "outbound",
                "sid": "SM" + "cd" * 16,
                "staff_id": app.manager.id,
                "body": "=1+1 is 2",
                "status": "undelivered",
                "error_code": 30007,
            }
        ],
    )
    times = {
        1: (moment(1, 9, 30), moment(1, 9, 30)),
        reply: (moment(1, 9, 31, 2, 250000), moment(1, 9, 31, 9)),
        3: (moment(1, 9, 40), moment(1, 9, 40)),
        failed: (moment(2, 8, 0), moment(2, 8, 0, 5, 1)),
    }
    execute(
        app.database_url,
        update(Customer).values(name='Jo "JJ" Bloggs'),
        *[update(Message).where(Message.id == mid).values(created_at=c, updated_at=u) for mid, (c, u) in times.items()],
    )

    media = (
        "https://api.twilio.com/2010-04-01/Accounts/AC11111111111111111111111111111111/Messages/"
        "MM9f8e7d6c5b4a39281706f5e4d3c2b1a0/Media/ME" + "0" * 31
    )
    expected = (
        HEADER
        + (
            '1,SM0a1b2c3d4e5f60718293a4b5c6d7e8f9,1,"Jo ""JJ"" Bloggs",\'+14155550123,sms,inbound,\'+14155550123,'
            '\'+15005550006,,"Hi, is my repair ready?",,received,,2024-05-01T09:30:00Z,2024-05-01T09:30:00Z,message\r\n'
            f'2,SM{"ab" * 16},1,"Jo ""JJ"" Bloggs",\'+14155550123,sms,outbound,\'+15005550006,\'+14155550123,'
            'manager@example.com,"Yes, it\'s ready: £40. Say ""hi"" at the desk.",,delivered,,'
            "2024-05-01T09:31:02.250000Z,2024-05-01T09:31:09Z,message\r\n"
            '3,MM9f8e7d6c5b4a39281706f5e4d3c2b1a0,1,"Jo ""JJ"" Bloggs",\'+14155550123,sms,inbound,\'+14155550123,'
            f"'+15005550006,,Here is the crack,{media}1 {media}2,received,,2024-05-01T09:40:00Z,2024-05-01T09:40:00Z,message\r\n"
            f'4,SM{"cd" * 16},1,"Jo ""JJ"" Bloggs",\'+14155550123,sms,outbound,\'+15005550006,\'+14155550123,'
            "manager@example.com,'=1+1 is 2,,undelivered,30007,2024-05-02T08:00:00Z,2024-05-02T08:00:05.000001Z,message\r\n"
        ).encode()
    )
    response = app.get("/api/export", params={"format": "csv"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"].startswith('attachment; filename="inbox-export-')
    assert response.content == expected
    assert export_bytes(app, format="csv", bom="1") == b"\xef\xbb\xbf" + expected

    # The same rows as JSON: the same names, real types.
    [first, second, third, fourth] = json.loads(export_bytes(app, format="json"))
    assert list(first) == [c.decode() for c in HEADER.rstrip().split(b",")]
    assert first["from"] == "+14155550123" and first["sent_by"] is None and first["error_code"] is None
    assert second["sent_by"] == MANAGER and second["customer_name"] == 'Jo "JJ" Bloggs'
    assert third["media_urls"] == [f"{media}1", f"{media}2"]
    assert fourth["body"] == "=1+1 is 2" and fourth["error_code"] == 30007
    assert fourth["updated_at"] == "2024-05-02T08:00:05.000001Z"


# ---- spreadsheet safety and round trips ----------------------------------------------------


def test_formula_cells_are_neutralised_and_numbers_are_not(app) -> None:
    seed(
        app.database_url,
        [{"customer": "+14155550123", "body": body} for body in NASTY]
        + [{"customer": "+14155550123", "direction": "outbound", "body": "-5", "status": "failed", "error_code": -1}],
    )
    data = export_bytes(app, format="csv")
    records = read_csv(data)
    assert len(records) == len(NASTY) + 1
    for record, body in zip(records, NASTY, strict=False):
        if body and body[0] in "=+-@\t\r\n' \u3000\uff1d":
            assert record["body"] == "'" + body
        else:
            assert record["body"] == body
    for record in records:
        assert record["customer_phone"] == "'+14155550123"
        assert "'+14155550123" in (record["from"], record["to"])
        assert record["message_id"].isdigit() and record["conversation_id"] == "1"
    assert records[-1]["body"] == "'-5" and records[-1]["error_code"] == "-1"  # a number by type: untouched
    # No cell of the raw file starts a formula: after the CSV quoting is undone, each text cell is safe.
    for record in records:
        for name, cell in record.items():
            if name not in ("message_id", "conversation_id", "error_code") and cell:
                assert cell[0] not in "=+-@\t\r\n \u00a0\u3000\uff1d\uff0b\uff0d\uff20", (name, cell)


def test_emoji_newlines_and_quotes_round_trip_in_every_format(app) -> None:
    seed(
        app.database_url,
        [{"customer": "+447700900456", "channel": "whatsapp", "body": body} for body in NASTY],
        customers={"+447700900456": "Zoë «Ünïcode» 😀"},
    )
    csv_records = read_csv(export_bytes(app, format="csv", bom="1"))
    assert [unquote(r["body"]) for r in csv_records] == NASTY
    assert {unquote(r["customer_name"]) for r in csv_records} == {"Zoë «Ünïcode» 😀"}
    assert {r["from"] for r in csv_records} == {"whatsapp:+447700900456"}

    as_json = json.loads(export_bytes(app, format="json"))
    assert [m["body"] for m in as_json] == NASTY
    ndjson = export_bytes(app, format="ndjson")
    assert ndjson.endswith(b"\n") and ndjson.count(b"\n") == len(NASTY)
    as_ndjson = [json.loads(line) for line in ndjson.splitlines()]
    assert as_ndjson == as_json
    assert {m["customer_name"] for m in as_json} == {"Zoë «Ünïcode» 😀"}


def test_many_batches_make_one_valid_document(app, monkeypatch) -> None:
    monkeypatch.setattr(streaming, "BATCH_SIZE", 3)
    monkeypatch.setattr(streaming, "CUSTOMER_CACHE", 3)  # 4 customers: the cache is emptied as it goes
    ids = seed(app.database_url, [{"customer": f"+1415555{n % 4:04d}", "body": f"message {n}"} for n in range(10)])
    exported = json.loads(export_bytes(app, format="json"))
    assert [m["message_id"] for m in exported] == ids
    assert [m["customer_phone"] for m in exported] == [f"+1415555{n % 4:04d}" for n in range(10)]
    assert [json.loads(line)["message_id"] for line in export_bytes(app, format="ndjson").splitlines()] == ids
    assert [int(r["message_id"]) for r in read_csv(export_bytes(app, format="csv"))] == ids
    # An export with nothing in it is still a valid document.
    assert json.loads(export_bytes(app, format="json", since="2999-01-01")) == []
    assert export_bytes(app, format="ndjson", customer="+19995550000") == b""
    assert export_bytes(app, format="csv", channel="whatsapp") == HEADER


def test_filters(app) -> None:
    ids = seed(
        app.database_url,
        [
            {"customer": "+14155550001", "body": "a"},
            {"customer": "+14155550001", "direction": "outbound", "body": "b", "staff_id": app.manager.id},
            {"customer": "+14155550002", "channel": "whatsapp", "body": "c"},
            {
                "customer": "+14155550002",
                "channel": "whatsapp",
                "direction": "outbound",
                "body": "d",
                "staff_id": app.receptionist.id,
            },
            {"customer": "+14155550001", "body": "e"},
        ],
    )
    stamps = [moment(1, 0), moment(1, 23, 59, 59, 999999), moment(2, 0), moment(2, 12), moment(3, 0)]
    execute(
        app.database_url,
        *[update(Message).where(Message.id == i).values(created_at=t) for i, t in zip(ids, stamps, strict=True)],
    )

    def bodies(**params) -> list[str]:
        return [m["body"] for m in json.loads(export_bytes(app, format="json", **params))]

    assert bodies() == ["a", "b", "c", "d", "e"]
    assert bodies(since="2024-05-02") == ["c", "d", "e"]
    assert bodies(until="2024-05-01") == ["a", "b"]  # a date includes its whole day
    assert bodies(until="2024-05-02T12:00:00Z") == ["a", "b", "c", "d"]  # a date-time includes its instant
    assert bodies(since="2024-05-02T02:00:00+02:00", until="2024-05-02T11:59:59") == ["c"]  # offsets; naive = UTC
    assert bodies(customer="+14155550001") == ["a", "b", "e"]
    assert bodies(customer=" 14155550002") == ["c", "d"]  # a "+" that a typed URL made a space
    assert bodies(channel="whatsapp") == ["c", "d"]
    assert bodies(direction="outbound") == ["b", "d"]
    assert bodies(staff=RECEPTION) == ["d"]
    assert bodies(staff=str(app.manager.id)) == ["b"]
    assert bodies(customer="+14155550001", direction="inbound", since="2024-05-01T12:00") == ["e"]


def test_bad_input_gives_422_with_a_sentence(app) -> None:
    cases = {
        (("since", "2024-13-01"),): "invalid_since",
        (("since", "yesterday"),): "invalid_since",
        (("until", "2024-05-01T25:00"),): "invalid_until",
        (("since", "2024-05-02"), ("until", "2024-05-01")): "invalid_until",
        (("format", "xml"),): "invalid_format",
        (("channel", "fax"),): "invalid_channel",
        (("direction", "sideways"),): "invalid_direction",
        (("customer", "call me"),): "invalid_customer",
        (("staff", "nobody@example.com"),): "invalid_staff",
        (("staff", "9" * 40),): "invalid_staff",
    }
    for params, code in cases.items():
        response = app.get("/api/export", params=dict(params))
        assert response.status_code == 422, params
        body = response.json()
        assert body["error"] == code
        assert body["detail"].endswith(".") and body["detail"][0].islower() and len(body["detail"]) > 20
    assert "ISO 8601" in app.get("/api/export", params={"since": "2024-13-01"}).json()["detail"]
    assert scalar(app.database_url, "SELECT count(*) FROM export_audit") == 0  # refused exports are not exports


# ---- who may export ---------------------------------------------------------------------------


def test_receptionists_get_403_and_strangers_401(app) -> None:
    for path in ("/api/export", "/api/export?format=json", "/api/export/audit"):
        response = app.get(path, headers=app.reception_headers)
        assert response.status_code == 403
        assert response.json()["error"] == "forbidden"
        anonymous = httpx.get(app.server.url + path, timeout=10)
        assert anonymous.status_code == 401 and anonymous.json()["error"] == "not_authenticated"

    browser, _ = signed_in_client(app.server.url, RECEPTION)
    with contextlib.closing(browser):
        assert browser.get("/export").status_code == 403
        assert browser.get("/api/export").status_code == 403
    assert httpx.get(app.server.url + "/export", timeout=10).status_code in (302, 303)
    assert scalar(app.database_url, "SELECT count(*) FROM export_audit") == 0


def test_export_page_for_managers_links_the_api_and_shows_the_audit_log(app) -> None:
    seed(app.database_url, [{"customer": "+14155550123", "body": "hello"}])
    export_bytes(app, format="ndjson", channel="sms")
    browser, _ = signed_in_client(app.server.url, MANAGER)
    with contextlib.closing(browser):
        page = browser.get("/export")
        assert page.status_code == 200
        html = page.text
        assert 'action="/api/export"' in html and 'method="get"' in html
        for name in ("since", "until", "customer", "channel", "direction", "staff", "format", "bom"):
            assert f'name="{name}"' in html
        assert "<script>" not in html and "style=" not in html  # CSP: no inline scripts or styles
        assert '<span class="export-filter-name">channel</span> sms' in html and "<td>NDJSON</td>" in html
        # The form's plain GET works with the session cookie alone.
        download = browser.get("/api/export", params={"format": "csv", "since": "", "customer": "", "bom": "1"})
        assert download.status_code == 200 and download.content.startswith(b"\xef\xbb\xbf" + HEADER)


# ---- the snapshot -----------------------------------------------------------------------------


def test_an_export_holds_exactly_the_rows_of_its_snapshot(app, monkeypatch) -> None:
    ids = seed(
        app.database_url,
        [
            {"customer": "+14155550123", "direction": "outbound", "body": f"reply {n}", "status": "sent"}
            for n in range(5)
        ],
    )
    monkeypatch.setattr(streaming, "BATCH_SIZE", 2)
    original = streaming.fetch_batch
    calls = 0
    paused, release = threading.Event(), threading.Event()

    async def fetch_slowly(connection, statement, after):
        nonlocal calls
        calls += 1
        if calls == 2:  # the second page has not been read yet
            paused.set()
            await asyncio.to_thread(release.wait, 30)
        return await original(connection, statement, after)

    monkeypatch.setattr(streaming, "fetch_batch", fetch_slowly)
    with app.stream("GET", "/api/export", params={"format": "ndjson"}) as response:
        assert response.status_code == 200
        chunks = response.iter_bytes()
        received = next(chunks)
        assert paused.wait(15)
        # Meanwhile: new messages arrive and delivery receipts move the later rows on.
        seed(app.database_url, [{"customer": "+14155550123", "body": f"new {n}"} for n in range(3)])
        execute(
            app.database_url,
            update(Message).where(Message.id.in_(ids[2:])).values(status="delivered", updated_at=moment(9, 9)),
        )
        release.set()
        received += b"".join(chunks)
    exported = [json.loads(line) for line in received.splitlines()]
    assert [m["message_id"] for m in exported] == ids
    assert [m["status"] for m in exported] == ["sent"] * 5
    assert all(m["updated_at"] != "2024-05-09T09:00:00Z" for m in exported)
    assert rows(app.database_url, "SELECT row_count FROM export_audit") == [(5,)]

    monkeypatch.setattr(streaming, "fetch_batch", original)
    later = [json.loads(line) for line in export_bytes(app, format="ndjson").splitlines()]
    assert len(later) == 8 and [m["status"] for m in later[2:5]] == ["delivered"] * 3


def test_an_abandoned_download_is_audited_as_unfinished_and_frees_its_connection(app, monkeypatch) -> None:
    seed(app.database_url, [{"customer": "+14155550123", "body": f"m{n}"} for n in range(20)])
    monkeypatch.setattr(streaming, "BATCH_SIZE", 2)
    original = streaming.fetch_batch

    async def stall_after_the_first_page(connection, statement, after):
        if after:
            await asyncio.sleep(60)  # the client hangs up long before this
        return await original(connection, statement, after)

    monkeypatch.setattr(streaming, "fetch_batch", stall_after_the_first_page)
    for _ in range(10):  # more than the concurrent-export limit and the SQLite read pool
        with app.stream("GET", "/api/export", params={"format": "csv"}) as response:
            assert next(response.iter_bytes()).startswith(HEADER)
    monkeypatch.setattr(streaming, "fetch_batch", original)
    monkeypatch.setattr(streaming, "BATCH_SIZE", 5000)
    assert len(read_csv(export_bytes(app, format="csv"))) == 20
    audit = app.get("/api/export/audit").json()["exports"]
    assert len(audit) == 11
    assert audit[0]["row_count"] == 20 and audit[0]["finished_at"]
    assert all(entry["row_count"] is None and entry["finished_at"] is None for entry in audit[1:])


def test_a_fifth_export_at_once_is_refused_until_one_finishes(app, monkeypatch) -> None:
    """Each open export holds a database connection: a process streams at most four at once."""
    seed(app.database_url, [{"customer": "+14155550123", "body": f"m{n}"} for n in range(6)])
    monkeypatch.setattr(streaming, "BATCH_SIZE", 2)
    original = streaming.fetch_batch
    release = threading.Event()

    async def hold_after_the_first_page(connection, statement, after):
        if after:
            await asyncio.to_thread(release.wait, 30)
        return await original(connection, statement, after)

    monkeypatch.setattr(streaming, "fetch_batch", hold_after_the_first_page)
    with contextlib.ExitStack() as open_exports:
        downloads = []  # kept: a dropped iterator closes its response
        for _ in range(4):
            response = open_exports.enter_context(app.stream("GET", "/api/export", params={"format": "csv"}))
            downloads.append(response.iter_bytes())
            assert next(downloads[-1]).startswith(HEADER)
        refused = app.get("/api/export", params={"format": "csv"})
        assert refused.status_code == 429
        assert refused.json()["error"] == "too_many_exports"
        release.set()
    # The slots come back as the server sees each download closed, a moment after the client closes it.
    after = wait_for(
        lambda: (response := app.get("/api/export", params={"format": "csv"})).status_code != 429 and response,
        timeout=15,
        message="the export slots to come back",
    )
    assert after.status_code == 200 and len(read_csv(after.content)) == 6


# ---- the command line -------------------------------------------------------------------------


def test_cli_and_http_exports_are_byte_identical(app, tmp_path) -> None:
    seed(
        app.database_url,
        [{"customer": "+14155550123", "body": body} for body in NASTY[:6]]
        + [
            {
                "customer": "+14155550124",
                "channel": "whatsapp",
                "direction": "outbound",
                "body": "Olá 😀",
                "staff_id": app.manager.id,
            }
        ],
    )
    cases = [
        (["--format", "csv"], {"format": "csv"}),
        (
            ["--format", "csv", "--bom", "--customer", "+14155550123", "--since", "2000-01-01"],
            {"format": "csv", "bom": "1", "customer": "+14155550123", "since": "2000-01-01"},
        ),
        (["--format", "json", "--staff", MANAGER], {"format": "json", "staff": MANAGER}),
        (
            ["--format", "ndjson", "--channel", "sms", "--direction", "inbound", "--until", "2999-12-31"],
            {"format": "ndjson", "channel": "sms", "direction": "inbound", "until": "2999-12-31"},
        ),
    ]
    out = tmp_path / "out"
    out.mkdir()
    for n, (args, params) in enumerate(cases):
        target = out / f"export-{n}"
        result = inbox_cli(app.database_url, *args, "-o", str(target))
        assert result.returncode == 0, result.stderr
        assert result.stdout == b""
        from_http = export_bytes(app, **params)
        assert target.read_bytes() == from_http, args
        count = len(from_http.splitlines()) if params["format"] == "ndjson" else None
        if count is not None:
            assert result.stderr.decode().strip() == f"exported {count} messages to {target}"
    to_stdout = inbox_cli(app.database_url, "--format", "csv")
    assert to_stdout.returncode == 0 and to_stdout.stdout == export_bytes(app, format="csv")
    assert to_stdout.stderr.decode() == "exported 7 messages\n"  # no progress bar: stderr is not a terminal
    assert sorted(p.name for p in out.iterdir()) == [f"export-{n}" for n in range(4)]  # no temp files left


def test_cli_bad_input_is_one_line_and_writes_nothing(sqlite_url, tmp_path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    target = out / "out.csv"
    for args, expected in [
        (["--since", "2024-13-01"], "inbox: --since must be an ISO 8601 date"),
        (["--format", "xlsx"], "inbox: --format must be csv, json or ndjson."),
        (["--channel", "fax"], "inbox: --channel must be sms or whatsapp."),
        (["--staff", "ghost@example.com"], "inbox: --staff must be the email or id of a staff member"),
    ]:
        result = inbox_cli(sqlite_url, *args, "-o", str(target))
        assert result.returncode == 2, result.stderr
        stderr = result.stderr.decode()
        assert stderr.startswith(expected) and stderr.count("\n") == 1, stderr
        assert not target.exists()
    no_database = inbox_cli(f"sqlite+aiosqlite:///{tmp_path / 'typo.db'}", "-o", str(target))
    assert no_database.returncode == 2 and no_database.stderr.decode().startswith("inbox: there is no database at ")
    assert not (tmp_path / "typo.db").exists()
    missing_dir = inbox_cli(sqlite_url, "-o", str(out / "nowhere" / "out.csv"))
    assert missing_dir.returncode == 2 and missing_dir.stderr.decode().count("\n") == 1
    assert list(out.iterdir()) == []


def test_cli_failure_mid_export_leaves_no_file(sqlite_url, tmp_path, monkeypatch) -> None:
    seed(sqlite_url, [{"customer": "+14155550123", "body": "hello"}])
    original = export.stream

    async def failing(*args, **kwargs):
        async with contextlib.aclosing(original(*args, **kwargs)) as chunks:
            async for chunk in chunks:
                yield chunk
                raise export.ExportFailed("the database failed during the export: connection lost")

    monkeypatch.setattr(export, "stream", failing)
    monkeypatch.setenv("INBOX_DATABASE_URL", sqlite_url)
    out = tmp_path / "out"
    out.mkdir()
    target = out / "out.csv"
    target.write_bytes(b"an older export")
    args = export_cli_args(output=str(target))
    from inbox.cli import CommandError

    with pytest.raises(CommandError, match="connection lost"):
        export_cli.cmd_export(args)
    assert target.read_bytes() == b"an older export"  # untouched: the new one never completed
    assert [p.name for p in out.iterdir()] == ["out.csv"]
    assert rows(sqlite_url, "SELECT actor LIKE 'cli:%', row_count, finished_at FROM export_audit") == [(1, None, None)]


def export_cli_args(**overrides):
    import argparse

    parser = argparse.ArgumentParser()
    export_cli.add_arguments(parser)
    args = parser.parse_args([])
    for name, value in overrides.items():
        setattr(args, name, value)
    return args


# ---- the audit log ----------------------------------------------------------------------------


def test_every_export_is_audited_with_its_row_count(app, tmp_path) -> None:
    seed(
        app.database_url,
        [
            {"customer": "+14155550123", "body": "one"},
            {"customer": "+14155550124", "body": "two"},
            {"customer": "+14155550124", "channel": "whatsapp", "body": "three"},
        ],
    )
    export_bytes(app, format="csv", customer="+14155550124", since="2024-01-01", bom="1")
    result = inbox_cli(app.database_url, "--format", "ndjson", "-o", str(tmp_path / "all.ndjson"))
    assert result.returncode == 0, result.stderr

    audit = app.get("/api/export/audit").json()
    cli_entry, http_entry = audit["exports"]
    assert audit["next_before"] is None
    assert http_entry["actor"] == MANAGER and http_entry["staff_id"] == app.manager.id
    assert http_entry["format"] == "csv" and http_entry["row_count"] == 2
    assert http_entry["filters"] == {"customer": "+14155550124", "since": "2024-01-01", "bom": True}
    assert datetime.fromisoformat(http_entry["finished_at"]) >= datetime.fromisoformat(http_entry["created_at"])
    assert cli_entry["actor"].startswith("cli:") and cli_entry["staff_id"] is None
    assert cli_entry["format"] == "ndjson" and cli_entry["row_count"] == 3 and cli_entry["filters"] == {}
    assert cli_entry["finished_at"].endswith("Z")
    page = app.get("/api/export/audit", params={"limit": 1}).json()
    assert [e["id"] for e in page["exports"]] == [cli_entry["id"]] and page["next_before"] == cli_entry["id"]
    older = app.get("/api/export/audit", params={"limit": 1, "before": page["next_before"]}).json()
    assert [e["id"] for e in older["exports"]] == [http_entry["id"]]
    assert app.get("/api/export/audit", params={"limit": 0}).status_code == 422


# ---- the transcript ---------------------------------------------------------------------------


def test_transcript_prints_a_conversation_for_any_staff(app) -> None:
    seed(
        app.database_url,
        [
            {"customer": "+14155550123", "body": "<script>alert(1)</script>\nsecond line"},
            {
                "customer": "+14155550123",
                "direction": "outbound",
                "body": "Thanks!",
                "staff_id": app.receptionist.id,
                "media": [
                    {"url": "https://example.com/a.jpg", "content_type": "image/jpeg"},
                    {"url": "javascript:alert(1)", "content_type": "text/html"},
                ],
            },
        ],
        customers={"+14155550123": "Jo <b>Bloggs</b>"},
    )
    browser, _ = signed_in_client(app.server.url, RECEPTION)
    with contextlib.closing(browser):
        page = browser.get("/conversations/1/transcript")
        assert page.status_code == 200
        html = page.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert" not in html
        assert "Jo &lt;b&gt;Bloggs&lt;/b&gt;" in html
        assert 'href="/static/css/print.css" media="print"' in html
        assert "Rita Reception" in html and 'href="https://example.com/a.jpg"' in html
        assert 'href="javascript:' not in html
        assert "style=" not in html
        assert browser.get("/conversations/999/transcript").status_code == 404
    assert httpx.get(app.server.url + "/conversations/1/transcript", timeout=10).status_code in (302, 303)


# ---- the CSV writer and the timestamps --------------------------------------------------------


def test_csv_lines_are_exactly_what_csv_writer_writes() -> None:
    """The fast CSV path against the csv module, on cells full of quotes, commas and line breaks."""
    import random

    rng = random.Random(4180)
    alphabet = ['"', ",", "\r", "\n", "'", "=", "+", "-", "@", "\t", " ", "a", "Z", "9", "é", "😀", ";", "|"]

    def text(empty_ok: bool = True) -> str:
        length = rng.randint(0 if empty_ok else 1, 6)
        return "".join(rng.choice(alphabet) for _ in range(length))

    shape = export.formatter(export.parse_query(format="csv"))
    customers, senders, expected_rows, rows = {}, {None: shape.sender(None)}, [], []
    for n in range(1, 3001):
        name, phone, email = rng.choice([None, text()]), text(False), rng.choice([None, text(False)])
        urls = [text(False) for _ in range(rng.randint(0, 2))]
        media = json.dumps([{"url": url, "content_type": "image/png"} for url in urls])
        row = (
            n,
            rng.choice([None, text()]),
            n,
            text(False),
            text(False),
            text(False),
            text(False),
            n if email else None,
            text(),
            media,
            text(False),
            rng.choice([None, 0, -5, 30007]),
            "2024-05-01T09:30:00Z",
            "2024-05-01T09:30:00.000001Z",
        )
        customers[n] = shape.customer(name, phone)
        senders[row[7]] = shape.sender(email)
        rows.append(row)
        n_ = csv_cells.neutralise_formula
        expected_rows.append(
            [
                n,
                n_(row[1]),
                n,
                n_(name),
                n_(phone),
                n_(row[3]),
                n_(row[4]),
                n_(row[5]),
                n_(row[6]),
                n_(email),
                n_(row[8]),
                n_(" ".join(urls)),
                n_(row[10]),
                row[11],
                row[12],
                row[13],
                "message",
            ]
        )
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(expected_rows)
    assert shape.batch(rows, customers, senders, True).decode() == buffer.getvalue()


def test_exported_timestamps_are_the_apis_timestamps(app) -> None:
    ids = seed(app.database_url, [{"customer": "+14155550123", "body": str(n)} for n in range(6)])
    stamps = [
        datetime(2024, 1, 1, tzinfo=UTC),
        datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2000, 12, 31, 0, 0, 0, 1, tzinfo=UTC),
        datetime(2031, 7, 4, 12, 0, 0, 500000, tzinfo=UTC),
        datetime(1999, 1, 1, 1, 1, 1, 10, tzinfo=UTC),
        datetime(2024, 6, 1, 8, 0, 0, 123000, tzinfo=UTC),
    ]
    execute(
        app.database_url,
        *[
            update(Message).where(Message.id == i).values(created_at=t, updated_at=stamps[-1 - k])
            for k, (i, t) in enumerate(zip(ids, stamps, strict=True))
        ],
    )
    from_api = sorted(
        app.get("/api/conversations/1").json()["messages"], key=lambda m: m["id"]
    )  # the thread reads by time
    exported = json.loads(export_bytes(app, format="json"))  # by id
    assert [(m["created_at"], m["updated_at"]) for m in exported] == [
        (m["created_at"], m["updated_at"]) for m in from_api
    ]
    assert [m["created_at"] for m in exported] == [store.iso(t) for t in stamps]


def test_sqlite_timestamps_are_formatted_like_store_iso() -> None:
    """SQLite keeps text; the export formats it in SQL, exactly as store.iso formats what
    SQLAlchemy parses from it, including shapes SQLAlchemy itself never writes."""
    import sqlite3

    from sqlalchemy import String, column, select, table
    from sqlalchemy.dialects import sqlite as sqlite_dialect
    from sqlalchemy.dialects.sqlite import DATETIME

    stored = [
        "2024-01-01 00:00:00.000000",
        "2024-02-29 23:59:59.999999",
        "2024-01-01 00:00:00.000001",
        "2024-01-01 00:00:00",
        "2024-01-01 00:00:00.5",
        "2024-01-01 00:00:00.123",
    ]
    connection = sqlite3.connect(":memory:")
    connection.execute("CREATE TABLE t (v TEXT)")
    connection.executemany("INSERT INTO t VALUES (?)", [(value,) for value in stored])
    t = table("t", column("v", String))
    dialect = sqlite_dialect.dialect()
    sql = str(
        select(t.c.v, batches.iso_utc_sql(t.c.v, "sqlite")).compile(
            dialect=dialect, compile_kwargs={"literal_binds": True}
        )
    )
    parse = DATETIME().result_processor(dialect, None)
    for value, formatted in connection.execute(sql):
        assert formatted == store.iso(parse(value).replace(tzinfo=UTC)), value
    connection.close()


def test_cli_and_http_read_a_number_as_typed_and_a_span_back_from_now(app) -> None:
    from datetime import timedelta

    ids = seed(
        app.database_url,
        [
            {"customer": "+14155550123", "body": "this morning"},
            {"customer": "+14155550123", "body": "last week"},
            {"customer": "+14155550124", "body": "someone else"},
        ],
    )
    execute(
        app.database_url,
        update(Message).where(Message.id == ids[1]).values(created_at=datetime.now(UTC) - timedelta(days=7)),
    )
    result = inbox_cli(app.database_url, "--format", "ndjson", "--customer", "(415) 555-0123", "--since", "12h")
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["body"] for line in result.stdout.splitlines()] == ["this morning"]
    for typed in ("415.555.0123", "+1 415 555 0123", "+14155550123"):
        found = json.loads(export_bytes(app, format="json", customer=typed, since="3d"))
        assert [m["body"] for m in found] == ["this morning"], typed
    older = json.loads(export_bytes(app, format="json", customer="(415) 555-0123", until="1d"))
    assert [m["body"] for m in older] == ["last week"]
    bad = inbox_cli(app.database_url, "--format", "csv", "--since", "12 parsecs")
    assert bad.returncode != 0 and b"12h" in bad.stderr


def test_every_csv_download_writes_lines_as_csv_writer_does_with_formulas_neutralised() -> None:
    """The consent ledger and the reports write through csv_cells.csv_line: each line is what
    csv.writer writes for the same cells once text is formula-safe, numbers untouched."""
    rows = [
        ("=1+1", "+14155550123", 42, None, "plain"),
        ("-5", 'say "hi", then\r\nleave', 0, "'quoted", "\uff1dSUM(A1)"),
        (" @x", "", -3, "a,b", "\u3000=1"),
    ]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for row in rows:
        writer.writerow(
            [c if isinstance(c, int) else "" if c is None else csv_cells.neutralise_formula(c) for c in row]
        )
    assert "".join(csv_cells.csv_line(row) for row in rows) == buffer.getvalue()
    assert csv_cells.csv_line(["=cmd"]) == "'=cmd\r\n"
    assert csv_cells.csv_line([-3]) == "-3\r\n"  # a number by type is never altered
