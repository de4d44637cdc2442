"""Reaching out: a new conversation with a number as typed (POST /api/conversations), over real
HTTP to the inbox and, through the official twilio client, to the sandbox."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.support.db import add_template, rows, scalar
from tests.support.sandbox import FAST_OUTBOX, POOL, SERVICE_SID, sandbox_settings, start_sandbox, wait_for
from tests.support.staff import create_staff, issue_token

TEMPLATE = "HX" + "a" * 32
# Six ways people type one number, and a foreign number with its +country, per default country.
TYPED = {
    "US": (
        "+14155550142",
        ["(415) 555-0142", "415.555.0142", "415-555-0142", "+1 415 555 0142", "1 (415) 555-0142", "+14155550142"],
        ("+44 7700 900123", "+447700900123"),
    ),
    "GB": (
        "+447700900123",
        [
            "07700 900123",
            "07700-900-123",
            "(07700) 900123",
            "+44 7700 900123",
            "+44 (0)7700 900123",
            "0044 7700 900123",
        ],
        ("+1 415 555 0142", "+14155550142"),
    ),
    "AU": (
        "+61412345678",
        [
            "0412 345 678",
            "04 1234 5678",
            "(04) 1234 5678",
            "+61 412 345 678",
            "+61 (0)412 345 678",
            "0011 61 412 345 678",
        ],
        ("+44 7700 900123", "+447700900123"),
    ),
}


def _api(server, database_url: str, email: str = "reception@example.com", role: str = "receptionist") -> httpx.Client:
    create_staff(database_url, email, role=role)
    token = issue_token(database_url, email)
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=15)


@pytest.mark.parametrize("country", sorted(TYPED))
def test_a_number_typed_six_ways_reaches_one_conversation(serve, sqlite_url, country) -> None:
    server = serve(sqlite_url, runtime_options={"run_outbox": False}, INBOX_DEFAULT_COUNTRY=country)
    expected, formats, (foreign, foreign_e164) = TYPED[country]
    with _api(server, sqlite_url) as api:
        echo = api.get("/api/phone-numbers/parse", params={"number": formats[0]}).json()
        assert echo["e164"] == expected and echo["default_country"] == country
        assert echo["international"].startswith("+") and echo["conversation_id"] is None
        conversations = set()
        for typed in formats:
            response = api.post("/api/conversations", json={"to": typed, "channel": "sms", "body": f"Hello {typed}"})
            assert response.status_code == 201, (typed, response.text)
            answer = response.json()
            assert answer["conversation"]["customer"]["phone"] == expected, typed
            assert answer["message"]["to"] == expected and answer["message"]["status"] == "queued"
            conversations.add(answer["conversation"]["id"])
        assert len(conversations) == 1  # a known customer keeps their one conversation
        assert api.get("/api/phone-numbers/parse", params={"number": formats[1]}).json()["conversation_id"] in (
            conversations
        )
        other = api.post("/api/conversations", json={"to": foreign, "body": "Hi"}).json()
        assert other["conversation"]["customer"]["phone"] == foreign_e164
        too_short = ["07700 9001"] if country == "GB" else []  # not +44 077009001
        for nonsense in ["12", "call me", "+999 123", "", *too_short]:
            refused = api.post("/api/conversations", json={"to": nonsense, "body": "Hi"})
            assert refused.status_code == 422 and refused.json()["error"] == "invalid_number", nonsense
            assert api.get("/api/phone-numbers/parse", params={"number": nonsense}).status_code == 422
    assert scalar(sqlite_url, "SELECT count(*) FROM customers") == 2  # nothing was created for the refusals
    assert scalar(sqlite_url, "SELECT count(*) FROM messages") == len(formats) + 1


@pytest.fixture
def wired(serve, database_url):
    seen: list[tuple[str, str, bytes]] = []  # every request the sandbox receives
    sandbox, sandbox_server = start_sandbox(seen=seen)
    inbox = serve(database_url, runtime_options={"outbox_config": FAST_OUTBOX}, **sandbox_settings(sandbox_server.url))
    sandbox.config.inbound_webhook_url = inbox.url + "/webhooks/twilio/inbound"
    api = _api(inbox, database_url)
    yield type("Wired", (), {"inbox": inbox, "sandbox": sandbox, "api": api, "db": database_url, "seen": seen})
    api.close()
    sandbox_server.stop()
    asyncio.run(sandbox.aclose())


def _status(wired, message_id: int) -> str:
    return scalar(wired.db, "SELECT status FROM messages WHERE id = :id", id=message_id)


def test_twilio_chooses_the_first_sender_and_the_next_messages_keep_it(wired) -> None:
    first = wired.api.post("/api/conversations", json={"to": "(415) 555-0199", "body": "Your ring is ready."})
    assert first.status_code == 201
    message = first.json()["message"]
    assert message["from"] == ""  # no sticky sender known: no From, the Messaging Service picks
    wait_for(lambda: _status(wired, message["id"]) == "delivered", message="delivered")
    [sent] = [m for m in wired.sandbox.conversation_with("+14155550199") if m["direction"] == "outbound-api"]
    assert sent["messaging_service_sid"] == SERVICE_SID and sent["from"] in POOL
    chosen = scalar(wired.db, "SELECT from_addr FROM messages WHERE id = :id", id=message["id"])
    assert chosen == sent["from"]  # learnt from Twilio's status callback
    conversation_id = first.json()["conversation"]["id"]
    follow_up = wired.api.post(f"/api/conversations/{conversation_id}/messages", json={"body": "Open till 6."})
    assert follow_up.json()["from"] == chosen  # pinned: the conversation never jumps numbers
    again = wired.api.post("/api/conversations", json={"to": "415.555.0199", "body": "See you soon."}).json()
    assert again["conversation"]["id"] == conversation_id and again["message"]["from"] == chosen
    wait_for(lambda: _status(wired, again["message"]["id"]) == "delivered", message="delivered")
    assert {m["from"] for m in wired.sandbox.conversation_with("+14155550199")} == {chosen}


def test_a_customer_who_wrote_keeps_their_conversation_and_number(wired) -> None:
    asyncio.run(wired.sandbox.receive_from_customer(from_="+14155550123", to="+15005550007", body="Hi there"))
    conversation_id = wait_for(
        lambda: scalar(
            wired.db,
            "SELECT c.id FROM conversations c JOIN customers cu ON cu.id = c.customer_id WHERE cu.phone = :p",
            p="+14155550123",
        ),
        message="the inbound message",
    )
    answer = wired.api.post("/api/conversations", json={"to": "(415) 555-0123", "body": "Your order shipped."})
    assert answer.status_code == 201
    assert answer.json()["conversation"]["id"] == conversation_id
    assert answer.json()["message"]["from"] == "+15005550007"  # the number they wrote to
    assert scalar(wired.db, "SELECT count(*) FROM conversations") == 1


def test_an_opted_out_number_is_refused_before_anything_reaches_twilio(wired) -> None:
    asyncio.run(wired.sandbox.receive_from_customer(from_="+14155550177", to="+15005550006", body="STOP"))
    wait_for(
        lambda: rows(wired.db, "SELECT action FROM consent_records") == [("opt_out",)], message="the opt-out recorded"
    )
    wait_for(lambda: not [m for m in wired.sandbox.messages.values() if m["status"] not in ("received", "delivered")])
    requests_before = list(wired.seen)
    messages_before = scalar(wired.db, "SELECT count(*) FROM messages")
    refused = wired.api.post("/api/conversations", json={"to": "415-555-0177", "body": "A special offer!"})
    assert refused.status_code == 409 and refused.json()["error"] == "opted_out"
    assert "opted out" in refused.json()["detail"]
    assert wired.seen == requests_before  # not one request to Twilio
    assert scalar(wired.db, "SELECT count(*) FROM messages") == messages_before


def test_whatsapp_to_a_closed_window_is_refused_and_leaves_no_customer(wired) -> None:
    refused = wired.api.post(
        "/api/conversations", json={"to": "+44 7700 900456", "channel": "whatsapp", "body": "Hello!"}
    )
    assert refused.status_code == 409 and refused.json()["error"] == "whatsapp_window_closed"
    assert scalar(wired.db, "SELECT count(*) FROM customers") == 0
    assert wired.seen == []
    # What the dialog then offers: an approved template starts the conversation.
    add_template(wired.db, "Ring ready", TEMPLATE, "Hi {{1}}, your ring is ready.", ["name"])
    started = wired.api.post(
        "/api/conversations",
        json={
            "to": "+44 7700 900456",
            "channel": "whatsapp",
            "content_sid": TEMPLATE,
            "content_variables": {"1": "Ana"},
        },
    )
    assert started.status_code == 201, started.text
    message = started.json()["message"]
    assert message["to"] == "whatsapp:+447700900456" and message["body"] == "Hi Ana, your ring is ready."
    wait_for(lambda: _status(wired, message["id"]) == "delivered", message="delivered")
    [sent] = wired.sandbox.conversation_with("+447700900456")
    assert sent["from"] == "whatsapp:+14155238886"  # the service's WhatsApp sender, chosen by Twilio
