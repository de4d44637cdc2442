"""Saved replies over the JSON API: everyone reads them, managers write them, and their fields are
filled in for the open conversation (or named when nobody can fill them)."""

from __future__ import annotations

import httpx
import pytest

from tests.support.staff import create_staff, issue_token
from tests.support.twilio import post_twilio


@pytest.fixture
def team(serve, database_url):
    server = serve(database_url, runtime_options={"run_outbox": False}, INBOX_BUSINESS_NAME="Lumen Jewellers")
    clients = {}
    for email, role in (("maria@example.com", "manager"), ("reception@example.com", "receptionist")):
        create_staff(database_url, email, role=role)
        token = issue_token(database_url, email)
        clients[role] = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=15)
    yield server, clients["manager"], clients["receptionist"]
    for client in clients.values():
        client.close()


def test_receptionists_read_but_cannot_write(team) -> None:
    _server, manager, receptionist = team
    created = manager.post("/api/quick-replies", json={"title": "Hours", "body": "We open at 9."})
    assert created.status_code == 201
    reply_id = created.json()["id"]
    assert receptionist.get("/api/quick-replies").json()["quick_replies"][0]["title"] == "Hours"
    for method, path in (
        ("POST", "/api/quick-replies"),
        ("PUT", f"/api/quick-replies/{reply_id}"),
        ("DELETE", f"/api/quick-replies/{reply_id}"),
    ):
        refused = receptionist.request(method, path, json={"title": "Mine", "body": "Changed"})
        assert refused.status_code == 403 and refused.json()["error"] == "forbidden", (method, path)
    assert manager.get("/api/quick-replies").json()["quick_replies"][0]["body"] == "We open at 9."
    changed = manager.put(f"/api/quick-replies/{reply_id}", json={"title": "Hours", "body": "We open at 10."})
    assert changed.status_code == 200 and changed.json()["body"] == "We open at 10."
    assert manager.delete(f"/api/quick-replies/{reply_id}").status_code == 200
    assert manager.delete(f"/api/quick-replies/{reply_id}").status_code == 404
    assert manager.get("/api/quick-replies").json()["quick_replies"] == []


REFUSED = [
    ({"title": "", "body": "Hello"}, "invalid_title"),
    ({"title": "   ", "body": "Hello"}, "invalid_title"),
    ({"title": "x" * 201, "body": "Hello"}, "invalid_title"),
    ({"title": "Hours", "body": ""}, "empty_body"),
    ({"title": "Hours"}, "empty_body"),
    ({"title": "Hours", "body": "x" * 1601}, "body_too_long"),
]


def test_empty_or_over_long_title_or_body_is_refused(team) -> None:
    _server, manager, _ = team
    for payload, code in REFUSED:
        refused = manager.post("/api/quick-replies", json=payload)
        assert refused.status_code == 422 and refused.json()["error"] == code, (payload, refused.text)
    assert manager.get("/api/quick-replies").json()["quick_replies"] == []
    longest = manager.post("/api/quick-replies", json={"title": "t" * 200, "body": "b" * 1600})
    assert longest.status_code == 201  # the limits themselves are allowed


def test_fields_are_filled_for_the_conversation_or_named(team) -> None:
    server, manager, receptionist = team
    body = "Hi {first_name}, {business_name} here: your ring is ready, {name}. {unknown} stays."
    manager.post("/api/quick-replies", json={"title": "Ring ready", "body": body})
    assert post_twilio(server.url, "inbound_sms").status_code == 200
    [conversation] = receptionist.get("/api/conversations").json()["conversations"]
    [item] = receptionist.get("/api/quick-replies", params={"conversation_id": conversation["id"]}).json()[
        "quick_replies"
    ]
    assert item["body"] == body  # the saved text itself is unchanged
    assert item["filled"] == {
        "text": "Hi {first_name}, Lumen Jewellers here: your ring is ready, {name}. {unknown} stays.",
        "unfilled": ["first_name", "name"],  # no name known yet: named, never guessed
    }
    receptionist.patch(f"/api/customers/{conversation['customer']['id']}", json={"name": "Ana  Lima"})
    [item] = receptionist.get("/api/quick-replies", params={"conversation_id": conversation["id"]}).json()[
        "quick_replies"
    ]
    assert item["filled"] == {
        "text": "Hi Ana, Lumen Jewellers here: your ring is ready, Ana Lima. {unknown} stays.",
        "unfilled": [],
    }
    assert receptionist.get("/api/quick-replies", params={"conversation_id": 999}).status_code == 404
