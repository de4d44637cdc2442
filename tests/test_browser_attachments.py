"""Attachments in a real browser: a customer's MMS picture shown through the inbox (never from
Twilio's URL), and a picture attached in the composer, previewed, sent and fetched by the sandbox."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.support import loop
from tests.support.browser import WIDE, fresh_contexts, log_in, wait_until
from tests.support.db import scalar
from tests.support.media import PDF, png
from tests.support.sandbox import wait_for, wire

pytestmark = pytest.mark.browser
ANA = "+14155550123"


@pytest.fixture
def wired(serve, sqlite_url, tmp_path):
    with wire(serve, sqlite_url, receptionist="Rosa Reyes", INBOX_MEDIA_DIR=str(tmp_path / "media")) as wired:
        wired.sandbox.config.public_url = wired.sandbox_url
        yield wired.inbox, wired.sandbox, sqlite_url


def test_an_inbound_picture_shows_through_the_inbox_and_a_picture_attached_is_sent(wired, tmp_path, chromium) -> None:
    inbox, sandbox, database = wired
    picture = png(8, 6)
    result = loop.run(
        sandbox.receive_from_customer(from_=ANA, to="+15005550007", body="The crack", files=[(picture, "image/png")])
    )
    assert result["webhook_status"] == 200
    photo = tmp_path / "ring.png"
    photo.write_bytes(png(4, 4))
    fake = tmp_path / "invoice.png"
    fake.write_bytes(b"<!DOCTYPE html><html><body>not a picture</body></html>")

    with fresh_contexts(chromium) as browser:
        page = browser.new_context(viewport=WIDE).new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        twilio_requests: list[str] = []
        page.on("request", lambda request: twilio_requests.append(request.url) if "2010-04-01" in request.url else None)
        log_in(page, inbox.url, "reception@example.com")
        page.locator("#conversation-list [data-conversation-id]").first.click()

        # The customer's picture: an <img> drawn from the inbox's own route, decoded for real.
        thumb = page.locator("#messages [data-direction='inbound'] img.media-thumb")
        expect(thumb).to_have_count(1)
        expect(thumb).to_have_attribute("src", re.compile(r"^/api/messages/\d+/media/0$"))
        wait_until(thumb, "img => img.complete && img.naturalWidth === 8 && img.naturalHeight === 6")
        assert twilio_requests == []  # the browser never asked Twilio (the sandbox) for anything

        # A file that only claims to be a PNG is refused by name, before any upload.
        page.locator("#composer-files").set_input_files(str(fake))
        expect(page.locator("#composer-attach-error")).to_contain_text("“invoice.png” is an HTML page")
        expect(page.locator("#composer-attachments li")).to_have_count(0)

        # A real picture: previewed, uploaded, then sent with no text at all.
        page.locator("#composer-files").set_input_files(str(photo))
        preview = page.locator("#composer-attachments li")
        expect(preview).to_have_count(1)
        expect(preview).to_have_attribute("data-status", "ready")
        expect(preview.locator(".attachment-name")).to_have_text("ring.png")
        wait_until(preview.locator("img"), "img => img.complete && img.naturalWidth === 4")
        send = page.locator("#composer-send")
        expect(send).to_be_enabled()
        send.click()
        expect(page.locator("#composer-attachments li")).to_have_count(0)
        bubble = page.locator("#messages [data-direction='outbound']").last
        expect(bubble).to_have_attribute("data-status", "delivered", timeout=15000)
        sent_thumb = bubble.locator("img.media-thumb")
        wait_until(sent_thumb, "img => img.complete && img.naturalWidth === 4")

        # A PDF dropped on the composer: previewed by name, and removed again before sending.
        dropped = page.evaluate_handle(
            """bytes => {
              const transfer = new DataTransfer();
              transfer.items.add(new File([new Uint8Array(bytes)], "aftercare.pdf", { type: "application/pdf" }));
              return transfer;
            }""",
            list(PDF),
        )
        page.locator("#composer-form").dispatch_event("drop", {"dataTransfer": dropped})
        expect(preview).to_have_count(1)
        expect(preview.locator(".attachment-kind")).to_have_text("PDF")
        expect(preview.locator(".attachment-name")).to_have_text("aftercare.pdf")
        expect(preview).to_have_attribute("data-status", "ready")
        expect(send).to_be_enabled()  # a file alone may be sent
        preview.get_by_role("button", name="Remove aftercare.pdf").click()
        expect(preview).to_have_count(0)
        expect(send).to_be_disabled()  # nothing left to send

        # A screenshot pasted into the reply box: attached like a picture chosen with the button.
        page.locator("#composer-body").evaluate(
            """(box, bytes) => {
              const data = new DataTransfer();
              data.items.add(new File([new Uint8Array(bytes)], "image.png", { type: "image/png" }));
              box.focus();
              box.dispatchEvent(new ClipboardEvent("paste", { clipboardData: data, bubbles: true, cancelable: true }));
            }""",
            list(photo.read_bytes()),
        )
        expect(preview).to_have_count(1)
        expect(preview.locator(".attachment-name")).to_have_text("image.png")
        expect(preview).to_have_attribute("data-status", "ready")
        expect(page.locator("#composer-body")).to_have_value("")  # the picture, not text
        expect(send).to_be_enabled()
        preview.get_by_role("button", name="Remove image.png").click()
        expect(preview).to_have_count(0)
        assert errors == []

    [sent] = [m for m in sandbox.conversation_with(ANA) if m["direction"] == "outbound-api"]
    assert [item["data"] for item in sandbox.media_of(sent["sid"])] == [photo.read_bytes()]
    wait_for(lambda: scalar(database, "SELECT count(*) FROM media_files WHERE expires_at IS NOT NULL") == 1)
