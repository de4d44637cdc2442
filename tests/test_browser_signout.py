"""Signing out in one tab shows the sign-in page in every other tab of that browser (the server
closes the session's sockets with 4401 and live.js goes to /login); disabling the account from the
staff page does the same to its open pages."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.support.browser import WIDE, fresh_contexts, log_in
from tests.support.staff import create_staff

pytestmark = pytest.mark.browser

CLERK = "reception@example.com"
MANAGER = "maria@example.com"


@pytest.fixture
def inbox(serve, database_url):
    server = serve(database_url)
    create_staff(database_url, CLERK, "receptionist", name="Rosa Reyes")
    create_staff(database_url, MANAGER, "manager", name="Maria")
    return server


@pytest.fixture
def browser(inbox, chromium):
    with fresh_contexts(chromium) as browser:
        yield browser


def on_sign_in_page(page, base_url: str) -> None:
    expect(page).to_have_url(re.compile(re.escape(base_url) + r"/login(\?.*)?$"), timeout=10_000)
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()


def test_sign_out_in_one_tab_shows_the_sign_in_page_in_the_other(inbox, browser) -> None:
    context = browser.new_context(viewport=WIDE)
    try:
        first = context.new_page()
        log_in(first, inbox.url, CLERK)
        second = context.new_page()  # same browser, same session cookie
        second.goto(inbox.url + "/")
        expect(second.locator("#live-status")).to_have_attribute("data-state", "live")
        first.get_by_role("button", name="Sign out").click()
        on_sign_in_page(first, inbox.url)
        on_sign_in_page(second, inbox.url)
    finally:
        context.close()


def test_a_managers_settings_staff_and_export_tabs_go_to_sign_in_too(inbox, browser) -> None:
    context = browser.new_context(viewport=WIDE)
    try:
        inbox_tab = context.new_page()
        log_in(inbox_tab, inbox.url, MANAGER)
        others = []
        for path in ("/settings", "/staff", "/export"):
            page = context.new_page()
            with page.expect_websocket():  # its session watch is connecting
                page.goto(inbox.url + path)
            others.append(page)
        inbox_tab.get_by_role("button", name="Sign out").click()
        on_sign_in_page(inbox_tab, inbox.url)
        for page in others:
            on_sign_in_page(page, inbox.url)
    finally:
        context.close()


def test_disabling_an_account_sends_its_open_page_to_sign_in(inbox, browser) -> None:
    clerk = browser.new_context(viewport=WIDE)
    manager = browser.new_context(viewport=WIDE)
    try:
        clerk_page = clerk.new_page()
        log_in(clerk_page, inbox.url, CLERK)
        manager_page = manager.new_page()
        log_in(manager_page, inbox.url, MANAGER)
        manager_page.goto(inbox.url + "/staff")
        card = manager_page.locator("section.staff-member", has_text=CLERK)
        card.get_by_role("button", name="Disable account").click()
        expect(manager_page.get_by_role("status")).to_contain_text("is disabled")
        on_sign_in_page(clerk_page, inbox.url)
        expect(manager_page.locator("#live-status")).to_have_count(0)  # the staff page has no socket
        manager_page.goto(inbox.url + "/")
        expect(manager_page.locator("#live-status")).to_have_attribute("data-state", "live")  # still signed in
    finally:
        clerk.close()
        manager.close()
