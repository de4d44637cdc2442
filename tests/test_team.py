"""Team workflow through the API: open/closed, owners, the views and their counts, notes, the
customer card; with the live events each change sends on /ws."""

from __future__ import annotations

import httpx
import pytest

from tests.support.live import open_socket, read_until
from tests.support.staff import create_staff, issue_token
from tests.support.twilio import post_twilio


def sid(n: int) -> str:
    return f"SM{n:032x}"


@pytest.fixture
def api(serve, database_url):
    server = serve(database_url)
    maria = create_staff(database_url, "maria@example.com", name="Maria")
    joao = create_staff(database_url, "joao@example.com", name="João")
    create_staff(database_url, "boss@example.com", role="manager", name="Boss")
    token = issue_token(database_url, "maria@example.com")
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=15) as client:
        client.server, client.token = server, token
        client.maria, client.joao = maria, joao
        client.as_joao = {"Authorization": f"Bearer {issue_token(database_url, 'joao@example.com')}"}
        client.as_boss = {"Authorization": f"Bearer {issue_token(database_url, 'boss@example.com')}"}
        yield client


def conversation_of(api, phone: str) -> dict:
    [found] = [
        c for c in api.get("/api/conversations?status=all").json()["conversations"] if c["customer"]["phone"] == phone
    ]
    return found


def ids(api, query: str, headers=None) -> list[str]:
    response = api.get(f"/api/conversations?{query}", headers=headers)
    assert response.status_code == 200, response.text
    return [c["customer"]["phone"] for c in response.json()["conversations"]]


def test_close_reopen_assign_and_the_views_with_their_counts(api) -> None:
    for n, phone in enumerate(["+14155550101", "+14155550102", "+14155550103"], start=1):
        post_twilio(api.server.url, "inbound_sms", MessageSid=sid(n), From=phone, Body=f"hello {n}")
    first, second = conversation_of(api, "+14155550101"), conversation_of(api, "+14155550102")
    assert first["status"] == "open" and first["assignee"] is None
    assert api.get("/api/conversations/counts").json() == {"mine": 0, "unassigned": 3, "open": 3, "closed": 0}

    with open_socket(api.server.url, token=api.token) as socket:
        taken = api.patch(f"/api/conversations/{first['id']}", json={"assignee_id": api.maria.id})
        assert taken.status_code == 200, taken.text
        assert taken.json()["assignee"] == {"id": api.maria.id, "name": "Maria"}
        event = read_until(socket, lambda e: e["type"] == "conversation.updated")
        assert event["conversation_id"] == first["id"]
        assert event["data"]["conversation"]["assignee"] == {"id": api.maria.id, "name": "Maria"}
        assert "messages" not in event["data"]["conversation"]

        closed = api.patch(f"/api/conversations/{second['id']}", json={"status": "closed", "assignee_id": api.joao.id})
        assert closed.status_code == 200
        assert closed.json()["status"] == "closed" and closed.json()["assignee"]["name"] == "João"
        event = read_until(socket, lambda e: e["type"] == "conversation.updated")
        assert event["data"]["conversation"]["status"] == "closed"

    assert ids(api, "status=open&assignee=me") == ["+14155550101"]
    assert ids(api, "status=open&assignee=none") == ["+14155550103"]
    assert ids(api, "status=closed") == ["+14155550102"]
    assert ids(api, f"status=all&assignee={api.joao.id}") == ["+14155550102"]
    assert sorted(ids(api, "status=open")) == ["+14155550101", "+14155550103"]
    assert api.get("/api/conversations/counts").json() == {"mine": 1, "unassigned": 1, "open": 2, "closed": 1}
    assert api.get("/api/conversations/counts", headers=api.as_joao).json() == {
        "mine": 0,
        "unassigned": 1,
        "open": 2,
        "closed": 1,
    }

    # a receptionist may reopen and unassign: nothing here is manager-only
    reopened = api.patch(
        f"/api/conversations/{second['id']}", json={"status": "open", "assignee_id": None}, headers=api.as_joao
    )
    assert reopened.status_code == 200
    assert reopened.json()["status"] == "open" and reopened.json()["assignee"] is None


