"""A captured, correctly signed webhook re-cut into another form is refused (400) and stores nothing.

Twilio's signature is HMAC(url + sorted name+value pairs, no separator), so moving a key into the
previous value keeps the signature valid. Exact shapes for every Twilio identifier make such a
re-cut fail to parse.
"""

from __future__ import annotations

from urllib.parse import urlencode

import httpx
import pytest

from tests.support.db import scalar
from tests.support.twilio import ACCOUNT_SID, fixture_pairs, post_twilio, signature_for

INBOUND = "/webhooks/twilio/inbound"
STATUS = "/webhooks/twilio/status"


def count(url: str, table: str) -> int:
    return scalar(url, f"SELECT count(*) FROM {table}")


def _post(base: str, path: str, pairs, signature: str, query: str = "") -> httpx.Response:
    return httpx.post(
        base + path + query,
        content=urlencode(pairs),
        headers={"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"},
        timeout=15,
    )


def _assert_json_400(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"] == "invalid_webhook" and response.json()["detail"]


def test_the_moved_key_replay_keeps_its_signature_and_is_refused(serve, database_url) -> None:
    """The exact attack: `MessageSid=<sid>MessagingServiceSid<MG…>` with MessagingServiceSid removed."""
    server = serve(database_url)
    captured = fixture_pairs("inbound_messaging_service", Body="START")
    url = server.url + INBOUND
    signature = signature_for(url, captured)
    assert _post(server.url, INBOUND, captured, signature).status_code == 200
    assert count(database_url, "messages") == 2  # the START and the inbox's answer to it
    consent_before = count(database_url, "consent_records")

    service = dict(captured)["MessagingServiceSid"]
    replay = [
        (k, v + "MessagingServiceSid" + service if k == "MessageSid" else v)
        for k, v in captured
        if k != "MessagingServiceSid"
    ]
    assert signature_for(url, replay) == signature  # the signature cannot tell them apart
    _assert_json_400(_post(server.url, INBOUND, replay, signature))
    assert count(database_url, "messages") == 2
    assert count(database_url, "consent_records") == consent_before


def test_a_replayed_status_callback_re_cut_the_same_way_is_refused(serve, database_url) -> None:
    server = serve(database_url)
    captured = fixture_pairs("status_callback")
    signature = signature_for(server.url + STATUS, captured)
    status = dict(captured)["MessageStatus"]  # SmsStatus still says it once MessageStatus is gone
    replay = [
        (k, v + "MessageStatus" + status if k == "MessageSid" else v) for k, v in captured if k != "MessageStatus"
    ]
    assert signature_for(server.url + STATUS, replay) == signature
    _assert_json_400(_post(server.url, STATUS, replay, signature))
    assert count(database_url, "pending_statuses") == 0


BAD_INBOUND = [
    {"MessageSid": "SM" + "0" * 31},  # too short
    {"MessageSid": "SM" + "0" * 33},
    {"MessageSid": "XX" + "0" * 32},
    {"MessageSid": "SM" + "g" * 32},
    {"SmsMessageSid": "SM0a1b2c3d4e5f60718293a4b5c6d7e8f9AccountSid"},
    {"AccountSid": "AC" + "2" * 32},  # well shaped, but not our account
    {"AccountSid": "AC" + "1" * 32 + "From"},
    {"MessagingServiceSid": "MG123"},
    {"NumMedia": "1", "MediaUrl0": "javascript:alert(1)"},
    {"NumMedia": "1", "MediaUrl0": f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/x/Media/ME12"},
    {"NumMedia": "99"},
    {"NumMedia": "1" + "0" * 22},
]


@pytest.mark.parametrize("overrides", BAD_INBOUND, ids=lambda o: ",".join(o))
def test_a_signed_inbound_field_not_of_twilios_shape_is_400(serve, sqlite_url, overrides) -> None:
    server = serve(sqlite_url)
    _assert_json_400(post_twilio(server.url, "inbound_sms", **overrides))
    assert count(sqlite_url, "messages") == 0 and count(sqlite_url, "customers") == 0


@pytest.mark.parametrize(
    ("overrides", "query"),
    [
        ({"MessageSid": "SM" + "0" * 31}, ""),
        ({"AccountSid": "AC" + "2" * 32}, ""),
        ({"ErrorCode": "1" * 23}, ""),
        ({"ErrorCode": "30003x"}, ""),
        ({}, "?m=" + "9" * 30),
    ],
)
def test_a_signed_status_field_not_of_twilios_shape_is_400(serve, sqlite_url, overrides, query) -> None:
    server = serve(sqlite_url)
    response = post_twilio(server.url, "status_callback", path=STATUS + query, **overrides)
    _assert_json_400(response)
    assert count(sqlite_url, "pending_statuses") == 0


def test_twilios_own_media_urls_and_exact_shapes_pass(serve, sqlite_url) -> None:
    server = serve(sqlite_url)
    assert post_twilio(server.url, "inbound_mms").status_code == 200
    assert post_twilio(server.url, "inbound_messaging_service").status_code == 200
    assert post_twilio(server.url, "status_callback", path=STATUS + "?m=1").status_code == 204
    assert count(sqlite_url, "messages") == 2
