"""POST /webhooks/twilio/inbound over real HTTP: signed in, forged out, threaded by customer."""

from __future__ import annotations

import httpx
import pytest

from tests.support.db import rows, scalar
from tests.support.twilio import SECONDARY_TOKEN, fixture_pairs, post_twilio, signature_for


def count(url: str, table: str) -> int:
    return scalar(url, f"SELECT count(*) FROM {table}")


def test_signed_sms_is_stored_and_answered_with_twiml(serve, database_url) -> None:
    server = serve(database_url)
    response = post_twilio(server.url, "inbound_sms")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    assert response.text.strip().endswith("<Response/>")
    [(sid, direction, channel, sender, body, status)] = rows(
        database_url, "SELECT sid, direction, channel, from_addr, body, status FROM messages"
    )
    assert (sid, direction, channel, sender, status) == (
        "SM0a1b2c3d4e5f60718293a4b5c6d7e8f9",
        "inbound",
        "sms",
        "+14155550123",
        "received",
    )
    assert body == "Hi, is my repair ready?"
    assert count(database_url, "events") == 2  # message.created + conversation.updated


@pytest.mark.parametrize(
    "forgery",
    [
        {"signature": ""},  # header present but empty
        {"signature": "bm90IGEgc2lnbmF0dXJl"},
        {"token": "9" * 32},  # signed with the wrong auth token
        {"public_url": "https://evil.example.com"},  # signed for another URL
    ],
)
def test_forged_webhooks_get_403_and_store_nothing(serve, database_url, forgery) -> None:
    server = serve(database_url)
    response = post_twilio(server.url, "inbound_sms", **forgery)
    assert response.status_code == 403
    assert "signature did not match" in response.text.lower()
    assert count(database_url, "messages") == 0 and count(database_url, "customers") == 0


