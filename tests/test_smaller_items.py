"""Finding 8's smaller items: an Idempotency-Key reused for another message, bounded template
variables, pending statuses that expire."""

from __future__ import annotations

import httpx
import pytest

from tests.support.db import execute, rows, scalar
from tests.support.staff import create_staff, issue_token
from tests.support.twilio import post_twilio


@pytest.fixture
def api(serve, database_url):
    server = serve(database_url, runtime_options={"run_outbox": False})
    create_staff(database_url, "maria@example.com", role="manager")
    token = issue_token(database_url, "maria@example.com")
    assert post_twilio(server.url, "inbound_sms").status_code == 200
    client = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=15)
    client.db = database_url
    yield client
    client.close()


def test_an_idempotency_key_reused_for_a_different_message_is_422(api) -> None:
    key = {"Idempotency-Key": "reply-1"}
    first = api.post("/api/conversations/1/messages", json={"body": "Ready at 5"}, headers=key)
    assert first.status_code == 202
    again = api.post("/api/conversations/1/messages", json={"body": "Ready at 5"}, headers=key)
    assert again.status_code == 202 and again.json()["id"] == first.json()["id"]
    other = api.post("/api/conversations/1/messages", json={"body": "Ready at 6"}, headers=key)
    assert other.status_code == 422 and other.json()["error"] == "idempotency_key_reused"
    assert scalar(api.db, "SELECT count(*) FROM messages WHERE direction = 'outbound'") == 1


def test_template_variables_are_bounded(api) -> None:
    template = {"content_sid": "HX" + "a" * 32, "channel": "sms"}
    too_many = {str(n): "x" for n in range(21)}
    too_long = {"1": "x" * 1601}
    for variables in (too_many, too_long, {"n" * 33: "x"}):
        response = api.post("/api/conversations/1/messages", json={**template, "content_variables": variables})
        assert response.status_code == 422 and response.json()["error"] == "invalid_template"
    assert scalar(api.db, "SELECT count(*) FROM messages WHERE direction = 'outbound'") == 0


def test_pending_statuses_for_sids_never_sent_expire(serve, database_url) -> None:
    server = serve(database_url, runtime_options={"run_outbox": False})
    execute(
        database_url,
        "INSERT INTO pending_statuses (sid, status, created_at) VALUES "
        "('SM"
        + "1" * 32
        + "', 'sent', '2000-01-01 00:00:00'), ('SM"
        + "2" * 32
        + "', 'delivered', '2000-01-01 00:00:00')",
    )
    response = post_twilio(server.url, "status_callback", path="/webhooks/twilio/status", MessageSid="SM" + "3" * 32)
    assert response.status_code == 204
    assert rows(database_url, "SELECT sid FROM pending_statuses") == [("SM" + "3" * 32,)]  # only the fresh one


def test_an_opt_out_learned_from_twilio_21610_is_reversed_only_by_a_manager(serve, database_url) -> None:
    from inbox import consent
    from inbox.db import Database
    from inbox.models import Customer

    server = serve(database_url, runtime_options={"run_outbox": False})
    create_staff(database_url, "rui@example.com")
    create_staff(database_url, "maria@example.com", role="manager")
    assert post_twilio(server.url, "inbound_sms").status_code == 200

    async def record_21610() -> None:  # as the outbox records it when Twilio answers 21610
        db = Database(database_url)
        try:
            async with db.write() as session:
                customer = await session.get(Customer, 1)
                await consent.append(
                    session,
                    customer,
                    channel="sms",
                    action=consent.OPT_OUT,
                    source="twilio_21610",
                    evidence={"error_code": 21610},
                )
                await session.commit()
        finally:
            await db.dispose()

    import asyncio

    asyncio.run(record_21610())
    opt_in = {"channel": "sms", "action": "opt_in", "note": "said yes on the phone"}
    for email, expected in (("rui@example.com", 403), ("maria@example.com", 201)):
        token = issue_token(database_url, email)
        response = httpx.post(
            server.url + "/api/customers/1/consent", json=opt_in, headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == expected, (email, response.text)
    assert scalar(database_url, "SELECT count(*) FROM consent_records WHERE source = 'staff'") == 1


@pytest.mark.parametrize("outcome", ["failed", "undelivered"])
def test_a_failure_without_an_error_code_reads_as_a_sentence(api, outcome) -> None:
    sent = api.post("/api/conversations/1/messages", json={"body": "Ready at 5"})
    assert sent.status_code == 202
    sid = "SM" + "5" * 32
    execute(api.db, f"UPDATE messages SET sid = '{sid}', status = 'sent' WHERE id = {sent.json()['id']}")
    base = str(api.base_url).rstrip("/")
    pairs = {"MessageSid": sid, "SmsSid": sid, "MessageStatus": outcome, "SmsStatus": outcome}
    assert post_twilio(base, "status_callback", path="/webhooks/twilio/status", **pairs).status_code == 204
    [message] = [m for m in api.get("/api/conversations/1").json()["messages"] if m["direction"] == "outbound"]
    assert message["status"] == outcome and message["error_code"] is None
    assert message["error_message"].endswith("gave no reason.")
