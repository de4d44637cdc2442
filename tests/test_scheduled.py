"""Scheduled replies: sent by the outbox at their time, once; canceled ones never; consent and the
WhatsApp window judged when they go out. Real inbox, real sandbox, the official client, both databases."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx
import pytest

from tests.support.db import execute, scalar
from tests.support.sandbox import FAST_OUTBOX, sandbox_settings, start_sandbox, wait_for
from tests.support.servers import ProcessServer, free_port
from tests.support.staff import create_staff, issue_token, signed_in_client
from tests.support.twilio import post_twilio
from tests.test_outbox_processes import inbox_env
from tests.test_replies import CUSTOMER, customer_writes, message_status, reply, sent_to


@pytest.fixture
def wired(serve, database_url):
    sandbox, sandbox_server = start_sandbox()
    inbox = serve(database_url, runtime_options={"outbox_config": FAST_OUTBOX}, **sandbox_settings(sandbox_server.url))
    sandbox.config.inbound_webhook_url = inbox.url + "/webhooks/twilio/inbound"
    create_staff(database_url, "reception@example.com")
    token = issue_token(database_url, "reception@example.com")
    api = httpx.Client(base_url=inbox.url, headers={"Authorization": f"Bearer {token}"}, timeout=15)
    yield type("Wired", (), {"inbox": inbox, "sandbox": sandbox, "api": api, "db": database_url})
    api.close()
    sandbox_server.stop()
    asyncio.run(sandbox.aclose())


def later(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


def bodies_sent(wired, number: str = CUSTOMER) -> list[str]:
    return [m["body"] for m in sent_to(wired, number)]


def test_a_reply_scheduled_3_s_ahead_goes_out_once_at_its_time(wired) -> None:
    conversation_id = customer_writes(wired, "Can you remind me tomorrow?")
    send_at = later(3)
    response = reply(wired, conversation_id, "Reminder: your fitting is today.", send_at=send_at.isoformat())
    assert response.status_code == 202
    message = response.json()
    assert message["status"] == "scheduled"
    assert datetime.fromisoformat(message["send_at"]) == send_at
    # Until its time it waits, listed in the thread as scheduled; the sandbox has nothing for it.
    thread = wired.api.get(f"/api/conversations/{conversation_id}").json()
    assert [m["status"] for m in thread["messages"] if m["id"] == message["id"]] == ["scheduled"]
    assert bodies_sent(wired) == []
    wait_for(lambda: message_status(wired, message["id"]) == "delivered", timeout=15, message="delivered")
    [sent] = sent_to(wired, CUSTOMER)
    assert sent["body"] == "Reminder: your fitting is today."
    # Twilio was asked no earlier than the time chosen (its clock keeps whole seconds).
    assert parsedate_to_datetime(sent["date_created"]) >= send_at.replace(microsecond=0)
    assert scalar(wired.db, "SELECT attempts FROM messages WHERE id = :id", id=message["id"]) == 1
    # Once it has gone, it cannot be called off.
    too_late = wired.api.delete(f"/api/messages/{message['id']}")
    assert too_late.status_code == 409 and too_late.json()["error"] == "already_sent"
    assert bodies_sent(wired) == ["Reminder: your fitting is today."]


def test_a_canceled_reply_is_never_sent(wired) -> None:
    conversation_id = customer_writes(wired, "Hello")
    # Times a few seconds ahead: on a loaded machine a request can take over a second, and a
    # send_at already past when it arrives is refused (422), or goes before the test acts on it.
    first = reply(wired, conversation_id, "Canceled one", send_at=later(4).isoformat()).json()
    canceled = wired.api.delete(f"/api/messages/{first['id']}")
    assert canceled.status_code == 200 and canceled.json()["status"] == "canceled"
    assert wired.api.delete(f"/api/messages/{first['id']}").json()["status"] == "canceled"  # said twice: the same
    refused = wired.api.post(f"/api/messages/{first['id']}/send-now")
    assert refused.status_code == 409 and refused.json()["error"] == "canceled"
    # A second reply due after the first one's time: once it is delivered, the outbox has passed both.
    second = reply(wired, conversation_id, "Kept one", send_at=later(5).isoformat()).json()
    wait_for(lambda: message_status(wired, second["id"]) == "delivered", timeout=25, message="the kept one")
    assert bodies_sent(wired) == ["Kept one"]
    assert message_status(wired, first["id"]) == "canceled"


def test_send_now_sends_a_scheduled_reply_at_once(wired) -> None:
    conversation_id = customer_writes(wired, "Hello")
    message = reply(wired, conversation_id, "Tomorrow's reminder", send_at=later(3600).isoformat()).json()
    now = wired.api.post(f"/api/messages/{message['id']}/send-now")
    assert now.status_code == 200 and now.json()["status"] == "queued"
    wait_for(lambda: message_status(wired, message["id"]) == "delivered", message="delivered")
    assert bodies_sent(wired) == ["Tomorrow's reminder"]
    again = wired.api.post(f"/api/messages/{message['id']}/send-now")
    assert again.status_code == 409 and again.json()["error"] == "already_sent"


def thread_bodies(wired, conversation_id: int) -> list[str]:
    return [m["body"] for m in wired.api.get(f"/api/conversations/{conversation_id}").json()["messages"]]


def transcript_order(wired, conversation_id: int, bodies: list[str]) -> list[str]:
    browser, _ = signed_in_client(wired.inbox.url, "reception@example.com")
    with contextlib.closing(browser):
        html = browser.get(f"/conversations/{conversation_id}/transcript").text
    return sorted(bodies, key=html.index)


@pytest.mark.parametrize("released_by", ["its time", "send now"])
def test_a_customer_who_writes_while_a_reply_waits_reads_above_it_then_and_after_it_goes(wired, released_by) -> None:
    """The thread and the transcript read in the order things happened: the waiting reply below the
    customer's later message, and still below it once it has gone out (not at its id's place)."""
    conversation_id = customer_writes(wired, "Can you remind me?")
    when = later(4) if released_by == "its time" else later(3600)
    waiting = reply(wired, conversation_id, "Reminder: today at 3.", send_at=when.isoformat()).json()
    customer_writes(wired, "Actually, can we make it 4?")
    in_order = ["Can you remind me?", "Actually, can we make it 4?", "Reminder: today at 3."]
    assert thread_bodies(wired, conversation_id) == in_order
    if released_by == "send now":
        assert wired.api.post(f"/api/messages/{waiting['id']}/send-now").status_code == 200
    wait_for(lambda: message_status(wired, waiting["id"]) == "delivered", timeout=20, message="delivered")
    assert thread_bodies(wired, conversation_id) == in_order
    assert transcript_order(wired, conversation_id, in_order) == in_order


def test_cancel_refuses_what_was_never_scheduled(wired) -> None:
    conversation_id = customer_writes(wired, "Hello")
    immediate = reply(wired, conversation_id, "At once").json()
    assert wired.api.delete(f"/api/messages/{immediate['id']}").json()["error"] == "already_sent"
    inbound = scalar(wired.db, "SELECT id FROM messages WHERE direction = 'inbound'")
    assert wired.api.delete(f"/api/messages/{inbound}").json()["error"] == "not_scheduled"
    assert wired.api.delete("/api/messages/999999").status_code == 404


def test_an_opt_out_after_scheduling_fails_it_with_the_reason(wired) -> None:
    conversation_id = customer_writes(wired, "Hello")
    message = reply(wired, conversation_id, "See you at 9", send_at=later(5).isoformat()).json()
    customer_id = scalar(wired.db, "SELECT customer_id FROM conversations WHERE id = :id", id=conversation_id)
    recorded = wired.api.post(
        f"/api/customers/{customer_id}/consent",
        json={"channel": "sms", "action": "opt_out", "note": "Asked on the phone"},
    )
    assert recorded.status_code in (200, 201)
    wait_for(lambda: message_status(wired, message["id"]) == "failed", timeout=25, message="failed at its time")
    reason = scalar(wired.db, "SELECT error_message FROM messages WHERE id = :id", id=message["id"])
    assert "scheduled time" in reason and "opted out" in reason
    shown = wired.api.get(f"/api/conversations/{conversation_id}").json()["messages"]
    assert [m["error_message"] for m in shown if m["id"] == message["id"]] == [reason]
    assert sent_to(wired, CUSTOMER) == []


def test_a_whatsapp_window_closed_by_send_time_fails_it(wired) -> None:
    # Scheduling is allowed while the window is open; by the time it is due the window has closed.
    conversation_id = customer_writes(wired, "Oi", from_="whatsapp:+5511912345678", to="whatsapp:+14155238886")
    message = reply(wired, conversation_id, "Bom dia", channel="whatsapp", send_at=later(5).isoformat()).json()
    assert message["status"] == "scheduled"
    execute(wired.db, "UPDATE messages SET created_at = :old WHERE direction = 'inbound'", old=later(-25 * 3600))
    wait_for(lambda: message_status(wired, message["id"]) == "failed", timeout=25, message="failed at its time")
    reason = scalar(wired.db, "SELECT error_message FROM messages WHERE id = :id", id=message["id"])
    assert "24 hours" in reason
    assert "Bom dia" not in bodies_sent(wired, "+5511912345678")


def test_a_repeated_idempotency_key_schedules_once_and_refuses_another_time(wired) -> None:
    conversation_id = customer_writes(wired, "Hello")
    send_at = later(3600).isoformat()
    key = {"Idempotency-Key": "schedule-1"}
    first = reply(wired, conversation_id, "Later", send_at=send_at, headers=key)
    again = reply(wired, conversation_id, "Later", send_at=send_at, headers=key)
    assert first.status_code == again.status_code == 202 and again.json()["id"] == first.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    moved = reply(wired, conversation_id, "Later", send_at=later(7200).isoformat(), headers=key)
    assert moved.status_code == 422 and moved.json()["error"] == "idempotency_key_reused"
    at_once = reply(wired, conversation_id, "Later", headers=key)
    assert at_once.status_code == 422 and at_once.json()["error"] == "idempotency_key_reused"
    assert scalar(wired.db, "SELECT count(*) FROM messages WHERE direction = 'outbound'") == 1


@pytest.mark.parametrize(
    ("send_at", "code"),
    [
        ("2030-01-01T09:00:00", "invalid_send_at"),  # no offset: which 09:00?
        ("tomorrow at nine", "invalid_send_at"),
        (12, "invalid_send_at"),
        ("2001-01-01T09:00:00+00:00", "send_at_in_past"),
        ("2999-01-01T09:00:00+00:00", "send_at_too_far"),
    ],
)
def test_a_bad_send_at_is_refused_and_stores_nothing(wired, send_at, code) -> None:
    conversation_id = customer_writes(wired, "Hello")
    response = reply(wired, conversation_id, "Later", send_at=send_at)
    assert response.status_code == 422 and response.json()["error"] == code
    assert response.json()["detail"].endswith(".")
    assert scalar(wired.db, "SELECT count(*) FROM messages WHERE direction = 'outbound'") == 0


def test_killed_before_its_time_the_restarted_inbox_sends_it_once(database_url) -> None:
    """A scheduled reply survives a SIGKILL; after a restart (two processes on PostgreSQL) it goes once."""
    sandbox, sandbox_server = start_sandbox()
    ports = [free_port(), free_port()]
    env = inbox_env(database_url, ports[0], int(sandbox_server.url.rsplit(":", 1)[1]))
    create_staff(database_url, "reception@example.com")
    token = issue_token(database_url, "reception@example.com")
    inbox = ProcessServer(env, port=ports[0]).start()
    workers: list[ProcessServer] = []
    try:
        assert post_twilio(inbox.url, "inbound_sms", From=CUSTOMER).status_code == 200
        conversation_id = scalar(database_url, "SELECT id FROM conversations")
        # Far enough ahead that the kill lands before its time even on a loaded machine: if the first
        # process had claimed it, its 60 s lease would have to run out before anyone sent it.
        send_at = later(15)
        scheduled = httpx.post(
            f"{inbox.url}/api/conversations/{conversation_id}/messages",
            json={"body": "Your table is ready at 8.", "send_at": send_at.isoformat()},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert scheduled.status_code == 202 and scheduled.json()["status"] == "scheduled"
        message_id = scheduled.json()["id"]
        inbox.process.send_signal(signal.SIGKILL)  # no graceful anything, before its time
        killed_at = datetime.now(UTC)
        inbox.stop()
        if killed_at < send_at - timedelta(seconds=1):  # (a machine this slow is no evidence either way)
            assert scalar(database_url, "SELECT status FROM messages WHERE id = :id", id=message_id) == "scheduled"
        count = 2 if database_url.startswith("postgresql") else 1  # SQLite deployments run one process
        with ThreadPoolExecutor(count) as pool:  # started side by side: each start takes seconds
            workers = list(pool.map(lambda port: ProcessServer(env, port=port), ports[:count]))
            list(pool.map(ProcessServer.start, workers))
        # Handed to Twilio (it has its SID), by whichever process claimed it. Not "delivered": the
        # status callback goes to the first port, and the other process may send before that one
        # listens (there is no load balancer in front of the two here).
        wait_for(
            lambda: scalar(database_url, "SELECT sid FROM messages WHERE id = :id", id=message_id),
            timeout=90,  # two `inbox serve` starts on a loaded machine take many seconds each
            message="sent after the restart",
        )
        sent = [m for m in sandbox.conversation_with(CUSTOMER) if m["direction"] == "outbound-api"]
        assert [m["body"] for m in sent] == ["Your table is ready at 8."]
        assert parsedate_to_datetime(sent[0]["date_created"]) >= send_at.replace(microsecond=0)
    finally:
        inbox.stop()
        for worker in workers:
            worker.stop()
        sandbox_server.stop()
        asyncio.run(sandbox.aclose())