def test_missing_signature_header_is_403_not_500(serve, sqlite_url) -> None:
    server = serve(sqlite_url)
    body = httpx.QueryParams(fixture_pairs("inbound_sms")).__str__()
    response = httpx.post(
        server.url + "/webhooks/twilio/inbound",
        content=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 403
    assert count(sqlite_url, "messages") == 0


def test_tampered_body_is_refused(serve, sqlite_url) -> None:
    server = serve(sqlite_url)
    pairs = fixture_pairs("inbound_sms")
    url = server.url + "/webhooks/twilio/inbound"
    signature = signature_for(url, pairs)
    tampered = [(k, "Send me your card number" if k == "Body" else v) for k, v in pairs]
    response = httpx.post(
        url,
        content=str(httpx.QueryParams(tampered)),
        headers={"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 403
    assert count(sqlite_url, "messages") == 0


def test_https_public_url_behind_plain_http_proxy(serve, sqlite_url) -> None:
    """Twilio signs https://inbox.example.com/…; the request reaches us as http://127.0.0.1:port/…."""
    server = serve(sqlite_url, INBOX_PUBLIC_URL="https://inbox.example.com")
    forged_host = post_twilio(server.url, "inbound_sms", MessageSid="SM" + "e" * 32)  # signed for the local URL
    assert forged_host.status_code == 403
    response = post_twilio(server.url, "inbound_sms", public_url="https://inbox.example.com")
    assert response.status_code == 200
    assert count(sqlite_url, "messages") == 1


def test_query_string_is_part_of_the_signed_url(serve, sqlite_url) -> None:
    server = serve(sqlite_url)
    path = "/webhooks/twilio/inbound?source=number-1"
    assert post_twilio(server.url, "inbound_sms", path=path).status_code == 200
    wrong = post_twilio(
        server.url,
        "inbound_sms",
        path="/webhooks/twilio/inbound?source=number-2",
        signature=signature_for(server.url + path, fixture_pairs("inbound_sms")),
        MessageSid="SM" + "f" * 32,
    )
    assert wrong.status_code == 403


def test_messaging_service_pool_number_is_accepted(serve, database_url) -> None:
    """Numbers in a Messaging Service pool add MessagingServiceSid: that must never turn into 403."""
    server = serve(database_url)
    response = post_twilio(server.url, "inbound_messaging_service")
    assert response.status_code == 200
    assert rows(database_url, "SELECT from_addr, to_addr FROM messages") == [("+447700900456", "+447700900123")]


def test_unknown_fields_and_repeated_keys_are_signed_and_fine(serve, sqlite_url) -> None:
    server = serve(sqlite_url)
    pairs = [
        *fixture_pairs("inbound_sms"),
        ("AddOns", '{"status":"successful"}'),
        ("FutureField", ""),
        ("Tag", "b"),
        ("Tag", "a"),
    ]
    url = server.url + "/webhooks/twilio/inbound"
    response = httpx.post(
        url,
        content=str(httpx.QueryParams(pairs)),
        headers={"X-Twilio-Signature": signature_for(url, pairs), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200
    assert count(sqlite_url, "messages") == 1


def test_token_rotation_accepts_the_secondary_token(serve, sqlite_url) -> None:
    server = serve(sqlite_url, TWILIO_AUTH_TOKEN_SECONDARY=SECONDARY_TOKEN)
    assert post_twilio(server.url, "inbound_sms", token=SECONDARY_TOKEN).status_code == 200
    assert post_twilio(server.url, "inbound_mms").status_code == 200  # the primary still works
    assert count(sqlite_url, "messages") == 2


def test_oversized_body_is_refused_before_parsing(serve, sqlite_url) -> None:
    server = serve(sqlite_url)
    response = post_twilio(server.url, "inbound_sms", Body="x" * (65 * 1024))
    assert response.status_code == 413
    assert count(sqlite_url, "messages") == 0


def test_mms_keeps_every_media_item(serve, database_url) -> None:
    server = serve(database_url)
    assert post_twilio(server.url, "inbound_mms").status_code == 200
    media = scalar(database_url, "SELECT media FROM messages")
    import json

    media = json.loads(media) if isinstance(media, str) else media
    assert [item["content_type"] for item in media] == ["image/jpeg", "application/pdf"]
    assert media[0]["url"].startswith("https://api.twilio.com/2010-04-01/Accounts/")


def test_one_thread_per_customer_across_sms_and_whatsapp(serve, database_url) -> None:
    server = serve(database_url)
    post_twilio(server.url, "inbound_whatsapp")
    post_twilio(
        server.url, "inbound_sms", From="+5511912345678", MessageSid="SM" + "1" * 32, Body="Same person, by SMS"
    )
    post_twilio(server.url, "inbound_sms")  # somebody else
    assert count(database_url, "customers") == 2
    assert count(database_url, "conversations") == 2
    [(_phone, profile)] = rows(
        database_url, "SELECT phone, whatsapp_profile_name FROM customers WHERE phone = '+5511912345678'"
    )
    assert profile == "Ana Souza"
    channels = rows(
        database_url,
        "SELECT m.channel FROM messages m JOIN conversations c ON c.id = m.conversation_id "
        "JOIN customers cu ON cu.id = c.customer_id WHERE cu.phone = '+5511912345678' ORDER BY m.id",
    )
    assert channels == [("whatsapp",), ("sms",)]


def test_signed_but_malformed_form_is_400_and_stores_nothing(serve, sqlite_url) -> None:
    server = serve(sqlite_url)
    pairs = [("AccountSid", "AC" + "1" * 32), ("Body", "no sid, no sender")]
    url = server.url + "/webhooks/twilio/inbound"
    response = httpx.post(
        url,
        content=str(httpx.QueryParams(pairs)),
        headers={"X-Twilio-Signature": signature_for(url, pairs), "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 400
    assert count(sqlite_url, "messages") == 0


def test_only_post_reaches_the_webhooks(serve, sqlite_url) -> None:
    server = serve(sqlite_url)
    for path in ("/webhooks/twilio/inbound", "/webhooks/twilio/status"):
        response = httpx.get(server.url + path)
        assert response.status_code == 405
    assert count(sqlite_url, "messages") == 0


def test_an_oversized_body_without_a_length_is_refused_as_it_streams(serve, sqlite_url) -> None:
    server = serve(sqlite_url)

    def chunks():  # chunked transfer: no Content-Length to refuse it by
        for _ in range(70):
            yield b"Body=" + b"x" * 1024 + b"&"

    response = httpx.post(
        server.url + "/webhooks/twilio/inbound",
        content=chunks(),
        headers={"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": "irrelevant"},
    )
    assert response.status_code == 413
    assert count(sqlite_url, "messages") == 0
