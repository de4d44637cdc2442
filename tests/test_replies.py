"""Replies through the outbox to the Twilio sandbox, over real HTTP with the official client."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.support.db import add_template, rows, scalar
from tests.support.live import open_socket, read_until
from tests.support.sandbox import CUSTOMER, SERVICE_SID, customer_writes, wait_for, wire
from tests.support.staff import create_staff, issue_token
from tests.support.twilio import ACCOUNT_SID, AUTH_TOKEN, post_twilio, signature_for


@pytest.fixture
def wired(serve, database_url):
    with wire(serve, database_url) as wired:
        yield wired


def reply(wired, conversation_id: int, body: str | None = "Your repair is ready.", **fields) -> httpx.Response:
    headers = fields.pop("headers", {})
    payload = {"body": body, **fields} if body is not None else fields
    return wired.api.post(f"/api/conversations/{conversation_id}/messages", json=payload, headers=headers)


def message_status(wired, message_id: int) -> str:
    return scalar(wired.db, "SELECT status FROM messages WHERE id = :id", id=message_id)


def sent_to(wired, number: str) -> list[dict]:
    return [m for m in wired.sandbox.conversation_with(number) if m["direction"] == "outbound-api"]


def test_reply_goes_out_from_the_number_the_customer_wrote_to(wired) -> None:
    conversation_id = customer_writes(wired, "Is my phone fixed?", to="+15005550007")
    response = reply(wired, conversation_id)
    assert response.status_code == 202
    message = response.json()
    assert message["status"] == "queued" and message["direction"] == "outbound" and message["sid"] is None
    wait_for(lambda: message_status(wired, message["id"]) == "delivered", message="delivered")
    [sent] = sent_to(wired, CUSTOMER)
    assert sent["from"] == "+15005550007"  # not the pool's first number: the one they wrote to
    assert sent["messaging_service_sid"] == SERVICE_SID
    assert sent["body"] == "Your repair is ready."
    assert scalar(wired.db, "SELECT sid FROM messages WHERE id = :id", id=message["id"]) == sent["sid"]


def test_whatsapp_reply_is_sticky_too_and_ticks_arrive_live(wired) -> None:
    conversation_id = customer_writes(
        wired, "Olá!", from_="whatsapp:+5511912345678", to="whatsapp:+14155238886", profile_name="Ana"
    )
    with open_socket(wired.inbox.url, token=wired.token) as socket:
        message = reply(wired, conversation_id, "Bom dia, Ana!").json()
        assert message["channel"] == "whatsapp"
        seen = []
        read_until(
            socket,
            lambda e: (
                e["type"] == "message.updated"
                and e["data"]["message"]["id"] == message["id"]
                and seen.append(e["data"]["message"]["status"]) is None
                and seen[-1] == "delivered"
            ),
        )
    assert seen[-1] == "delivered" and "sent" in seen
    [sent] = sent_to(wired, "+5511912345678")
    assert sent["from"] == "whatsapp:+14155238886" and sent["to"] == "whatsapp:+5511912345678"


def test_callbacks_out_of_order_and_repeated_never_move_back(wired) -> None:
    conversation_id = customer_writes(wired, "Hello")
    message = reply(wired, conversation_id).json()
    wait_for(lambda: message_status(wired, message["id"]) == "delivered", message="delivered")
    sid = scalar(wired.db, "SELECT sid FROM messages WHERE id = :id", id=message["id"])
    events_before = scalar(wired.db, "SELECT count(*) FROM events")
    for late in ("sent", "queued", "delivered", "sending"):
        assert (
            post_twilio(
                wired.inbox.url,
                "status_callback",
                path="/webhooks/twilio/status",
                MessageSid=sid,
                SmsSid=sid,
                MessageStatus=late,
                SmsStatus=late,
            ).status_code
            == 204
        )
    assert message_status(wired, message["id"]) == "delivered"
    assert scalar(wired.db, "SELECT count(*) FROM events") == events_before


def test_callback_for_an_unknown_sid_is_kept_and_applied_later(wired) -> None:
    # Twilio's callback can beat the send's own response; it must not be lost.
    conversation_id = customer_writes(wired, "Hello")
    wired.sandbox.set_delay(0.5)  # the create answer comes late; callbacks go out before it
    message = reply(wired, conversation_id).json()
    wait_for(lambda: message_status(wired, message["id"]) == "delivered", message="delivered after pending")
    assert scalar(wired.db, "SELECT count(*) FROM pending_statuses") == 0


def test_forged_status_callback_is_refused(wired) -> None:
    response = post_twilio(wired.inbox.url, "status_callback", path="/webhooks/twilio/status", signature="forged")
    assert response.status_code == 403


def test_429_twice_then_success_sends_one_message(wired) -> None:
    conversation_id = customer_writes(wired, "Hello")
    wired.sandbox.fail_next(429, 20429, times=2, message="Too Many Requests")
    message = reply(wired, conversation_id).json()
    wait_for(lambda: message_status(wired, message["id"]) == "delivered", message="delivered after 429s")
    assert len(sent_to(wired, CUSTOMER)) == 1
    assert scalar(wired.db, "SELECT attempts FROM messages WHERE id = :id", id=message["id"]) == 3


@pytest.mark.parametrize(
    ("number", "code", "words"),
    [
        ("+15005550001", 21211, "not a valid phone number"),
        ("+15005550009", 21614, "landline"),
        ("+15005550003", 21408, "not enabled"),
    ],
)
def test_permanent_errors_fail_with_a_reason_and_are_not_retried(wired, number, code, words) -> None:
    conversation_id = customer_writes(wired, "Hello", from_=number)
    message = reply(wired, conversation_id).json()
    wait_for(lambda: message_status(wired, message["id"]) == "failed", message="failed")
    [(error_code, reason, attempts)] = rows(
        wired.db, "SELECT error_code, error_message, attempts FROM messages WHERE id = :id", id=message["id"]
    )
    assert error_code == code and words in reason and attempts == 1


def test_21610_marks_failed_and_records_the_opt_out(wired) -> None:
    conversation_id = customer_writes(wired, "Hello", from_="+15005550004")
    message = reply(wired, conversation_id).json()
    wait_for(lambda: message_status(wired, message["id"]) == "failed", message="failed")
    [(action, source)] = rows(wired.db, "SELECT action, source FROM consent_records")
    assert (action, source) == ("opt_out", "twilio_21610")
    again = reply(wired, conversation_id, "Are you there?")
    assert again.status_code == 409 and again.json()["error"] == "opted_out"


def test_whatsapp_outside_the_window_is_refused_then_63016_from_twilio_fails_it(wired) -> None:
    conversation_id = customer_writes(wired, "Oi", from_="whatsapp:+5511912345678", to="whatsapp:+14155238886")
    # 25 hours later, by the inbox's clock
    asyncio.run(_age_messages(wired.db, hours=25))
    refused = reply(wired, conversation_id, "Still there?", channel="whatsapp")
    assert refused.status_code == 409 and refused.json()["error"] == "whatsapp_window_closed"
    add_template(wired.db, "Repair ready", "HX" + "a" * 32, "Hi {{1}}, your repair is ready.", ["Name"])
    template = reply(
        wired, conversation_id, None, channel="whatsapp", content_sid="HX" + "a" * 32, content_variables={"1": "Ana"}
    )
    assert template.status_code == 202
    wait_for(lambda: message_status(wired, template.json()["id"]) in ("delivered", "sent"), message="template sent")
    # The inbox thinks the window is open, Twilio does not: 63016, failed with a reason, no retry.
    post_twilio(wired.inbox.url, "inbound_whatsapp", From="whatsapp:+5511912345678", MessageSid="SM" + "9" * 32)
    wired.sandbox.close_whatsapp_window("whatsapp:+5511912345678")
    message = reply(wired, conversation_id, "Free text", channel="whatsapp").json()
    wait_for(lambda: message_status(wired, message["id"]) == "failed", message="63016")
    assert scalar(wired.db, "SELECT error_code FROM messages WHERE id = :id", id=message["id"]) == 63016


async def _age_messages(database_url: str, hours: int) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from inbox.db import Database
    from inbox.models import Message

    db = Database(database_url)
    async with db.write() as session:
        messages = (await session.execute(__import__("sqlalchemy").select(Message))).scalars().all()
        for message in messages:
            message.created_at = message.created_at - timedelta(hours=hours)
        await session.commit()
    await db.dispose()
    del update


def test_idempotency_key_repeat_returns_the_first_and_sends_once(wired) -> None:
    conversation_id = customer_writes(wired, "Hello")
    key = {"Idempotency-Key": "double-click-1"}
    first = reply(wired, conversation_id, headers=key)
    second = reply(wired, conversation_id, headers=key)
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] == second.json()["id"]
    assert second.headers["Idempotent-Replayed"] == "true"
    wait_for(lambda: message_status(wired, first.json()["id"]) == "delivered", message="delivered")
    assert len(sent_to(wired, CUSTOMER)) == 1


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"body": ""}, 422, "empty_body"),
        ({"body": "   "}, 422, "empty_body"),
        ({"body": "x" * 1601}, 422, "body_too_long"),
        ({"body": "hi", "channel": "fax"}, 422, "invalid_channel"),
        ({"content_sid": "nope"}, 422, "invalid_template"),
    ],
)
def test_bad_replies_get_a_clear_error_and_send_nothing(wired, payload, status, code) -> None:
    conversation_id = customer_writes(wired, "Hello")
    response = wired.api.post(f"/api/conversations/{conversation_id}/messages", json=payload)
    assert response.status_code == status and response.json()["error"] == code
    assert scalar(wired.db, "SELECT count(*) FROM messages WHERE direction = 'outbound'") == 0
    if code == "body_too_long":
        assert response.json()["detail"] == (
            "This message is 1,601 characters long; the limit is 1,600. Shorten it or send it as two messages."
        )


def test_failed_delivery_shows_why(wired) -> None:
    conversation_id = customer_writes(wired, "Hello")
    wired.sandbox.fail_delivery(CUSTOMER, "undelivered", 30003)
    message = reply(wired, conversation_id).json()
    wait_for(lambda: message_status(wired, message["id"]) == "undelivered", message="undelivered")
    reason = scalar(wired.db, "SELECT error_message FROM messages WHERE id = :id", id=message["id"])
    assert "unreachable" in reason


def test_status_callback_signature_covers_the_form(wired) -> None:
    pairs = [("MessageSid", "SM" + "1" * 32), ("MessageStatus", "delivered")]
    url = wired.inbox.url + "/webhooks/twilio/status"
    response = httpx.post(
        url,
        content="MessageSid=SM" + "1" * 32 + "&MessageStatus=failed",
        headers={
            "X-Twilio-Signature": signature_for(url, pairs, AUTH_TOKEN),
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    assert response.status_code == 403


def test_ambiguous_5xx_is_reconciled_not_resent(wired) -> None:
    """Twilio created the message but answered 500: the outbox finds it in Twilio's list and adopts it."""
    conversation_id = customer_writes(wired, "Hello")
    wired.sandbox.fail_next(500, 20500, times=1, message="Internal Server Error", create_anyway=True)
    message = reply(wired, conversation_id, "Sent once, whatever happens").json()
    wait_for(lambda: message_status(wired, message["id"]) == "delivered", message="delivered after reconciling")
    sent = sent_to(wired, CUSTOMER)
    assert [m["body"] for m in sent] == ["Sent once, whatever happens"]
    assert scalar(wired.db, "SELECT sid FROM messages WHERE id = :id", id=message["id"]) == sent[0]["sid"]


