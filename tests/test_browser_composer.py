"""The reply composer in a real browser: segment counter, sending, live delivery ticks, the lock
after STOP. Headless Chromium against the app wired to the Twilio sandbox."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.support.browser import WIDE, fresh_contexts, log_in, sid
from tests.support.sandbox import wire
from tests.support.twilio import post_twilio

pytestmark = pytest.mark.browser
ANA = "+14155550123"


@pytest.fixture
def wired(serve, sqlite_url):
    with wire(serve, sqlite_url, receptionist="Rosa Reyes") as wired:
        post_twilio(wired.inbox.url, "inbound_sms", From=ANA, Body="Is my phone ready?", MessageSid=sid(1))
        yield wired


@pytest.fixture
def page(wired, chromium):
    inbox = wired.inbox
    with fresh_contexts(chromium) as browser:
        context = browser.new_context(viewport=WIDE)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        log_in(page, inbox.url, "reception@example.com")
        page.locator("#conversation-list [data-conversation-id]").first.click()
        expect(page.locator("#composer-body")).to_be_visible()
        yield page
        assert errors == []


def test_emoji_switches_the_counter_to_ucs2_and_the_reply_reaches_delivered(wired, page) -> None:
    sandbox = wired.sandbox
    body = page.locator("#composer-body")
    counter = page.locator("#composer-count")
    body.fill("Your phone is ready")
    expect(counter).to_contain_text("GSM-7")
    expect(counter).to_contain_text("1 segment")
    body.fill("Your phone is ready 📱")
    expect(counter).to_contain_text("UCS-2")
    expect(counter).to_contain_text("📱")
    body.press("Enter")
    expect(body).to_have_value("")
    bubble = page.locator("#messages [data-direction='outbound']").last
    expect(bubble).to_contain_text("Your phone is ready 📱")
    expect(bubble).to_have_attribute("data-status", "delivered", timeout=15000)
    expect(bubble.locator(".message-author")).to_have_text("Rosa Reyes")  # kept through every status update
    sent = [m for m in sandbox.conversation_with(ANA) if m["direction"] == "outbound-api"]
    assert [m["body"] for m in sent] == ["Your phone is ready 📱"]


def test_smart_quotes_can_be_swapped_and_shift_enter_breaks_the_line(page) -> None:
    body = page.locator("#composer-body")
    body.fill("It’s ready — come by")
    expect(page.locator("#composer-count")).to_contain_text("UCS-2")
    page.locator("#composer-swap").click()
    expect(body).to_have_value("It's ready - come by")
    expect(page.locator("#composer-count")).to_contain_text("GSM-7")
    body.press("Shift+Enter")
    body.type("Thanks")
    expect(body).to_have_value("It's ready - come by\nThanks")


def test_over_long_reply_cannot_be_sent(page) -> None:
    page.locator("#composer-body").fill("x" * 1601)
    expect(page.locator("#composer-count")).to_contain_text("1,601 / 1,600")
    expect(page.locator("#composer-send")).to_be_disabled()


def test_stop_locks_the_composer_live_with_the_reason(wired, page) -> None:
    inbox = wired.inbox
    expect(page.locator("#composer-body")).to_be_enabled()
    post_twilio(inbox.url, "inbound_sms", From=ANA, Body="STOP", MessageSid=sid(2))
    expect(page.locator("#composer-lock")).to_contain_text("opted out of SMS", timeout=10000)
    expect(page.locator("#composer-body")).to_be_disabled()


def test_a_message_that_reads_like_an_opt_out_offers_one_click_to_record_it(wired, page) -> None:
    inbox = wired.inbox
    post_twilio(inbox.url, "inbound_sms", From=ANA, Body="please stop texting me", MessageSid=sid(3))
    flag = page.locator("#composer-flag")
    expect(flag).to_contain_text("please stop texting me", timeout=10000)
    page.locator("#composer-flag-record").click()
    expect(page.locator("#composer-lock")).to_contain_text("opted out of SMS", timeout=10000)
    expect(flag).to_be_hidden()
    page.locator("#consent-record summary").click()
    expect(page.locator("#consent-history")).to_contain_text("recorded by staff")


def test_the_inbox_own_answer_says_it_was_automatic(wired, page) -> None:
    inbox = wired.inbox
    post_twilio(inbox.url, "inbound_sms", From=ANA, Body="HELP", MessageSid=sid(4))
    answer = page.locator("#messages [data-direction='outbound']").last
    expect(answer.locator(".message-author")).to_have_text("Automatic answer", timeout=10000)
    expect(page.locator("#messages [data-direction='inbound'] .message-author").first).to_be_hidden()
