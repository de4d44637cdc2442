"""Property-based: whatever a client sends to the JSON API (ids of any size or shape, any query
values, any JSON or bytes as a body, any Idempotency-Key), the answer is never a 5xx, and every
error is in the JSON error shape. Runs against a live server on SQLite and PostgreSQL."""

from __future__ import annotations

from urllib.parse import quote

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.staff import create_staff, issue_token
from tests.support.twilio import post_twilio

TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60)
IDS = st.one_of(
    st.integers(min_value=-(2**80), max_value=2**80).map(str),
    st.sampled_from(["1", "0", "01", "1.5", "1e3", "", " ", "%00", "..", "NaN"]),
    TEXT,
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=12,
)
FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "body": JSON,
        "channel": st.one_of(st.sampled_from(["sms", "whatsapp"]), JSON),
        "content_sid": st.one_of(st.just("HX" + "a" * 32), JSON),
        "content_variables": JSON,
        "action": st.one_of(st.sampled_from(["opt_in", "opt_out"]), JSON),
        "note": JSON,
        "status": st.one_of(st.sampled_from(["open", "closed"]), JSON),
        "assignee_id": st.one_of(st.integers(min_value=-(2**70), max_value=2**70), JSON),
        "name": JSON,
        "notes": JSON,
        "desktop_notifications": st.one_of(st.booleans(), JSON),
        "sound": st.one_of(st.booleans(), JSON),
    },
)
BODIES = st.one_of(
    FIELDS.map(lambda d: httpx.Request("POST", "http://x", json=d).content),
    JSON.map(lambda v: httpx.Request("POST", "http://x", json=v).content),
    st.binary(max_size=200),
)
ROUTES = [
    ("GET", "/api/conversations/{id}"),
    ("POST", "/api/conversations/{id}/read"),
    ("POST", "/api/conversations/{id}/messages"),
    ("GET", "/api/customers/{id}/consent"),
    ("POST", "/api/customers/{id}/consent"),
    ("GET", "/api/conversations"),
    ("GET", "/api/export/audit"),
    ("GET", "/api/export"),
    ("GET", "/api/consent/export"),
    ("GET", "/api/me"),
    ("PATCH", "/api/conversations/{id}"),
    ("POST", "/api/conversations/{id}/notes"),
    ("POST", "/api/conversations/{id}/unread"),
    ("GET", "/api/conversations/counts"),
    ("GET", "/api/customers/{id}"),
    ("PATCH", "/api/customers/{id}"),
    ("PATCH", "/api/me/preferences"),
]
QUERY = st.dictionaries(
    st.sampled_from(["status", "q", "cursor", "before", "limit", "format", "since", "until", "customer", "assignee"]),
    TEXT,
    max_size=4,
)


def test_no_input_to_the_api_gives_a_5xx(serve, database_url) -> None:
    server = serve(database_url, runtime_options={"run_outbox": False})
    create_staff(database_url, "maria@example.com", role="manager")
    token = issue_token(database_url, "maria@example.com")
    assert post_twilio(server.url, "inbound_sms").status_code == 200
    client = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30)

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
    @given(route=st.sampled_from(ROUTES), ident=IDS, query=QUERY, body=BODIES, key=st.none() | TEXT)
    def one_request(route, ident, query, body, key) -> None:
        method, template = route
        path = template.replace("{id}", quote(ident, safe="") or "x")
        headers = {"Content-Type": "application/json"}
        # What an HTTP client can send at all: no leading or trailing space in a header value.
        if key and key.isascii() and key.isprintable() and key == key.strip():
            headers["Idempotency-Key"] = key
        response = client.request(
            method, path, params=query, content=body if method in ("POST", "PATCH") else None, headers=headers
        )
        assert response.status_code < 500, (method, path, query, body[:100], response.text[:300])
        if response.status_code >= 400:
            error = response.json()
            assert set(error) == {"error", "detail"} and error["error"], (method, path, error)

    try:
        one_request()
    finally:
        client.close()
