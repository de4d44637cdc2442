"""Sign-in under attack: the hash check leaves the event loop free, throttling is per address and
per account, a stranger cannot lock a manager out, and unknown emails answer like known ones."""

from __future__ import annotations

import threading
import time

import httpx
import pytest
from argon2 import PasswordHasher

from inbox.throttle import LoginThrottle
from tests.support.db import execute
from tests.support.staff import PASSWORD, create_staff, login_form_token
from tests.support.twilio import post_twilio

MANAGER = "maria@example.com"
STRANGER = "203.0.113.9"
DESK = "198.51.100.7"


@pytest.fixture
def inbox(serve, database_url):
    server = serve(database_url, INBOX_TRUSTED_PROXIES="127.0.0.1")
    create_staff(database_url, MANAGER, role="manager")
    server.db = database_url
    return server


def attempt(base: str, email: str, password: str, address: str) -> httpx.Response:
    """One sign-in from `address` (named by X-Forwarded-For, which the trusted local proxy passes)."""
    with httpx.Client(base_url=base, headers={"X-Forwarded-For": address}, timeout=30) as client:
        token = login_form_token(client)
        return client.post("/login", data={"email": email, "password": password, "csrf_token": token})


def test_a_stranger_failing_cannot_lock_out_a_manager_at_her_desk(inbox) -> None:
    statuses = [attempt(inbox.url, MANAGER, f"guess-{n}", STRANGER).status_code for n in range(6)]
    assert statuses == [401, 401, 401, 401, 429, 429]
    # The stranger is locked out, even with the right password...
    assert attempt(inbox.url, MANAGER, PASSWORD, STRANGER).status_code == 429
    # ...but the manager, from a client that has not been failing, signs in.
    at_desk = attempt(inbox.url, MANAGER, PASSWORD, DESK)
    assert at_desk.status_code == 303 and "inbox_session" in at_desk.cookies


def test_one_address_is_throttled_across_accounts(inbox) -> None:
    statuses = [attempt(inbox.url, f"user{n}@example.com", "guess", STRANGER).status_code for n in range(11)]
    assert statuses[:9] == [401] * 9 and statuses[9:] == [429, 429]
    assert "Retry-After" in attempt(inbox.url, "other@example.com", "guess", STRANGER).headers
    assert attempt(inbox.url, MANAGER, PASSWORD, DESK).status_code == 303


def test_unknown_and_known_emails_answer_alike(inbox) -> None:
    def page(email: str, address: str) -> tuple[int, str]:
        response = attempt(inbox.url, email, "wrong password", address)
        return response.status_code, response.text.replace(email, "EMAIL")

    known, unknown = page(MANAGER, "192.0.2.1"), page("nobody@example.com", "192.0.2.2")
    assert known[0] == unknown[0] == 401
    assert _without_tokens(known[1]) == _without_tokens(unknown[1])
    # and they lock alike: five failures on an email that has no account also answer 429
    locks = [attempt(inbox.url, "ghost@example.com", "x" * 9, "192.0.2.3").status_code for _ in range(5)]
    assert locks == [401, 401, 401, 401, 429]


def _without_tokens(html: str) -> str:
    import re

    return re.sub(r'value="[A-Za-z0-9_-]{40,}"', 'value="TOKEN"', html)


def test_a_slow_hash_check_leaves_webhooks_and_pages_answering(inbox) -> None:
    """The password is checked in a worker thread: while a (deliberately costly) check runs, a
    webhook is stored and answered. On the event loop it would wait for the check to end."""
    costly = PasswordHasher(time_cost=60, memory_cost=8192, parallelism=1).hash(PASSWORD)
    execute(inbox.db, "UPDATE staff SET password_hash = :h WHERE email = :e", h=costly, e=MANAGER)
    done = threading.Event()
    result: list[int] = []

    def sign_in() -> None:
        result.append(attempt(inbox.url, MANAGER, PASSWORD, DESK).status_code)
        done.set()

    thread = threading.Thread(target=sign_in)
    thread.start()
    deadline = time.monotonic() + 30
    while inbox.runtime.login_throttle.in_flight(DESK) == 0 and not done.is_set():
        assert time.monotonic() < deadline, "the sign-in never reached the server"
        time.sleep(0.001)
    assert post_twilio(inbox.url, "inbound_sms").status_code == 200
    assert httpx.get(inbox.url + "/healthz").status_code == 200
    assert not done.is_set(), "the sign-in finished first: the check blocked the event loop (or was too cheap)"
    thread.join(60)
    assert result == [303]


def test_the_throttle_forgets_after_its_window() -> None:
    now = [0.0]
    throttle = LoginThrottle(clock=lambda: now[0])
    for _ in range(5):
        throttle.failed("a", "e")
    assert throttle.check("a", "e") is not None and throttle.check("b", "e") is None
    now[0] += 16 * 60
    assert throttle.check("a", "e") is None
