"""Keywords and consent end to end: STOP, START and HELP answered once, every change on the record,
nobody messaged after opting out."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.support.db import rows, scalar
from tests.support.sandbox import FAST_OUTBOX, sandbox_settings, start_sandbox, wait_for
from tests.support.staff import create_staff, issue_token
from tests.support.twilio import post_twilio

CUSTOMER = "+14155550123"
OTHER_CUSTOMER = "+14155550199"


@pytest.fixture
def inbox(serve, database_url, request):
    options = getattr(request, "param", {})
    sandbox, sandbox_server = start_sandbox()
    runtime_options = {"outbox_config": FAST_OUTBOX, **options.get("runtime", {})}
    server = serve(
        database_url, runtime_options=runtime_options, **sandbox_settings(sandbox_server.url), **options.get("env", {})
    )
    captured = {}
    create_staff(database_url, "reception@example.com")
    create_staff(database_url, "manager@example.com", role="manager")
    headers = {"Authorization": f"Bearer {issue_token(database_url, 'reception@example.com')}"}
    manager = {"Authorization": f"Bearer {issue_token(database_url, 'manager@example.com')}"}
    api = httpx.Client(base_url=server.url, headers=headers, timeout=15)
    yield type(
        "Inbox",
        (),
        {
            "url": server.url,
            "db": database_url,
            "api": api,
            "manager": manager,
            "sandbox": sandbox,
            "runtime": server.runtime,
            "captured": captured,
        },
    )
    api.close()
    sandbox_server.stop()
    asyncio.run(sandbox.aclose())


def texts(inbox, body: str, n: int, **extra) -> httpx.Response:
    response = post_twilio(inbox.url, "inbound_sms", Body=body, MessageSid=f"SM{n:032x}", **extra)
    assert response.status_code == 200
    return response


def answers_sent(inbox) -> list[str]:
    """Every reply the customer was sent or will be: the keyword answers (given in TwiML) and replies."""
    return [
        body
        for (body,) in rows(
            inbox.db, "SELECT body FROM messages WHERE direction = 'outbound' AND status NOT IN ('failed') ORDER BY id"
        )
    ]


def reply_to_another_customer(inbox, n: int) -> None:
    """A barrier: another customer writes and is answered; returns once the answer is stored."""
    response = post_twilio(inbox.url, "inbound_sms", From=OTHER_CUSTOMER, Body="Hello", MessageSid=f"SM{n:032x}")
    assert response.status_code == 200
    other = scalar(inbox.db, "SELECT conversation_id FROM messages WHERE sid = :sid", sid=f"SM{n:032x}")
    assert inbox.api.post(f"/api/conversations/{other}/messages", json={"body": "Hi Ben"}).status_code == 202
    wait_for(lambda: "Hi Ben" in answers_sent(inbox), message="the reply to the other customer")


def twiml_answer(response: httpx.Response) -> str | None:
    import xml.etree.ElementTree as ET

    message = ET.fromstring(response.text).find("Message")  # noqa: S314 - the inbox's own answer
    return None if message is None else message.text


def conversation_id(inbox) -> int:
    return scalar(inbox.db, "SELECT id FROM conversations")


def customer_id(inbox) -> int:
    return scalar(inbox.db, "SELECT id FROM customers")


def test_redelivered_stop_is_one_record_and_one_confirmation(inbox) -> None:
    texts(inbox, "Hello", 1)
    first = texts(inbox, " Stop ", 2)
    assert "unsubscribed" in twiml_answer(first)
    for _ in range(3):  # Twilio redelivers
        assert twiml_answer(texts(inbox, " Stop ", 2)) is None
    wait_for(lambda: len(answers_sent(inbox)) == 1, message="the STOP confirmation")
    [(action, source, evidence)] = rows(inbox.db, "SELECT action, source, evidence FROM consent_records")
    assert (action, source) == ("opt_out", "keyword")
    assert f"SM{2:032x}" in str(evidence)
    assert "unsubscribed" in answers_sent(inbox)[0] and "START" in answers_sent(inbox)[0]
    assert scalar(inbox.db, "SELECT keyword FROM messages WHERE sid = :sid", sid=f"SM{2:032x}") == "opt_out"
    # Nothing else trickles out later: a reply to someone else, sent after the redeliveries, comes
    # after anything they could have caused, so it is the next answer and the only other one.
    reply_to_another_customer(inbox, 3)
    [stop_answer, other_reply] = answers_sent(inbox)
    assert "unsubscribed" in stop_answer and other_reply == "Hi Ben"


def test_after_stop_a_reply_is_refused_and_twilio_is_not_called(inbox) -> None:
    texts(inbox, "STOP", 1)
    wait_for(lambda: len(answers_sent(inbox)) == 1, message="the STOP confirmation")
    refused = inbox.api.post(f"/api/conversations/{conversation_id(inbox)}/messages", json={"body": "But wait!"})
    assert refused.status_code == 409
    assert refused.json()["error"] == "opted_out" and "START" in refused.json()["detail"]
    assert len(answers_sent(inbox)) == 1
    detail = inbox.api.get(f"/api/conversations/{conversation_id(inbox)}").json()
    assert detail["customer"]["consent"] == {"sms": "opted_out", "whatsapp": "unknown"}


def test_stop_then_start_then_a_reply_is_sent(inbox) -> None:
    texts(inbox, "stop", 1)
    texts(inbox, "START", 2)
    wait_for(lambda: len(answers_sent(inbox)) == 2, message="both confirmations")
    reply = inbox.api.post(f"/api/conversations/{conversation_id(inbox)}/messages", json={"body": "Welcome back"})
    assert reply.status_code == 202
    wait_for(lambda: "Welcome back" in answers_sent(inbox), message="the reply")
    consent = inbox.api.get(f"/api/customers/{customer_id(inbox)}/consent").json()
    assert [r["action"] for r in consent["records"]] == ["opt_out", "opt_in"]
    assert consent["consent"]["sms"] == "opted_in"


def test_help_is_answered_once_however_often_it_is_redelivered(inbox) -> None:
    assert "STOP" in twiml_answer(texts(inbox, "help", 1))
    assert twiml_answer(texts(inbox, "help", 1)) is None
    wait_for(lambda: len(answers_sent(inbox)) == 1, message="the HELP answer")
    assert "STOP" in answers_sent(inbox)[0]
    assert scalar(inbox.db, "SELECT count(*) FROM consent_records") == 0


def test_a_reply_queued_before_stop_is_not_sent_after_it(serve, database_url) -> None:
    """The outbox checks consent again just before sending."""
    sandbox, sandbox_server = start_sandbox()
    server = serve(
        database_url,
        runtime_options={"outbox_config": FAST_OUTBOX, "run_outbox": False},
        **sandbox_settings(sandbox_server.url),
    )
    try:
        create_staff(database_url, "reception@example.com")
        headers = {"Authorization": f"Bearer {issue_token(database_url, 'reception@example.com')}"}
        post_twilio(server.url, "inbound_sms", Body="Hello", MessageSid=f"SM{1:032x}")
        reply = httpx.post(f"{server.url}/api/conversations/1/messages", json={"body": "Hi!"}, headers=headers)
        assert reply.status_code == 202
        post_twilio(server.url, "inbound_sms", Body="STOP", MessageSid=f"SM{2:032x}")
        server.call(server.runtime.outbox.drain_once())
        statuses = dict(rows(database_url, "SELECT body, status FROM messages WHERE direction = 'outbound'"))
        assert statuses["Hi!"] == "failed"
        assert scalar(database_url, "SELECT error_message FROM messages WHERE body = 'Hi!'").startswith(
            "+14155550123 has opted out of SMS"
        )
        assert [m for m in sandbox.conversation_with(CUSTOMER) if m["direction"] == "outbound-api"] == []
    finally:
        sandbox_server.stop()
        asyncio.run(sandbox.aclose())


def test_keyword_answer_through_twilio_gets_its_sid_and_ticks(inbox) -> None:
    """Through the sandbox, as Twilio would: the answer in the TwiML is sent, and its status
    callback (whose URL names the message) gives the inbox its SID and delivery ticks."""
    inbox.sandbox.config.inbound_webhook_url = inbox.url + "/webhooks/twilio/inbound"
    result = asyncio.run(inbox.sandbox.receive_from_customer(from_=CUSTOMER, to="+15005550006", body="STOP"))
    assert result["webhook_status"] == 200 and len(result["replies"]) == 1
    sid = result["replies"][0]["sid"]
    wait_for(
        lambda: scalar(inbox.db, "SELECT status FROM messages WHERE sid = :sid", sid=sid) == "delivered",
        message="the STOP answer delivered",
    )
    assert scalar(inbox.db, "SELECT auto_reply FROM messages WHERE sid = :sid", sid=sid) == "opt_out"
    # Twilio now refuses REST sends to them, and so does the inbox, before any call
    refused = inbox.api.post(f"/api/conversations/{conversation_id(inbox)}/messages", json={"body": "Hi?"})
    assert refused.status_code == 409


@pytest.mark.parametrize("inbox", [{"env": {"INBOX_KEYWORD_REPLIES": "twilio"}}], indirect=True)
def test_twilio_mode_records_consent_and_sends_no_answer(inbox) -> None:
    texts(inbox, "STOP", 1, OptOutType="STOP")
    texts(inbox, "HELP", 2, OptOutType="HELP")
    texts(inbox, "ARRET", 3, OptOutType="STOP")  # Twilio knew a word the inbox does not
    # A reply to someone else, sent after all that: any answer the keywords caused comes before it.
    reply_to_another_customer(inbox, 4)
    assert answers_sent(inbox) == ["Hi Ben"]
    assert rows(inbox.db, "SELECT action, source FROM consent_records") == [("opt_out", "keyword")]
    assert scalar(inbox.db, "SELECT keyword FROM messages WHERE body = 'ARRET'") == "opt_out"


def test_probable_opt_out_is_flagged_not_acted_on(inbox) -> None:
    texts(inbox, "please stop texting me", 1)
    message = inbox.api.get(f"/api/conversations/{conversation_id(inbox)}").json()["messages"][0]
    assert message["probable_opt_out"] is True and message["keyword"] is None
    assert scalar(inbox.db, "SELECT count(*) FROM consent_records") == 0
    recorded = inbox.api.post(
        f"/api/customers/{customer_id(inbox)}/consent",
        json={"channel": "sms", "action": "opt_out", "note": "Asked by text to stop"},
    )
    assert recorded.status_code == 201
    assert recorded.json()["source"] == "staff" and recorded.json()["evidence"]["note"] == "Asked by text to stop"


def test_reopting_in_a_keyword_opt_out_needs_a_manager(inbox) -> None:
    texts(inbox, "STOP", 1)
    url = f"/api/customers/{customer_id(inbox)}/consent"
    body = {"channel": "sms", "action": "opt_in", "note": "Said on the phone they want reminders again"}
    refused = inbox.api.post(url, json=body)
    assert refused.status_code == 403 and refused.json()["error"] == "needs_manager"
    assert inbox.api.post(url, json={**body, "note": ""}, headers=inbox.manager).status_code == 422
    accepted = inbox.api.post(url, json=body, headers=inbox.manager)
    assert accepted.status_code == 201
    assert inbox.api.get(url).json()["consent"]["sms"] == "opted_in"


def test_consent_change_is_a_live_event(inbox) -> None:
    from tests.support.live import open_socket, read_until

    token = inbox.api.headers["Authorization"].split()[1]
    with open_socket(inbox.url, token=token) as socket:
        texts(inbox, "STOP", 1)
        event = read_until(socket, lambda e: e["type"] == "consent.changed")
    assert event["data"]["customer"]["consent"]["sms"] == "opted_out"
    assert event["data"]["record"]["action"] == "opt_out" and event["data"]["record"]["source"] == "keyword"


def test_yes_does_not_reverse_an_opt_out_on_a_toll_free_number(inbox) -> None:
    texts(inbox, "STOP", 1, To="+18005550100")
    texts(inbox, "YES", 2, To="+18005550100")
    assert scalar(inbox.db, "SELECT count(*) FROM consent_records") == 1
    texts(inbox, "UNSTOP", 3, To="+18005550100")
    assert rows(inbox.db, "SELECT action FROM consent_records ORDER BY id") == [("opt_out",), ("opt_in",)]


def test_managers_export_the_consent_ledger_for_an_audit(inbox) -> None:
    import csv
    import io

    texts(inbox, "STOP", 1)
    inbox.api.post(
        f"/api/customers/{customer_id(inbox)}/consent",
        headers=inbox.manager,
        json={"channel": "sms", "action": "opt_in", "note": '=HYPERLINK("http://evil") said yes'},
    )
    assert inbox.api.get("/api/consent/export").status_code == 403  # a receptionist
    exported = inbox.api.get("/api/consent/export", params={"format": "csv"}, headers=inbox.manager)
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(exported.text)))
    assert [(r["action"], r["source"]) for r in table] == [("opt_out", "keyword"), ("opt_in", "staff")]
    assert f"SM{1:032x}" in table[0]["evidence"]
    assert table[0]["customer_phone"] == "'+14155550123"  # text cells cannot become formulas
    assert table[1]["staff_email"] == "manager@example.com"
    as_json = inbox.api.get("/api/consent/export", params={"format": "json"}, headers=inbox.manager).json()
    assert as_json[1]["evidence"]["note"].startswith("=HYPERLINK")  # JSON keeps the text as it was