def test_the_was_it_sent_lookup_checks_to_itself(wired) -> None:
    """Twilio's list filter is not trusted: the same words sent to someone else are not our reply."""
    conversation_id = customer_writes(wired, "Hello")
    other = "+14155550999"
    body = "Your repair is ready."
    elsewhere = httpx.post(  # another app on the account sent the same words to another customer
        f"{wired.sandbox_url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json",
        data={"To": other, "From": "+15005550007", "Body": body},
        auth=(ACCOUNT_SID, AUTH_TOKEN),
        timeout=15,
    )
    assert elsewhere.status_code == 201, elsewhere.text
    wired.sandbox.config.list_ignores_to = True
    wired.sandbox.fail_next(500, 20500, times=1, message="Internal Server Error")  # ambiguous, nothing created
    message = reply(wired, conversation_id, body).json()
    wait_for(lambda: message_status(wired, message["id"]) == "delivered", message="sent after the lookup")
    assert [m["body"] for m in sent_to(wired, CUSTOMER)] == [body]
    assert scalar(wired.db, "SELECT sid FROM messages WHERE id = :id", id=message["id"]) != elsewhere.json()["sid"]


def test_timeout_after_sending_is_reconciled_not_resent(wired) -> None:
    conversation_id = customer_writes(wired, "Hello")
    wired.inbox.runtime.sender.timeout = 0.3
    wired.sandbox.set_delay(1.0)  # the message exists, the answer comes too late
    message = reply(wired, conversation_id, "No double send").json()
    wait_for(
        lambda: scalar(wired.db, "SELECT sid FROM messages WHERE id = :id", id=message["id"]) is not None,
        timeout=20,
        message="the SID adopted",
    )
    wired.sandbox.set_delay(0)
    assert [m["body"] for m in sent_to(wired, CUSTOMER)] == ["No double send"]


