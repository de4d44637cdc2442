"""Headless Chromium for browser tests: Debian's /usr/bin/chromium driven by Playwright (sync API).

    launch(playwright) -> Browser
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
