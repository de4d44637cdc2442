"""Internal notes stay inside the team: the Twilio sandbox never receives one (every request it
got is recorded and read), the customer's transcript never shows one, the export carries them
as their own record type. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from urllib.parse import parse_qs

import pytest

from tests.support.sandbox import wait_for, wire
from tests.support.staff import create_staff, issue_token, signed_in_client

CUSTOMER = "+14155550123"
NOTE = "=Called her back; she prefers mornings (NOTE-7f3a)"
MARKER = "NOTE-7f3a"


@pytest.fixture
def wired(serve, database_url):
    with wire(serve, database_url, receptionist="Rosa") as wired:
        create_staff(database_url, "boss@example.com", role="manager", name="Boss")
        wired.boss = {"Authorization": f"Bearer {issue_token(database_url, 'boss@example.com')}"}
        yield wired


def test_a_note_never_leaves_the_team_and_is_in_the_export(wired) -> None:
    result = asyncio.run(wired.sandbox.receive_from_customer(from_=CUSTOMER, to="+15005550007", body="Is it fixed?"))
    assert result["webhook_status"] == 200
    [conversation] = wired.api.get("/api/conversations").json()["conversations"]
    cid = conversation["id"]

    note = wired.api.post(f"/api/conversations/{cid}/notes", json={"body": NOTE})
    assert note.status_code == 201, note.text
    # A reply after the note: once it is delivered, the outbox has sent everything queued before it.
    reply = wired.api.post(f"/api/conversations/{cid}/messages", json={"body": "Your repair is ready."})
    assert reply.status_code == 202
    wait_for(
        lambda: (
            [m["status"] for m in wired.sandbox.conversation_with(CUSTOMER) if m["direction"] == "outbound-api"]
            == ["delivered"]
        ),
        message="the reply delivered",
    )

    # every request the sandbox received: one message created, the reply; the note in none of them
    assert wired.seen, "the sandbox recorded nothing"
    assert all(MARKER.encode() not in body for _, _, body in wired.seen)
    created = [
        parse_qs(body.decode())
        for method, path, body in wired.seen
        if method == "POST" and path.endswith("/Messages.json")
    ]
    assert [form["Body"] for form in created] == [["Your repair is ready."]]
    assert all(MARKER not in json.dumps(m) for m in wired.sandbox.messages.values())

    # the thread shows it to the team; the customer's transcript does not
    thread = wired.api.get(f"/api/conversations/{cid}").json()
    assert [n["body"] for n in thread["notes"]] == [NOTE]
    assert all(MARKER not in m["body"] for m in thread["messages"])
    browser, _csrf = signed_in_client(wired.inbox.url, "reception@example.com")
    try:
        transcript = browser.get(f"/conversations/{cid}/transcript")
    finally:
        browser.close()
    assert transcript.status_code == 200
    assert "Your repair is ready." in transcript.text and MARKER not in transcript.text

    # the export: its own record type in JSON and NDJSON, a row marked `note` in CSV
    def export(fmt: str, **params) -> str:
        response = wired.api.get("/api/export", params={"format": fmt, **params}, headers=wired.boss)
        assert response.status_code == 200, response.text
        return response.text

    records = json.loads(export("json"))
    assert [r["record_type"] for r in records] == ["message", "message", "note"]
    assert records[-1] == {
        "record_type": "note",
        "note_id": note.json()["id"],
        "conversation_id": cid,
        "customer_name": None,
        "customer_phone": CUSTOMER,
        "sent_by": "reception@example.com",
        "body": NOTE,
        "created_at": note.json()["created_at"],
    }
    assert [json.loads(line) for line in export("ndjson").splitlines()] == records
    rows = list(csv.DictReader(io.StringIO(export("csv"), newline="")))
    assert [r["record_type"] for r in rows] == ["message", "message", "note"]
    assert rows[-1]["body"] == "'" + NOTE  # spreadsheet-safe like any cell
    assert rows[-1]["sent_by"] == "reception@example.com" and rows[-1]["message_id"] == ""
    assert rows[-1]["conversation_id"] == str(cid) and rows[-1]["created_at"] == note.json()["created_at"]
    # filters: channel and direction leave notes out; customer and staff keep theirs
    assert [r["record_type"] for r in json.loads(export("json", direction="outbound"))] == ["message"]
    assert [r["record_type"] for r in json.loads(export("json", customer=CUSTOMER))][-1] == "note"
    assert [r["record_type"] for r in json.loads(export("json", staff="boss@example.com"))] == []
    assert json.loads(export("json", customer="+14155550999")) == []