def test_expired_lease_is_reconciled_then_sent_once(wired) -> None:
    """A worker died mid-send (its lease ran out): Twilio's list is asked first, then it is sent once."""
    conversation_id = customer_writes(wired, "Hello")
    asyncio.run(_plant_dead_claim(wired.db, conversation_id))
    wired.inbox.runtime.outbox_waker.wake()
    wait_for(
        lambda: scalar(wired.db, "SELECT status FROM messages WHERE body = 'From a dead worker'") == "delivered",
        message="delivered after the lease expired",
    )
    assert [m["body"] for m in sent_to(wired, CUSTOMER)] == ["From a dead worker"]


async def _plant_dead_claim(database_url: str, conversation_id: int) -> None:
    from datetime import timedelta

    from inbox.clock import utcnow
    from inbox.db import Database
    from inbox.models import Message

    db = Database(database_url)
    async with db.write() as session:
        session.add(
            Message(
                conversation_id=conversation_id,
                direction="outbound",
                channel="sms",
                from_addr="+15005550007",
                to_addr=CUSTOMER,
                body="From a dead worker",
                status="queued",
                attempts=1,
                claimed_until=utcnow() - timedelta(seconds=1),
                next_attempt_at=utcnow(),
            )
        )
        await session.commit()
    await db.dispose()


