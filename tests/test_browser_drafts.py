"""Drafts belong to their conversation, and the composer's small refusals, in a real browser.

A draft typed for one customer must never sit, ready to send, in another customer's composer:
the wrong-recipient bug. Headless Chromium against the app wired to the Twilio sandbox."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.support import db
from tests.support.browser import WIDE, fresh_contexts, log_in, sid
from tests.support.db import execute, rows, scalar
from tests.support.sandbox import wire
from tests.support.twilio import post_twilio

pytestmark = pytest.mark.browser
ANA = "+14155550123"
BEN = "+14155550124"
CAIO = "+5511912345678"
TEMPLATE = "HX" + "e" * 32


@pytest.fixture
def wired(serve, sqlite_url):
    with wire(serve, sqlite_url, receptionist="Rosa Reyes") as wired:
        post_twilio(wired.inbox.url, "inbound_sms", From=ANA, Body="Is my phone ready?", MessageSid=sid(1))
        post_twilio(wired.inbox.url, "inbound_sms", From=BEN, Body="Do you fix tablets?", MessageSid=sid(2))
        db.add_template(sqlite_url, "Repair ready", TEMPLATE, "Hi {{1}}, your {{2}} is ready.", ["Name", "Device"])
        yield wired


@pytest.fixture
def page(wired, chromium):
    inbox = wired.inbox
    with fresh_contexts(chromium) as browser:
        page = browser.new_context(viewport=WIDE).new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        log_in(page, inbox.url, "reception@example.com")
        yield page
        assert errors == []


def conversation_of(database_url: str, phone: str) -> int:
    return scalar(
        database_url,
        "SELECT c.id FROM conversations c JOIN customers u ON u.id = c.customer_id WHERE u.phone = :phone",
        phone=phone,
    )


def open_conversation(page, conversation_id: int) -> None:
    page.locator(f"#conversation-list [data-conversation-id='{conversation_id}'] .conversation-link").click()
    expect(page.locator("#composer")).to_have_attribute("data-conversation-id", str(conversation_id))
    expect(page.locator("#composer-body")).to_be_visible()


def test_a_draft_stays_with_its_conversation_across_switches_and_reloads(wired, page) -> None:
    inbox, database_url = wired.inbox, wired.db
    ana, ben = conversation_of(database_url, ANA), conversation_of(database_url, BEN)
    body, send = page.locator("#composer-body"), page.locator("#composer-send")

    open_conversation(page, ana)
    body.fill("Ana, your phone is ready")
    expect(send).to_be_enabled()

    open_conversation(page, ben)
    expect(body).to_have_value("")  # never typed in: empty, and nothing to send
    expect(send).to_be_disabled()

    open_conversation(page, ana)
    expect(body).to_have_value("Ana, your phone is ready")

    page.reload()
    expect(page.locator("#composer")).to_have_attribute("data-conversation-id", str(ana))
    expect(body).to_have_value("Ana, your phone is ready")

    # Nothing was sent to anyone while switching.
    assert rows(database_url, "SELECT id FROM messages WHERE direction = 'outbound'") == []

    # Signing out forgets the drafts of this tab.
    page.get_by_role("button", name="Sign out").click()
    log_in(page, inbox.url, "reception@example.com")
    open_conversation(page, ana)
    expect(body).to_have_value("")


def test_a_sent_reply_clears_only_its_own_draft(wired, page) -> None:
    database_url = wired.db
    ana, ben = conversation_of(database_url, ANA), conversation_of(database_url, BEN)
    body = page.locator("#composer-body")
    open_conversation(page, ben)
    body.fill("Yes, bring it in")
    open_conversation(page, ana)
    body.fill("Ready at noon")
    body.press("Enter")
    expect(body).to_have_value("")
    expect(page.locator("#messages [data-direction='outbound']").last).to_contain_text("Ready at noon")
    page.reload()
    expect(body).to_have_value("")
    open_conversation(page, ben)
    expect(body).to_have_value("Yes, bring it in")


def test_enter_does_not_send_what_send_refuses(wired, page) -> None:
    database_url = wired.db
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" and "/messages" in r.url else None)
    open_conversation(page, conversation_of(database_url, ANA))
    body = page.locator("#composer-body")
    body.fill("x" * 1601)
    expect(page.locator("#composer-send")).to_be_disabled()
    body.press("Enter")
    expect(body).to_have_value("x" * 1601)
    expect(page.locator("#composer-error")).to_be_hidden()
    assert posts == []


def test_a_refusal_clears_when_the_text_changes(wired, page) -> None:
    database_url = wired.db
    ana = conversation_of(database_url, ANA)
    open_conversation(page, ana)
    # An opt-out the page has not heard of yet (recorded straight into the ledger, no live event):
    # the server refuses the reply and the composer shows why.
    customer = scalar(database_url, "SELECT customer_id FROM conversations WHERE id = :id", id=ana)
    execute(
        database_url,
        "INSERT INTO consent_records (customer_id, channel, action, source, evidence, occurred_at, created_at) "
        "VALUES (:c, 'sms', 'opt_out', 'import', '{}', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)",
        c=customer,
    )
    body = page.locator("#composer-body")
    body.fill("Are you there?")
    body.press("Enter")
    error = page.locator("#composer-error")
    expect(error).to_contain_text("opted out")
    body.press("End")
    body.type("!")
    expect(error).to_be_hidden()


def test_a_paste_over_the_limit_says_it_was_cut(wired, page) -> None:
    database_url = wired.db
    open_conversation(page, conversation_of(database_url, ANA))
    body = page.locator("#composer-body")
    body.evaluate(
        """(box) => {
          const data = new DataTransfer();
          data.setData("text/plain", "y".repeat(2000));
          box.focus();
          box.dispatchEvent(new ClipboardEvent("paste", { clipboardData: data, bubbles: true, cancelable: true }));
        }"""
    )
    expect(page.locator("#composer-notice")).to_contain_text("200 characters did not fit")
    assert len(body.input_value()) == 1800
    expect(page.locator("#composer-send")).to_be_disabled()


def test_whatsapp_replies_show_whatsapp_limits_and_the_24_hour_window(wired, page) -> None:
    inbox, database_url = wired.inbox, wired.db
    post_twilio(inbox.url, "inbound_whatsapp", MessageSid=sid(3), SmsMessageSid=sid(3), SmsSid=sid(3))
    caio = conversation_of(database_url, CAIO)
    page.reload()
    open_conversation(page, caio)
    counter, window = page.locator("#composer-count"), page.locator("#composer-window")
    expect(page.locator("#composer-channel")).to_have_value("whatsapp")
    page.locator("#composer-body").fill("Olá 📱")
    expect(counter).to_contain_text("WhatsApp message")
    expect(counter).not_to_contain_text("segment")
    expect(window).to_have_attribute("data-state", "open")
    expect(window).to_contain_text("closes in 23 h 59 min")

    # On a number that never wrote on WhatsApp, the window is shown closed before any send.
    open_conversation(page, conversation_of(database_url, ANA))
    page.locator("#composer-channel").select_option("whatsapp")
    expect(window).to_have_attribute("data-state", "closed")
    expect(window).to_contain_text("has not written on WhatsApp")
    page.locator("#composer-body").fill("Hello")
    expect(page.locator("#composer-send")).to_be_disabled()
    expect(page.locator("#composer-templates")).to_be_visible()


def test_a_template_needs_every_variable_and_shows_its_text_in_the_thread(wired, page) -> None:
    database_url = wired.db
    open_conversation(page, conversation_of(database_url, ANA))
    page.locator("#composer-channel").select_option("whatsapp")
    templates = page.locator("#composer-templates")
    expect(templates).to_be_visible()
    templates.get_by_role("button", name="Send template").click()
    expect(page.locator("#composer-error")).to_contain_text("Fill in every variable: Name, Device.")
    templates.get_by_label("Name").fill("Ana")
    expect(page.locator("#composer-error")).to_be_hidden()
    templates.get_by_label("Device").fill("phone")
    expect(templates.locator(".template-preview")).to_have_text("Hi Ana, your phone is ready.")
    templates.get_by_role("button", name="Send template").click()
    bubble = page.locator("#messages [data-direction='outbound']").last
    expect(bubble).to_contain_text("Hi Ana, your phone is ready.")
    expect(
        page.locator(f"#conversation-list [data-conversation-id='{conversation_of(database_url, ANA)}']")
    ).to_contain_text("Hi Ana, your phone is ready.")


def test_a_template_can_be_scheduled_for_a_reminder(wired, page) -> None:
    """Outside the WhatsApp window only a template may go; "Send later" schedules it like a reply."""
    database_url = wired.db
    open_conversation(page, conversation_of(database_url, ANA))
    page.locator("#composer-channel").select_option("whatsapp")
    templates = page.locator("#composer-templates")
    expect(templates.get_by_role("button", name="Send template")).to_be_visible()
    page.get_by_role("button", name="Send later").click()
    expect(templates.get_by_role("button", name="Schedule template")).to_be_visible()
    templates.get_by_label("Name").fill("Ana")
    templates.get_by_label("Device").fill("phone")
    templates.get_by_role("button", name="Schedule template").click()
    bubble = page.locator("#messages [data-direction='outbound']").last
    expect(bubble).to_have_attribute("data-status", "scheduled")
    expect(bubble).to_contain_text("Hi Ana, your phone is ready.")
    expect(bubble.locator(".message-schedule-when")).to_contain_text("09:00")
    expect(page.locator("#composer-send")).to_have_text("Send")  # back to sending at once
    [(content_sid, send_at)] = rows(
        database_url, "SELECT content_sid, send_at FROM messages WHERE direction = 'outbound' AND status = 'scheduled'"
    )
    assert content_sid and content_sid.startswith("HX") and send_at is not None
