"""Headless Chromium for browser tests: Debian's /usr/bin/chromium driven by Playwright (sync API).

    launch(playwright) -> Browser         (the `chromium` fixture: one per test module)
    fresh_contexts(chromium)             what one test sees of it: its contexts closed when it ends
    log_in(page, base_url, email)        through the real login form; lands on the inbox
    sid(n)                               a distinct Twilio MessageSid per test message
    wait_until(locator, js)              polls `js` (a function of the element) until truthy

Playwright's wait_for_function evaluates its predicate with eval(), which the inbox's
Content-Security-Policy (script-src 'self') refuses; wait_until polls through locator.evaluate.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.staff import PASSWORD

CHROMIUM = os.environ.get("INBOX_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
WIDE = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def launch(playwright):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install -y chromium)")
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


class Contexts:
    """The module's Chromium as one test uses it: new_context() as on a Browser, and every context
    opened is closed when the test ends. Contexts share no cookies, storage, cache or permissions,
    so each test starts as in a browser of its own."""

    def __init__(self, browser) -> None:
        self.browser = browser
        self.opened: list = []

    def new_context(self, **options):
        context = self.browser.new_context(**options)
        self.opened.append(context)
        return context


@contextmanager
def fresh_contexts(chromium) -> Iterator[Contexts]:
    """Use inside the fixture that starts the test's server, so its pages (and their sockets) are
    closed before the server stops."""
    contexts = Contexts(chromium)
    try:
        yield contexts
    finally:
        for context in contexts.opened:
            context.close()


def log_in(page, base_url: str, email: str, password: str = PASSWORD) -> None:
    from playwright.sync_api import expect

    page.goto(base_url + "/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(re.escape(base_url) + r"/(\?.*)?$"))
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")


def sid(n: int) -> str:
    return f"SM{n:032x}"


def wait_until(locator, js: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not locator.evaluate(js):
        if time.monotonic() > deadline:
            raise AssertionError(
                f"not true within {timeout}s: {js} {locator.evaluate('m => [m.scrollHeight, m.scrollTop, m.clientHeight]')}"
            )
        time.sleep(0.05)
