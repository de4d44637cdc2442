"""Staff-facing security: CSRF, session fixation, login throttling, redirects kept on this site."""

from __future__ import annotations

from contextlib import closing

import httpx
import pytest

from tests.support.staff import PASSWORD, create_staff, login_form_token, signed_in_client
from tests.support.twilio import post_twilio


@pytest.fixture
def inbox(serve, sqlite_url):
    server = serve(sqlite_url)
    create_staff(sqlite_url, "reception@example.com")
    return server


def test_api_needs_a_session_or_token(inbox) -> None:
    response = httpx.get(inbox.url + "/api/conversations")
    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"
    assert httpx.get(inbox.url + "/api/conversations", headers={"Authorization": "Bearer nope"}).status_code == 401


def test_unsafe_api_call_without_csrf_header_is_refused(inbox) -> None:
    post_twilio(inbox.url, "inbound_sms")
    client, csrf = signed_in_client(inbox.url, "reception@example.com")
    with closing(client):
        conversation_id = client.get("/api/conversations").json()["conversations"][0]["id"]
        refused = client.post(f"/api/conversations/{conversation_id}/read")
        assert refused.status_code == 403
        assert refused.json() == {
            "error": "csrf_failed",
            "detail": "This page is out of date: reload it and try again.",
        }
        wrong = client.post(f"/api/conversations/{conversation_id}/read", headers={"X-CSRF-Token": csrf[:-1] + "x"})
        assert wrong.status_code == 403
        accepted = client.post(f"/api/conversations/{conversation_id}/read", headers={"X-CSRF-Token": csrf})
        assert accepted.status_code == 200


def test_login_form_without_its_csrf_token_is_refused(inbox) -> None:
    with httpx.Client(base_url=inbox.url) as client:
        login_form_token(client)  # sets the cookie
        response = client.post(
            "/login", data={"email": "reception@example.com", "password": PASSWORD, "csrf_token": "forged"}
        )
        assert response.status_code == 403
        assert "inbox_session" not in client.cookies


def test_logout_needs_the_session_csrf_token(inbox) -> None:
    client, csrf = signed_in_client(inbox.url, "reception@example.com")
    with closing(client):
        assert client.post("/logout", data={"csrf_token": "forged"}).status_code == 403
        assert client.get("/api/me").status_code == 200  # still signed in
        assert client.post("/logout", data={"csrf_token": csrf}).status_code == 303
        assert client.get("/api/me").status_code == 401


def test_session_fixation_a_planted_cookie_is_worthless(inbox) -> None:
    with httpx.Client(base_url=inbox.url) as attacker:
        victim_cookie = "planted-by-the-attacker"
        with httpx.Client(base_url=inbox.url, cookies={"inbox_session": victim_cookie}) as victim:
            token = login_form_token(victim)
            response = victim.post(
                "/login", data={"email": "reception@example.com", "password": PASSWORD, "csrf_token": token}
            )
            assert response.status_code == 303
            issued = response.cookies["inbox_session"]
            assert issued != victim_cookie
        attacker.cookies.set("inbox_session", victim_cookie)
        assert attacker.get("/api/me").status_code == 401


def test_login_issues_a_new_session_id_each_time(inbox) -> None:
    first, _ = signed_in_client(inbox.url, "reception@example.com")
    second, _ = signed_in_client(inbox.url, "reception@example.com")
    with closing(first), closing(second):
        assert first.cookies["inbox_session"] != second.cookies["inbox_session"]


def test_failed_logins_are_throttled_per_account(inbox) -> None:
    with httpx.Client(base_url=inbox.url) as client:
        token = login_form_token(client)
        statuses = [
            client.post(
                "/login", data={"email": "reception@example.com", "password": f"wrong-{n}", "csrf_token": token}
            ).status_code
            for n in range(5)
        ]
        assert statuses == [401, 401, 401, 401, 429]
        # Locked now: even the right password is not checked until the lock passes.
        locked = client.post(
            "/login", data={"email": "reception@example.com", "password": PASSWORD, "csrf_token": token}
        )
        assert locked.status_code == 429
        assert "Too many failed attempts" in locked.text
        assert "inbox_session" not in client.cookies


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example.com/",
        "//evil.example.com/",
        "/\\evil.example.com",
        "javascript:alert(1)",
        "http:/evil.example.com",
    ],
)
def test_next_redirect_stays_on_this_site(inbox, target) -> None:
    with httpx.Client(base_url=inbox.url) as client:
        token = login_form_token(client)
        response = client.post(
            "/login", data={"email": "reception@example.com", "password": PASSWORD, "csrf_token": token, "next": target}
        )
        assert response.status_code == 303
        assert response.headers["location"] == "/"


def test_next_redirect_to_a_local_page_is_kept(inbox) -> None:
    with httpx.Client(base_url=inbox.url) as client:
        token = login_form_token(client)
        response = client.post(
            "/login",
            data={"email": "reception@example.com", "password": PASSWORD, "csrf_token": token, "next": "/?c=12"},
        )
        assert response.headers["location"] == "/?c=12"


def test_pages_forbid_inline_scripts(inbox) -> None:
    response = httpx.get(inbox.url + "/login")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert response.headers["x-frame-options"] == "DENY"


def test_inbox_page_redirects_anonymous_visitors_to_login(inbox) -> None:
    response = httpx.get(inbox.url + "/?c=3")
    assert response.status_code in (302, 303, 307)
    assert response.headers["location"] == "/login?next=/%3Fc%3D3"
