"""Scheduling a reply from the composer in a real browser: the time is read in the business's zone
(not the browser's), the customer's local time is hinted, the reply waits in the thread, and
Cancel and Send now act on it. Headless Chromium against the app wired to the Twilio sandbox."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from tests.support import loop
from tests.support.browser import WIDE, fresh_contexts, log_in, sid
from tests.support.db import scalar
from tests.support.sandbox import FAST_OUTBOX, sandbox_settings, start_sandbox
from tests.support.staff import create_staff
from tests.support.twilio import post_twilio

pytestmark = pytest.mark.browser
LONDON_CUSTOMER = "+447700900123"
BUSINESS = ZoneInfo("America/New_York")


def thread_order(page, texts: list[str]) -> list[str]:
    """`texts` in the order the open thread shows the bubbles holding them."""
    shown = page.locator("#messages > *").evaluate_all("nodes => nodes.map((n) => n.textContent)")
    return sorted(texts, key=lambda text: next(i for i, bubble in enumerate(shown) if text in bubble))


def test_schedule_from_the_composer_see_it_listed_cancel_it_and_send_another_now(serve, sqlite_url, chromium) -> None:
    sandbox, sandbox_server = start_sandbox()
    inbox = serve(
        sqlite_url,
        runtime_options={"outbox_config": FAST_OUTBOX},
        INBOX_TIMEZONE="America/New_York",
        **sandbox_settings(sandbox_server.url),
    )
    create_staff(sqlite_url, "reception@example.com", name="Rosa Reyes")
    post_twilio(inbox.url, "inbound_sms", From=LONDON_CUSTOMER, Body="Remind me tomorrow?", MessageSid=sid(1))
    try:
        with fresh_contexts(chromium) as browser:
            # The browser is in Tokyo: the time picked must still be read in New York.
            page = browser.new_context(viewport=WIDE, timezone_id="Asia/Tokyo", locale="en-US").new_page()
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            log_in(page, inbox.url, "reception@example.com")
            page.locator("#conversation-list [data-conversation-id]").first.click()
            expect(page.locator("#composer-body")).to_be_visible()

            page.get_by_role("button", name="Send later").click()
            expect(page.locator("#schedule-fields")).to_contain_text("America/New York")
            tomorrow = (datetime.now(BUSINESS) + timedelta(days=1)).date()
            page.locator("#schedule-date").fill(tomorrow.isoformat())
            page.locator("#schedule-time").fill("09:00")
            wanted = datetime(tomorrow.year, tomorrow.month, tomorrow.day, 9, 0, tzinfo=BUSINESS)
            london = wanted.astimezone(ZoneInfo("Europe/London")).strftime("%H:%M")
            expect(page.locator("#schedule-hint")).to_contain_text(f"{london} for the customer (Europe/London)")
            expect(page.locator("#composer-send")).to_have_text("Schedule")
            page.locator("#composer-body").fill("Reminder: your appointment is today.")
            page.locator("#composer-send").click()

            bubble = page.locator("#messages [data-direction='outbound']").last
            expect(bubble).to_have_attribute("data-status", "scheduled")
            expect(bubble.locator(".message-schedule-when")).to_have_text(re.compile(r"^Scheduled for \w+.* 09:00$"))
            expect(page.locator("#composer-send")).to_have_text("Send")  # back to sending at once
            # The list's preview is still the customer's message: a scheduled reply is news when it goes out.
            expect(page.locator("#conversation-list [data-conversation-id]").first).to_contain_text(
                "Remind me tomorrow?"
            )

            bubble.get_by_role("button", name="Cancel").click()
            expect(bubble).to_have_attribute("data-status", "canceled")
            expect(bubble.locator(".message-schedule")).to_have_count(0)

            # Another, sent at once from the thread instead of at its time.
            page.get_by_role("button", name="Send later").click()
            page.locator("#composer-body").fill("Your parcel is here.")
            page.locator("#composer-body").press("Enter")
            second = page.locator("#messages [data-direction='outbound']", has_text="Your parcel is here.")
            expect(second).to_have_attribute("data-status", "scheduled")
            # The customer writes while it waits: their message reads above it, not below in id order.
            post_twilio(inbox.url, "inbound_sms", From=LONDON_CUSTOMER, Body="Is it the blue box?", MessageSid=sid(2))
            expect(page.locator("#messages [data-direction='inbound']", has_text="Is it the blue box?")).to_be_visible()
            assert thread_order(page, ["Is it the blue box?", "Your parcel is here."]) == [
                "Is it the blue box?",
                "Your parcel is here.",
            ]
            second.get_by_role("button", name="Send now").click()
            expect(second).to_have_attribute("data-status", "delivered", timeout=15000)
            assert thread_order(page, ["Your parcel is here.", "Is it the blue box?"]) == [
                "Is it the blue box?",
                "Your parcel is here.",
            ]
            page.reload()  # the thread as the server orders it
            page.locator("#conversation-list [data-conversation-id]").first.click()
            expect(page.locator("#messages", has_text="Your parcel is here.")).to_be_visible()
            assert thread_order(page, ["Your parcel is here.", "Is it the blue box?"]) == [
                "Is it the blue box?",
                "Your parcel is here.",
            ]
            sent = [m["body"] for m in sandbox.conversation_with(LONDON_CUSTOMER) if m["direction"] == "outbound-api"]
            assert sent == ["Your parcel is here."]  # never the canceled one
            assert errors == []
        # 09:00 in New York, whatever the browser's zone (SQLite keeps UTC without its offset)
        stored = scalar(sqlite_url, "SELECT send_at FROM messages WHERE direction = 'outbound' ORDER BY id LIMIT 1")
        assert str(stored).startswith(wanted.astimezone(ZoneInfo("UTC")).strftime("%Y-%m-%d %H:%M:00"))
    finally:
        sandbox_server.stop()
        loop.run(sandbox.aclose())