def test_whatsapp_to_someone_who_never_wrote_there_says_so(wired) -> None:
    conversation_id = customer_writes(wired, "Hello by SMS")
    refused = reply(wired, conversation_id, "Hi on WhatsApp", channel="whatsapp")
    assert refused.status_code == 409 and refused.json()["error"] == "whatsapp_window_closed"
    assert "never written on WhatsApp" in refused.json()["detail"]
    assert "24 hours ago" not in refused.json()["detail"]


TEMPLATE = "HX" + "c" * 32


def whatsapp_customer(wired) -> int:
    conversation_id = customer_writes(wired, "Oi", from_="whatsapp:+5511912345678", to="whatsapp:+14155238886")
    add_template(wired.db, "Appointment", TEMPLATE, "Hi {{1}}, see you on {{2}}.", ["Name", "Day"])
    return conversation_id


def send_template(wired, conversation_id: int, variables) -> httpx.Response:
    return reply(wired, conversation_id, None, channel="whatsapp", content_sid=TEMPLATE, content_variables=variables)


@pytest.mark.parametrize(
    ("variables", "missing"),
    [({"1": "", "2": ""}, ["1", "2"]), ({"1": "Ana", "2": "   "}, ["2"]), (None, ["1", "2"]), ({"1": "Ana"}, ["2"])],
)
def test_a_template_with_a_blank_variable_is_refused_naming_it(wired, variables, missing) -> None:
    conversation_id = whatsapp_customer(wired)
    response = send_template(wired, conversation_id, variables)
    assert response.status_code == 422
    assert response.json()["error"] == "missing_template_variables"
    assert response.json()["missing"] == missing
    assert "Day ({{2}})" in response.json()["detail"]
    assert scalar(wired.db, "SELECT count(*) FROM messages WHERE direction = 'outbound'") == 0


@pytest.mark.parametrize(
    ("variables", "code"),
    [
        ({"1": "Ana", "2": "Friday", "3": "extra"}, "unknown_template_variables"),
        ({"1": "Ana", "2": "x" * 1025}, "template_variable_too_long"),
        ({str(n): "x" for n in range(1, 22)}, "invalid_template"),
        ({"1": "Ana", "2": 5}, "invalid_template"),
    ],
)
def test_template_variables_are_bounded(wired, variables, code) -> None:
    conversation_id = whatsapp_customer(wired)
    response = send_template(wired, conversation_id, variables)
    assert response.status_code == 422 and response.json()["error"] == code
    assert scalar(wired.db, "SELECT count(*) FROM messages WHERE direction = 'outbound'") == 0


