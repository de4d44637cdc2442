"""Every input that once gave a 500 gets a 4xx with the JSON error shape, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import http.client
import json
from contextlib import closing
from urllib.parse import urlsplit

import httpx
import pytest
from websockets.exceptions import ConnectionClosed

from tests.support.live import open_socket
from tests.support.staff import create_staff, issue_token
from tests.support.twilio import post_twilio

HUGE = "9" * 30  # beyond 64 bits
BEYOND_64 = str(2**64)


def _cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


API_CASES = [
    ("GET", f"/api/conversations/{BEYOND_64}", None),
    ("GET", f"/api/conversations/{HUGE}", None),
    ("POST", f"/api/conversations/{BEYOND_64}/read", None),
    ("POST", f"/api/conversations/{BEYOND_64}/messages", b'{"body": "hi"}'),
    ("GET", f"/api/customers/{BEYOND_64}/consent", None),
    ("POST", f"/api/customers/{BEYOND_64}/consent", b'{"channel": "sms", "action": "opt_out", "note": "asked"}'),
    ("GET", f"/api/conversations?cursor={_cursor('2026-01-01T00:00:00|1')}", None),  # naive time
    ("GET", f"/api/conversations?cursor={_cursor('2026-01-01T00:00:00+00:00|' + HUGE)}", None),
    ("GET", f"/api/conversations?cursor={_cursor('9999-12-31T23:59:59+14:00|1')}", None),
    ("GET", "/api/conversations?cursor=" + "A" * 5000, None),
    ("GET", f"/api/export/audit?before={HUGE}", None),
    ("GET", f"/api/export/audit?limit={HUGE}", None),
    ("POST", "/api/conversations/1/messages", b'{"body": "\xff\xfe"}'),  # invalid UTF-8 inside JSON
    ("POST", "/api/conversations/1/messages", b"[" * 100_000 + b"]" * 100_000),  # deeply nested
    ("POST", "/api/customers/1/consent", b"[1, 2, 3]"),  # not an object
    ("POST", "/api/customers/1/consent", b'"text"'),
    ("POST", "/api/customers/1/consent", b"\xff"),
    ("POST", "/api/customers/1/consent", b"{" * 100_000),
]


@pytest.fixture
def inbox(serve, database_url):
    server = serve(database_url)
    create_staff(database_url, "maria@example.com", role="manager")
    server.token = issue_token(database_url, "maria@example.com")
    post_twilio(server.url, "inbound_sms")  # conversation 1, customer 1
    return server


def _raw_get(base_url: str, path: str) -> tuple[int, str]:
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=15)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def _assert_json_4xx(response: httpx.Response, label: str) -> None:
    assert 400 <= response.status_code < 500, f"{label}: {response.status_code} {response.text[:200]}"
    body = response.json()
    assert set(body) == {"error", "detail"} and body["error"] and body["detail"], label


def test_inputs_that_gave_500_get_a_json_4xx(inbox) -> None:
    headers = {"Authorization": f"Bearer {inbox.token}", "Content-Type": "application/json"}
    with closing(httpx.Client(base_url=inbox.url, headers=headers, timeout=30)) as client:
        for method, path, body in API_CASES:
            _assert_json_4xx(client.request(method, path, content=body), f"{method} {path[:80]}")
        for path in ("/static/x%00.js", "/static/js/dom.js/..", "/static/js/nope.js", "/static/%2e%2e/inbox/app.py"):
            status, text = _raw_get(inbox.url, path)  # byte for byte: no client-side `..` folding
            assert 400 <= status < 500, f"{path}: {status} {text[:200]}"
            body = json.loads(text)
            assert set(body) == {"error", "detail"}, path
            assert "/inbox" not in text and "static" not in body["detail"], path
        for query in (f"?m={HUGE}", ""):
            response = post_twilio(
                inbox.url, "status_callback", path="/webhooks/twilio/status" + query, ErrorCode="1" * 23
            )
            _assert_json_4xx(response, f"status callback {query}")
        assert client.get("/api/me").status_code == 200  # and the app is still fine


@pytest.mark.parametrize("after", [HUGE, BEYOND_64, "-1", "abc"])
def test_a_socket_asking_for_an_impossible_after_is_closed_as_a_bad_request(inbox, after) -> None:
    with (
        open_socket(inbox.url, token=inbox.token, after=after) as socket,  # type: ignore[arg-type]
        pytest.raises(ConnectionClosed) as closed,
    ):
        socket.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4400
