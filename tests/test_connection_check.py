"""Test the connection (settings): the credentials, the Messaging Service and its senders checked
through the official twilio client over real HTTP to the sandbox, said in words; a test SMS
through the outbox."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.support.db import scalar
from tests.support.sandbox import FAST_OUTBOX, SERVICE_SID, sandbox_settings, start_sandbox, wait_for
from tests.support.staff import create_staff, issue_token


@pytest.fixture(scope="module")
def sandbox():
    sandbox, server = start_sandbox()
    yield sandbox, server.url
    server.stop()
    asyncio.run(sandbox.aclose())


def _manager(server, database_url: str, role: str = "manager") -> httpx.Client:
    email = f"{role}@example.com"
    create_staff(database_url, email, role=role)
    token = issue_token(database_url, email)
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def test_a_wrong_token_is_said_in_words(serve, sqlite_url, sandbox) -> None:
    _, url = sandbox
    server = serve(sqlite_url, TWILIO_AUTH_TOKEN="f" * 32, **sandbox_settings(url))
    with _manager(server, sqlite_url) as api:
        report = api.post("/settings/connection/check").json()
    assert report["ok"] is False
    [credentials] = report["checks"]
    assert credentials["name"] == "credentials" and not credentials["ok"]
    assert "Account SID and auth token do not work" in credentials["text"] and "20003" in credentials["text"]
    assert "f" * 32 not in str(report)


def test_right_credentials_say_ok_and_list_the_senders(serve, sqlite_url, sandbox) -> None:
    box, url = sandbox
    server = serve(sqlite_url, runtime_options={"outbox_config": FAST_OUTBOX}, **sandbox_settings(url))
    with _manager(server, sqlite_url) as api, _manager(server, sqlite_url, "receptionist") as receptionist:
        report = api.post("/settings/connection/check").json()
        assert report["ok"] is True, report
        assert [c["name"] for c in report["checks"]] == ["credentials", "messaging_service", "senders"]
        assert "work" in report["checks"][0]["text"] and "Sandbox account" in report["checks"][0]["text"]
        assert report["senders"] == ["+15005550006", "+15005550007"]
        assert "+15005550007" in report["checks"][2]["text"]
        assert str(box.config.auth_token) not in str(report)  # Twilio's account answer holds it
        assert receptionist.post("/settings/connection/check").status_code == 403
        assert receptionist.post("/settings/connection/test-sms", json={"to": "+14155550111"}).status_code == 403

        sent = api.post("/settings/connection/test-sms", json={"to": "(415) 555-0111"})
        assert sent.status_code == 202, sent.text
        message = sent.json()["message"]
        assert message["to"] == "+14155550111" and sent.json()["after"] >= 0
        wait_for(
            lambda: scalar(sqlite_url, "SELECT status FROM messages WHERE id = :id", id=message["id"]) == "delivered",
            message="the test SMS delivered",
        )
        [at_twilio] = [m for m in box.conversation_with("+14155550111") if m["direction"] == "outbound-api"]
        assert at_twilio["messaging_service_sid"] == SERVICE_SID and "Test message" in at_twilio["body"]
        assert api.post("/settings/connection/test-sms", json={"to": "nonsense"}).json()["error"] == "invalid_number"


def test_an_unknown_messaging_service_is_named(serve, sqlite_url, sandbox) -> None:
    _, url = sandbox
    unknown = "MG" + "5" * 32
    server = serve(sqlite_url, **{**sandbox_settings(url), "TWILIO_MESSAGING_SERVICE_SID": unknown})
    with _manager(server, sqlite_url) as api:
        report = api.post("/settings/connection/check").json()
    assert report["ok"] is False
    credentials, service = report["checks"]
    assert credentials["ok"] and not service["ok"]
    assert f"The Messaging Service {unknown} does not exist" in service["text"] and "20404" in service["text"]


def test_a_standard_api_key_works_though_it_may_not_read_the_account(serve, sqlite_url, sandbox) -> None:
    box, url = sandbox
    key, secret = "SK" + "6" * 32, "s" * 32
    box.config.api_keys[key] = secret
    try:
        server = serve(sqlite_url, TWILIO_API_KEY_SID=key, TWILIO_API_KEY_SECRET=secret, **sandbox_settings(url))
        with _manager(server, sqlite_url) as api:
            report = api.post("/settings/connection/check").json()
            assert report["ok"] is True, report
            assert "The API key" in report["checks"][0]["text"] and "Standard key" in report["checks"][0]["text"]
            box.config.api_keys[key] = "t" * 32  # the key's secret was rotated in the Console
            refused = api.post("/settings/connection/check").json()
        assert refused["ok"] is False
        assert "The API key (TWILIO_API_KEY_SID and its secret) do not work" in refused["checks"][0]["text"]
    finally:
        box.config.api_keys.pop(key, None)
