"""The JSON API's reads: the conversation list (order, unread, search, pages) and one thread."""

from __future__ import annotations

import httpx
import pytest

from tests.support.staff import create_staff, issue_token
from tests.support.twilio import post_twilio


def sid(n: int) -> str:
    return f"SM{n:032x}"


@pytest.fixture
def api(serve, database_url):
    server = serve(database_url)
    create_staff(database_url, "reception@example.com")
    create_staff(database_url, "second@example.com")
    headers = {"Authorization": f"Bearer {issue_token(database_url, 'reception@example.com')}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=15) as client:
        client.server = server
        client.second = {"Authorization": f"Bearer {issue_token(database_url, 'second@example.com')}"}
        yield client


def test_list_is_newest_activity_first_with_unread_counts(api) -> None:
    post_twilio(api.server.url, "inbound_sms", MessageSid=sid(1), From="+14155550001", Body="first")
    post_twilio(api.server.url, "inbound_sms", MessageSid=sid(2), From="+14155550002", Body="second")
    post_twilio(api.server.url, "inbound_sms", MessageSid=sid(3), From="+14155550001", Body="first again")
    conversations = api.get("/api/conversations").json()["conversations"]
    assert [c["customer"]["phone"] for c in conversations] == ["+14155550001", "+14155550002"]
    assert [c["unread_count"] for c in conversations] == [2, 1]
    assert conversations[0]["last_message"]["body"] == "first again"
    assert conversations[0]["customer"]["consent"] == {"sms": "unknown", "whatsapp": "unknown"}

    read = api.post(f"/api/conversations/{conversations[0]['id']}/read")
    assert read.status_code == 200
    after = api.get("/api/conversations").json()["conversations"]
    assert [c["unread_count"] for c in after] == [0, 1]
    # read marks belong to each staff member
    theirs = api.get("/api/conversations", headers=api.second).json()["conversations"]
    assert [c["unread_count"] for c in theirs] == [2, 1]


def test_one_conversation_with_messages_oldest_first(api) -> None:
    post_twilio(api.server.url, "inbound_whatsapp")
    post_twilio(api.server.url, "inbound_sms", MessageSid=sid(9), From="+5511912345678", Body="and by SMS")
    [summary] = api.get("/api/conversations").json()["conversations"]
    conversation = api.get(f"/api/conversations/{summary['id']}").json()
    assert conversation["customer"]["name"] == "Ana Souza"
    assert [(m["channel"], m["body"]) for m in conversation["messages"]] == [
        ("whatsapp", "Olá! Can I book for Friday?"),
        ("sms", "and by SMS"),
    ]
    first = conversation["messages"][0]
    assert first["from"] == "whatsapp:+5511912345678" and first["status"] == "received"
    assert first["created_at"].endswith("Z") and first["media"] == []
    missing = api.get("/api/conversations/999999")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("ana", ["+5511912345678"]),
        ("5550123", ["+14155550123"]),
        ("REPAIR", ["+14155550123"]),
        ("100%", []),
        ("_", []),
        # a number as people type it
        ("(415) 555-0123", ["+14155550123"]),
        ("415.555.0123", ["+14155550123"]),
        ("+1 415 555 0123", ["+14155550123"]),
        ("+55 11 91234-5678", ["+5511912345678"]),
        # accents do not matter, either way
        ("ola", ["+5511912345678"]),
        ("OLÁ", ["+5511912345678"]),
        ("souza", ["+5511912345678"]),
    ],
)
def test_search_by_name_number_or_text(api, query, expected) -> None:
    post_twilio(api.server.url, "inbound_whatsapp")
    post_twilio(api.server.url, "inbound_sms")
    found = api.get("/api/conversations", params={"q": query}).json()["conversations"]
    assert [c["customer"]["phone"] for c in found] == expected


def test_cursor_pages_through_everything_once(api) -> None:
    for n in range(55):
        post_twilio(api.server.url, "inbound_sms", MessageSid=sid(100 + n), From=f"+1415555{n:04d}")
    first = api.get("/api/conversations").json()
    assert len(first["conversations"]) == 50 and first["next_cursor"]
    second = api.get("/api/conversations", params={"cursor": first["next_cursor"]}).json()
    assert len(second["conversations"]) == 5 and second["next_cursor"] is None
    phones = [c["customer"]["phone"] for c in first["conversations"] + second["conversations"]]
    assert len(set(phones)) == 55
    bad = api.get("/api/conversations", params={"cursor": "garbage"})
    assert bad.status_code == 422 and bad.json()["error"] == "invalid_cursor"
    assert api.get("/api/conversations", params={"status": "nope"}).status_code == 422


def test_a_number_without_country_is_read_in_the_default_country(serve, database_url) -> None:
    server = serve(database_url, INBOX_DEFAULT_COUNTRY="GB")
    create_staff(database_url, "reception@example.com")
    token = issue_token(database_url, "reception@example.com")
    post_twilio(server.url, "inbound_sms", MessageSid=sid(5), From="+447700900123", Body="Cheers")
    post_twilio(server.url, "inbound_sms", MessageSid=sid(6), From="+14155550123", Body="Hi")
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=15) as api:
        found = api.get("/api/conversations", params={"q": "07700 900123"}).json()["conversations"]
    assert [c["customer"]["phone"] for c in found] == ["+447700900123"]