def test_a_customers_message_reopens_a_closed_conversation_keeping_its_owner(api) -> None:
    post_twilio(api.server.url, "inbound_sms", MessageSid=sid(1), From="+14155550111", Body="hi")
    conversation = conversation_of(api, "+14155550111")
    api.patch(f"/api/conversations/{conversation['id']}", json={"status": "closed", "assignee_id": api.joao.id})
    with open_socket(api.server.url, token=api.token) as socket:
        post_twilio(api.server.url, "inbound_sms", MessageSid=sid(2), From="+14155550111", Body="one more thing")
        event = read_until(socket, lambda e: e["type"] == "conversation.updated")
    assert event["data"]["conversation"]["status"] == "open"
    assert event["data"]["conversation"]["assignee"] == {"id": api.joao.id, "name": "João"}
    again = api.get(f"/api/conversations/{conversation['id']}").json()
    assert again["status"] == "open" and again["assignee"]["id"] == api.joao.id


def test_a_reply_to_an_unowned_conversation_makes_the_sender_its_owner(api) -> None:
    post_twilio(api.server.url, "inbound_sms", MessageSid=sid(1), From="+14155550121", Body="hi")
    conversation = conversation_of(api, "+14155550121")
    reply = api.post(f"/api/conversations/{conversation['id']}/messages", json={"body": "Hello!"}, headers=api.as_joao)
    assert reply.status_code == 202, reply.text
    assert api.get(f"/api/conversations/{conversation['id']}").json()["assignee"] == {"id": api.joao.id, "name": "João"}
    # an owned conversation keeps its owner when someone else replies
    api.post(f"/api/conversations/{conversation['id']}/messages", json={"body": "And me"})
    assert api.get(f"/api/conversations/{conversation['id']}").json()["assignee"]["id"] == api.joao.id


def test_update_conversation_refusals(api) -> None:
    post_twilio(api.server.url, "inbound_sms", MessageSid=sid(1), From="+14155550131", Body="hi")
    conversation = conversation_of(api, "+14155550131")
    url = f"/api/conversations/{conversation['id']}"
    missing = api.patch("/api/conversations/999999", json={"status": "closed"})
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    for payload, code in [
        ({"status": "archived"}, "invalid_status"),
        ({"status": 1}, "invalid_status"),
        ({"assignee_id": 999999}, "unknown_staff"),
        ({"assignee_id": "1"}, "unknown_staff"),
        ({"assignee_id": True}, "unknown_staff"),
        ({"assignee_id": 2**70}, "unknown_staff"),
        ({}, "nothing_to_change"),
    ]:
        refused = api.patch(url, json=payload)
        assert refused.status_code == 422, (payload, refused.text)
        assert refused.json()["error"] == code
    assert api.get(url).json()["status"] == "open"
    assert api.get("/api/conversations?assignee=nobody").status_code == 422


def test_notes_are_stored_shown_and_sent_live(api) -> None:
    post_twilio(api.server.url, "inbound_sms", MessageSid=sid(1), From="+14155550141", Body="hi")
    conversation = conversation_of(api, "+14155550141")
    with open_socket(api.server.url, token=api.token) as socket:
        created = api.post(
            f"/api/conversations/{conversation['id']}/notes", json={"body": "Called her back, she prefers mornings"}
        )
        assert created.status_code == 201, created.text
        event = read_until(socket, lambda e: e["type"] == "note.created")
    note = created.json()
    assert note["body"] == "Called her back, she prefers mornings"
    assert note["author"] == {"id": api.maria.id, "name": "Maria"}
    assert note["conversation_id"] == conversation["id"] and note["created_at"].endswith("Z")
    assert event["data"] == {"note": note} and event["conversation_id"] == conversation["id"]
    thread = api.get(f"/api/conversations/{conversation['id']}").json()
    assert thread["notes"] == [note]
    assert [m["body"] for m in thread["messages"]] == ["hi"]  # a note is not a message

    assert api.post("/api/conversations/999999/notes", json={"body": "x"}).status_code == 404
    for payload in ({"body": ""}, {"body": "   "}, {"body": 5}, {}, {"body": "x" * 5001}, {"body": "a\x00b"}):
        refused = api.post(f"/api/conversations/{conversation['id']}/notes", json=payload)
        assert refused.status_code == 422, payload


def test_customer_name_and_notes(api) -> None:
    post_twilio(api.server.url, "inbound_sms", MessageSid=sid(1), From="+14155550151", Body="hi")
    customer = conversation_of(api, "+14155550151")["customer"]
    assert customer["notes"] == "" and customer["name"] is None
    with open_socket(api.server.url, token=api.token) as socket:
        updated = api.patch(f"/api/customers/{customer['id']}", json={"name": "Ana Lima", "notes": "Prefers mornings"})
        assert updated.status_code == 200, updated.text
        event = read_until(socket, lambda e: e["type"] == "customer.updated")
    assert updated.json()["name"] == "Ana Lima" and updated.json()["notes"] == "Prefers mornings"
    assert event["data"] == {"customer": updated.json()}
    assert conversation_of(api, "+14155550151")["customer"]["notes"] == "Prefers mornings"
    assert api.patch("/api/customers/999999", json={"name": "x"}).status_code == 404
    for payload in ({"name": 5}, {"notes": ["x"]}, {"name": "x" * 201}, {"notes": "a\x00"}, {}):
        assert api.patch(f"/api/customers/{customer['id']}", json=payload).status_code == 422, payload