def test_an_unregistered_template_is_refused(wired) -> None:
    conversation_id = whatsapp_customer(wired)
    response = reply(
        wired, conversation_id, None, channel="whatsapp", content_sid="HX" + "d" * 32, content_variables={"1": "A"}
    )
    assert response.status_code == 422 and response.json()["error"] == "unknown_template"


def test_a_sent_template_shows_its_rendered_text_in_the_thread_and_the_list(wired) -> None:
    conversation_id = whatsapp_customer(wired)
    response = send_template(wired, conversation_id, {"1": "Ana", "2": "Friday"})
    assert response.status_code == 202
    assert response.json()["body"] == "Hi Ana, see you on Friday."
    thread = wired.api.get(f"/api/conversations/{conversation_id}").json()
    assert thread["messages"][-1]["body"] == "Hi Ana, see you on Friday."
    [listed] = [c for c in wired.api.get("/api/conversations").json()["conversations"] if c["id"] == conversation_id]
    assert listed["last_message"]["body"] == "Hi Ana, see you on Friday."
    wait_for(lambda: message_status(wired, response.json()["id"]) in ("sent", "delivered"), message="template sent")
    # Twilio was given the template and its variables, not our rendering of it.
    [sent] = sent_to(wired, "whatsapp:+5511912345678")
    assert sent["body"] == f'[template {TEMPLATE}] {{"1": "Ana", "2": "Friday"}}'


def test_every_message_says_who_wrote_it(wired) -> None:
    with open_socket(wired.inbox.url, token=wired.token) as socket:
        conversation_id = customer_writes(wired, "Hello")
        staff_id = scalar(wired.db, "SELECT id FROM staff WHERE email = 'reception@example.com'")
        sent = reply(wired, conversation_id, "On our way").json()
        staff = {"type": "staff", "id": staff_id, "name": "reception"}
        assert sent["author"] == staff
        created = read_until(
            socket, lambda e: e["type"] == "message.created" and e["data"]["message"]["id"] == sent["id"]
        )
        assert created["data"]["message"]["author"] == staff
        updated = read_until(
            socket,
            lambda e: e["type"] == "message.updated" and e["data"]["message"]["id"] == sent["id"],
            timeout=30,
        )
        assert updated["data"]["message"]["author"] == staff
        customer_writes(wired, "HELP")  # the inbox answers HELP itself
        wait_for(
            lambda: scalar(wired.db, "SELECT count(*) FROM messages WHERE auto_reply IS NOT NULL") == 1,
            message="help answer",
        )
    thread = wired.api.get(f"/api/conversations/{conversation_id}").json()
    authors = [(m["direction"], m["body"][:10], m["author"]) for m in thread["messages"]]
    assert authors[0] == ("inbound", "Hello", {"type": "customer"})
    assert authors[1] == ("outbound", "On our way", staff)
    assert authors[2] == ("inbound", "HELP", {"type": "customer"})
    assert authors[3][0] == "outbound" and authors[3][2] == {"type": "automatic"}
    [listed] = [c for c in wired.api.get("/api/conversations").json()["conversations"] if c["id"] == conversation_id]
    assert listed["last_message"]["author"] == {"type": "automatic"}


def test_author_names_come_from_the_database_that_stored_the_message(serve, sqlite_template, tmp_path) -> None:
    """Two inboxes in one process (as in this test suite), each with a staff member id 1: each
    names its own, never the other's."""
    import shutil

    names = {}
    for name in ("Rosa Reyes", "Maria Lopez"):
        target = tmp_path / f"{name.split()[0]}.db"
        shutil.copy(sqlite_template, target)
        url = f"sqlite+aiosqlite:///{target}"
        server = serve(url)
        create_staff(url, "someone@example.com", name=name)
        token = issue_token(url, "someone@example.com")
        post_twilio(server.url, "inbound_sms", MessageSid="SM" + "7" * 32)
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=15) as api:
            [conversation] = api.get("/api/conversations").json()["conversations"]
            sent = api.post(f"/api/conversations/{conversation['id']}/messages", json={"body": "Hello"}).json()
            listed = api.get(f"/api/conversations/{conversation['id']}").json()["messages"][-1]
        names[name] = (sent["author"]["name"], listed["author"]["name"])
    assert names == {"Rosa Reyes": ("Rosa Reyes", "Rosa Reyes"), "Maria Lopez": ("Maria Lopez", "Maria Lopez")}
