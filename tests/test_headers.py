"""Security headers on every answer (errors, webhooks and static files too), HSTS over https,
and cross-site requests that act refused by Fetch Metadata."""

from __future__ import annotations

from contextlib import closing

import httpx
import pytest

from tests.support.db import scalar
from tests.support.staff import create_staff, signed_in_client
from tests.support.twilio import post_twilio

MANAGER = "maria@example.com"


@pytest.fixture
def inbox(serve, database_url):
    server = serve(database_url)
    create_staff(database_url, MANAGER, role="manager")
    server.db = database_url
    return server


def _assert_protected(response: httpx.Response) -> None:
    headers = response.headers
    assert "frame-ancestors 'none'" in headers["content-security-policy"], response.url
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert "strict-transport-security" not in headers  # plain http here


def test_every_kind_of_answer_carries_the_security_headers(inbox) -> None:
    answers = {
        "page": httpx.get(inbox.url + "/login"),
        "redirect": httpx.get(inbox.url + "/"),
        "api 401": httpx.get(inbox.url + "/api/me"),
        "404": httpx.get(inbox.url + "/no/such/page"),
        "api 404": httpx.get(inbox.url + "/api/no-such-thing"),
        "405": httpx.get(inbox.url + "/webhooks/twilio/inbound"),
        "webhook 200": post_twilio(inbox.url, "inbound_sms"),
        "webhook 403": post_twilio(inbox.url, "inbound_sms", signature="forged"),
        "static": httpx.get(inbox.url + "/static/js/live.js"),
        "static 404": httpx.get(inbox.url + "/static/js/nope.js"),
        "health": httpx.get(inbox.url + "/healthz"),
    }
    for name, response in answers.items():
        assert response.status_code < 500, name
        _assert_protected(response)
        if name.startswith("static"):
            assert response.headers.get("cache-control") != "no-store" or name == "static 404"
        else:
            assert response.headers["cache-control"] == "no-store", name


def test_authenticated_pages_and_api_answers_are_not_stored(inbox) -> None:
    client, _ = signed_in_client(inbox.url, MANAGER)
    with closing(client):
        for path in ("/", "/settings", "/staff", "/export", "/api/me", "/api/conversations"):
            response = client.get(path)
            assert response.status_code == 200, path
            assert response.headers["cache-control"] == "no-store", path
            _assert_protected(response)


def test_hsts_when_the_public_url_is_https(serve, sqlite_url) -> None:
    server = serve(sqlite_url, INBOX_PUBLIC_URL="https://inbox.example.com")
    for response in (httpx.get(server.url + "/login"), httpx.get(server.url + "/nope")):
        assert response.headers["strict-transport-security"].startswith("max-age=")


def test_cross_site_requests_that_act_are_refused(inbox) -> None:
    client, csrf = signed_in_client(inbox.url, MANAGER)
    cross = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}
    with closing(client):
        export = client.get("/api/export?format=csv", headers=cross)
        assert export.status_code == 403 and export.json()["error"] == "cross_site"
        assert scalar(inbox.db, "SELECT count(*) FROM export_audit") == 0
        logout = client.post("/logout", data={"csrf_token": csrf}, headers=cross)
        assert logout.status_code == 403 and client.get("/api/me").status_code == 200
        sibling = client.post("/logout", data={"csrf_token": csrf}, headers={"Sec-Fetch-Site": "same-site"})
        assert sibling.status_code == 403
        # A link from elsewhere to a page still opens it; the inbox's own requests act.
        assert client.get("/", headers=cross).status_code == 200
        assert client.get("/api/export?format=csv", headers={"Sec-Fetch-Site": "same-origin"}).status_code == 200
        assert (
            client.post("/logout", data={"csrf_token": csrf}, headers={"Sec-Fetch-Site": "same-origin"}).status_code
            == 303
        )
        assert client.get("/api/me").status_code == 401


def test_a_sign_out_post_without_the_session_clears_nothing(inbox) -> None:
    """A cross-site POST carries no SameSite=Lax cookie; its answer must not clear the browser's."""
    response = httpx.post(inbox.url + "/logout", data={})
    assert response.status_code == 303
    assert "inbox_session" not in response.headers.get("set-cookie", "")