def test_a_whatsapp_profile_name_fills_an_empty_name_only(api) -> None:
    post_twilio(api.server.url, "inbound_whatsapp")  # ProfileName "Ana Souza"
    customer = conversation_of(api, "+5511912345678")["customer"]
    assert customer["name"] == "Ana Souza"
    api.patch(f"/api/customers/{customer['id']}", json={"name": "Ana (dentist)"})
    post_twilio(api.server.url, "inbound_whatsapp", MessageSid=sid(7), ProfileName="Ana S.")
    assert conversation_of(api, "+5511912345678")["customer"]["name"] == "Ana (dentist)"
    api.patch(f"/api/customers/{customer['id']}", json={"name": ""})
    assert conversation_of(api, "+5511912345678")["customer"]["name"] == "Ana S."


@pytest.mark.parametrize(
    ("phone", "zone"),
    [
        ("+14155550123", "America/Los_Angeles"),  # US, by area code
        ("+12125550199", "America/New_York"),
        ("+447700900123", "Europe/London"),  # UK: a range the data does not know, one clock for the country
        ("+61291234567", "Australia/Sydney"),  # Australia, a Sydney landline
        ("+61412345678", "Australia/Sydney"),  # an Australian mobile: the country's main zone
        ("whatsapp:+5511912345678", "America/Sao_Paulo"),
        ("+15551234567", None),  # an unknown US prefix: the country has many clocks, so no guess
    ],
)
def test_the_customers_time_zone_comes_from_their_number(phone, zone) -> None:
    from inbox.phones import time_zone_of

    assert time_zone_of(phone) == zone


def test_the_customer_card(api) -> None:
    post_twilio(api.server.url, "inbound_sms", MessageSid=sid(1), From="+447700900123", Body="hello from London")
    post_twilio(api.server.url, "inbound_sms", MessageSid=sid(2), From="+447700900123", Body="again")
    conversation = conversation_of(api, "+447700900123")
    customer_id = conversation["customer"]["id"]
    assert conversation["customer"]["time_zone"] == "Europe/London"
    reply = api.post(f"/api/conversations/{conversation['id']}/messages", json={"body": "Hello from us"})
    assert reply.status_code == 202, reply.text
    card = api.get(f"/api/customers/{customer_id}").json()
    thread = api.get(f"/api/conversations/{conversation['id']}").json()
    assert card["phone"] == "+447700900123" and card["time_zone"] == "Europe/London"
    assert card["consent"] == {"sms": "unknown", "whatsapp": "unknown"}
    assert card["first_contact_at"] == thread["messages"][0]["created_at"]
    assert card["last_contact_at"] == thread["messages"][-1]["created_at"]
    # one customer has one conversation: the card counts its messages, not conversations
    assert "conversation_count" not in card
    assert (card["message_count"], card["inbound_count"]) == (3, 2)
    assert api.get("/api/customers/999999").status_code == 404


def test_mark_unread_is_per_staff_member(api) -> None:
    post_twilio(api.server.url, "inbound_sms", MessageSid=sid(1), From="+14155550161", Body="one")
    post_twilio(api.server.url, "inbound_sms", MessageSid=sid(2), From="+14155550161", Body="two")
    conversation = conversation_of(api, "+14155550161")
    assert api.post(f"/api/conversations/{conversation['id']}/read").status_code == 200
    api.post(f"/api/conversations/{conversation['id']}/read", headers=api.as_joao)
    unread = api.post(f"/api/conversations/{conversation['id']}/unread")
    assert unread.status_code == 200 and unread.json() == {"conversation_id": conversation["id"], "unread_count": 1}
    assert conversation_of(api, "+14155550161")["unread_count"] == 1
    joao = api.get("/api/conversations?status=all", headers=api.as_joao).json()["conversations"]
    assert [c["unread_count"] for c in joao] == [0]
    # already unread: it stays as it is
    assert api.post(f"/api/conversations/{conversation['id']}/unread").json()["unread_count"] == 1
    missing = api.post("/api/conversations/999999/unread")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
