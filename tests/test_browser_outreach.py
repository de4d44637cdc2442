"""Reaching out in a real browser: the "New message" dialog, the saved replies picker in the
composer, and testing the connection on the settings page. Headless Chromium against the app
wired to the Twilio sandbox."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import expect

from tests.support import loop
from tests.support.browser import WIDE, fresh_contexts, log_in, sid
from tests.support.sandbox import FAST_OUTBOX, sandbox_settings, start_sandbox
from tests.support.staff import create_staff, issue_token
from tests.support.twilio import post_twilio

pytestmark = pytest.mark.browser


@pytest.fixture
def wired(serve, sqlite_url):
    sandbox, sandbox_server = start_sandbox()
    inbox = serve(
        sqlite_url,
        runtime_options={"outbox_config": FAST_OUTBOX},
        INBOX_BUSINESS_NAME="Lumen Jewellers",
        INBOX_DEFAULT_COUNTRY="GB",
        **sandbox_settings(sandbox_server.url),
    )
    create_staff(sqlite_url, "maria@example.com", role="manager", name="Maria")
    inbox.token = issue_token(sqlite_url, "maria@example.com")
    yield inbox, sandbox, sqlite_url
    sandbox_server.stop()
    loop.run(sandbox.aclose())


@pytest.fixture
def page(wired, chromium):
    inbox, _, _ = wired
    with fresh_contexts(chromium) as browser:
        page = browser.new_context(viewport=WIDE).new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        log_in(page, inbox.url, "maria@example.com")
        yield page
        assert errors == []


def test_new_message_shows_the_number_as_dialled_and_opens_the_conversation(wired, page) -> None:
    _, sandbox, _ = wired
    page.get_by_role("button", name="New message").click()
    dialog = page.locator("#new-message")
    expect(dialog).to_be_visible()
    dialog.get_by_label("To", exact=True).fill("07700 9001")
    expect(page.locator("#new-message-number")).to_have_attribute("data-state", "invalid")
    expect(page.locator("#new-message-send")).to_be_disabled()
    dialog.get_by_label("To", exact=True).fill("07700 900123")  # read in GB, the default country
    echo = page.locator("#new-message-number")
    expect(echo).to_contain_text("+44 7700 900123")
    dialog.get_by_label("Message", exact=True).fill("Your ring is ready to collect.")
    page.locator("#new-message-send").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#thread-title")).to_contain_text("7700", timeout=10000)
    bubble = page.locator("#messages [data-direction='outbound']").last
    expect(bubble).to_contain_text("Your ring is ready to collect.")
    expect(bubble).to_have_attribute("data-status", "delivered", timeout=15000)
    assert [m["body"] for m in sandbox.conversation_with("+447700900123")] == ["Your ring is ready to collect."]
    expect(page.locator("#conversation-list")).to_contain_text("7700")


def test_the_saved_reply_picker_fills_the_fields_and_refuses_an_unfilled_one(wired, page) -> None:
    inbox, sandbox, _ = wired
    with httpx.Client(base_url=inbox.url, headers={"Authorization": f"Bearer {inbox.token}"}) as api:
        for title, body in (
            ("Opening hours", "We open at 9."),
            ("Ring ready", "Hi {first_name}, your ring is ready at {business_name}."),
        ):
            assert api.post("/api/quick-replies", json={"title": title, "body": body}).status_code == 201
    post_twilio(inbox.url, "inbound_sms", From="+14155550123", Body="Is my ring ready?", MessageSid=sid(1))
    page.locator("#conversation-list [data-conversation-id]").first.click()
    body = page.locator("#composer-body")
    expect(body).to_be_visible()

    # A slow network: Enter pressed while the list is still loading must not send "/ring"; it
    # chooses once the list is there.
    held = []
    page.route("**/api/quick-replies?*", lambda route: route.continue_() if held else held.append(route))
    body.press_sequentially("/ring")  # filtered as typed: only "Ring ready" is left
    picker = page.locator("#quick-reply-picker")
    expect(picker).to_contain_text("Loading saved replies")
    body.press("Enter")
    for _ in range(200):  # bounded: the picker asked for the list when "/" was typed
        if held:
            break
        page.wait_for_timeout(25)
    held[0].continue_()
    expect(picker).to_be_hidden()
    # No name is known: the field stays, highlighted, and the reply cannot go out as it is.
    expect(body).to_have_value("Hi {first_name}, your ring is ready at Lumen Jewellers.")
    expect(page.locator("#quick-reply-unfilled mark")).to_have_text("{first_name}")
    expect(page.locator("#composer-send")).to_be_disabled()
    body.press("Enter")
    assert not [m for m in sandbox.conversation_with("+14155550123") if m["direction"] == "outbound-api"]
    page.keyboard.type("Ana")  # the field was selected: typing replaces it
    expect(body).to_have_value("Hi Ana, your ring is ready at Lumen Jewellers.")
    expect(page.locator("#quick-reply-unfilled")).to_be_hidden()
    body.press("Enter")
    bubble = page.locator("#messages [data-direction='outbound']").last
    expect(bubble).to_contain_text("Hi Ana, your ring is ready at Lumen Jewellers.")

    # With the name on the customer card, the picker fills it in; arrow keys choose.
    page.locator("#customer-card summary").click()
    page.locator("#customer-name").fill("Ana Lima")
    page.locator("#customer-form button[type='submit']").click()
    # "Saving…" shows at once; the picker's names are the server's, so wait for the save itself.
    expect(page.locator("#customer-saved")).to_have_text("Saved.")
    body.press_sequentially("/")
    expect(picker.get_by_role("option")).to_have_count(2)
    body.press("ArrowDown")
    expect(picker.locator("[aria-selected='true']")).to_contain_text("Ring ready")
    body.press("Enter")
    expect(body).to_have_value("Hi Ana, your ring is ready at Lumen Jewellers.")
    expect(page.locator("#composer-send")).to_be_enabled()


def test_settings_check_credentials_and_a_test_sms_followed_live(wired, page) -> None:
    inbox, sandbox, _ = wired
    page.goto(inbox.url + "/settings")
    page.get_by_role("button", name="Check credentials").click()
    checks = page.locator("#connection-checks li")
    expect(checks).to_have_count(3, timeout=10000)
    expect(checks.first).to_have_attribute("data-ok", "true")
    expect(checks.first).to_contain_text("work")
    expect(checks.nth(2)).to_contain_text("+15005550006")

    page.get_by_label("Send a test SMS to").fill("07700 900555")
    page.get_by_role("button", name="Send a test SMS").click()
    status = page.locator("#test-sms-status")
    expect(status).to_have_attribute("data-state", "delivered", timeout=15000)
    expect(status).to_contain_text("+447700900555")
    assert [m["status"] for m in sandbox.conversation_with("+447700900555")] == ["delivered"]

    page.get_by_label("Title").fill("Hours")
    page.get_by_label("Text", exact=True).fill("Hi {first_name}, we open at 9.")
    page.get_by_role("button", name="Add saved reply").click()
    item = page.locator("#saved-reply-list .saved-reply-item")
    expect(item).to_have_count(1)
    expect(item.locator("mark")).to_have_text("{first_name}")
    item.get_by_role("button", name=re.compile("Edit")).click()
    item.get_by_label("Text").fill("Hi {name}, we open at 10.")
    item.get_by_role("button", name="Save").click()
    expect(item.locator(".saved-reply-body")).to_have_text("Hi {name}, we open at 10.")
    expect(item.locator("mark")).to_have_text("{name}")
    item.get_by_role("button", name=re.compile("Remove")).click()
    expect(page.locator("#saved-reply-list")).to_contain_text("No saved replies yet.")
