"""Desktop notifications, the sound and the screen reader's announcements, in Chromium.

Playwright keeps every page visible and focused (there is no way to put a headless tab in the
background), so an init script stands in for the tab going to the background: it makes
`document.hidden` true and fires `visibilitychange`, as the browser does. The same script wraps
`window.Notification` and the Web Audio oscillators to record what the page asked the browser
to show and play; the real constructors still run (the context is granted the permission).
"""

from __future__ import annotations

import re
import time

import httpx
import pytest
from playwright.sync_api import expect

from tests.support.browser import WIDE, fresh_contexts, log_in, sid
from tests.support.staff import create_staff, issue_token
from tests.support.twilio import post_twilio

pytestmark = pytest.mark.browser

ANA = "+14155550123"
BEN = "+12125550199"

RECORDER = """
(() => {
  const record = { notifications: [], tones: 0, hidden: false };
  window.__record = record;
  Object.defineProperty(Document.prototype, "hidden", { configurable: true, get: () => record.hidden });
  Object.defineProperty(Document.prototype, "visibilityState", {
    configurable: true, get: () => (record.hidden ? "hidden" : "visible"),
  });
  record.setHidden = (hidden) => {
    record.hidden = hidden;
    document.dispatchEvent(new Event("visibilitychange"));
  };
  const Real = window.Notification;
  if (Real) {
    class Recorded extends Real {
      constructor(title, options = {}) {
        super(title, options);
        record.notifications.push({ title, body: options.body || "", tag: options.tag || "", instance: this });
      }
    }
    Object.defineProperty(Recorded, "permission", { get: () => Real.permission });
    Recorded.requestPermission = (...args) => Real.requestPermission(...args);
    window.Notification = Recorded;
  }
  const start = OscillatorNode.prototype.start;
  OscillatorNode.prototype.start = function (...args) {
    record.tones += 1;
    return start.apply(this, args);
  };
})();
"""


def wait_in(page, expression: str, timeout: float = 10.0) -> None:
    """Until `expression` is true in the page (wait_for_function would evaluate it in the page,
    which the inbox's Content-Security-Policy forbids)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"never true: {expression}"
        page.wait_for_timeout(50)


def notifications(page) -> list[dict]:
    return page.evaluate("window.__record.notifications.map(({title, body, tag}) => ({title, body, tag}))")


@pytest.fixture
def inbox(serve, database_url):
    server = serve(database_url)
    server.alice = create_staff(database_url, "alice@example.com", name="Alice Adams")
    server.bruno = create_staff(database_url, "bruno@example.com", name="Bruno Braga")
    server.bruno_token = issue_token(database_url, "bruno@example.com")
    for n, (phone, body) in enumerate([(BEN, "Do you open on Sunday?"), (ANA, "Hi, is my order ready?")], start=1):
        assert post_twilio(server.url, "inbound_sms", From=phone, Body=body, MessageSid=sid(n)).status_code == 200
    return server


@pytest.fixture
def browser(inbox, chromium):
    with fresh_contexts(chromium) as browser:
        yield browser


def open_page(browser, inbox, email: str, errors: list[str]):
    context = browser.new_context(viewport=WIDE)
    context.grant_permissions(["notifications"], origin=inbox.url)
    context.add_init_script(RECORDER)
    page = context.new_page()
    page.on("pageerror", lambda error: errors.append(str(error)))
    log_in(page, inbox.url, email)
    return page


def turn_on_notifications_and_sound(page) -> None:
    """From the frame's menu, as a person does; each is saved on the server."""
    page.locator("#notify-menu summary").click()
    page.get_by_label("Desktop notifications").check()
    expect(page.locator("#notify-status")).to_have_text("Saved.")
    page.get_by_label("Sound").check()
    expect(page.locator("#notify-status")).to_have_text("Saved.")


def test_a_background_tab_notifies_for_mine_or_nobodys_by_name_never_the_text(inbox, browser) -> None:
    errors: list[str] = []
    alice = open_page(browser, inbox, "alice@example.com", errors)
    bruno = open_page(browser, inbox, "bruno@example.com", errors)

    # Alice turns both on from the frame's menu; a reload shows them kept (on the server)
    turn_on_notifications_and_sound(alice)
    alice.reload()
    alice.locator("#notify-menu summary").click()
    expect(alice.get_by_label("Desktop notifications")).to_be_checked()
    expect(alice.get_by_label("Sound")).to_be_checked()
    expect(alice.locator("#live-status")).to_have_attribute("data-state", "live")
    # Bruno leaves them off (his browser would allow notifications: only his preference says no)
    bruno.locator("#notify-menu summary").click()
    expect(bruno.get_by_label("Desktop notifications")).not_to_be_checked()
    expect(bruno.get_by_label("Desktop notifications")).to_be_enabled()

    # Ben's conversation is Bruno's; Ana's is nobody's
    with httpx.Client(base_url=inbox.url, headers={"Authorization": f"Bearer {inbox.bruno_token}"}) as api:
        bens = next(c for c in api.get("/api/conversations").json()["conversations"] if c["customer"]["phone"] == BEN)
        assert api.patch(f"/api/conversations/{bens['id']}", json={"assignee_id": inbox.bruno.id}).status_code == 200
    expect(alice.locator("#conversation-list .conversation", has_text=BEN).locator(".conversation-owner")).to_have_text(
        "→ Bruno Braga"
    )

    # the customers write while both tabs are in the background
    for page in (alice, bruno):
        page.evaluate("window.__record.setHidden(true)")
    tones_before = alice.evaluate("window.__record.tones")
    secret = "My door code is 4321"
    assert post_twilio(inbox.url, "inbound_sms", From=BEN, Body="Are you there?", MessageSid=sid(3)).status_code == 200
    assert post_twilio(inbox.url, "inbound_sms", From=ANA, Body=secret, MessageSid=sid(4)).status_code == 200

    # Alice: one notification, for Ana's (nobody's) and not Ben's (Bruno's); the name, not the text
    expect(alice.locator("#conversation-list .conversation", has_text=ANA)).to_contain_text(secret)
    expect(alice.locator("#conversation-list .conversation", has_text=BEN)).to_contain_text("Are you there?")
    wait_in(alice, "window.__record.notifications.length > 0")  # a background tab rings after a short wait
    shown = notifications(alice)
    assert [n["title"] for n in shown] == [f"New message from {ANA}"], shown
    assert all(secret not in n["title"] + n["body"] for n in shown)
    assert alice.evaluate("window.__record.tones") > tones_before  # and the sound played
    expect(alice).to_have_title(re.compile(r"^\(4\) "))  # the unread count in the tab's title

    # Bruno: Ben's conversation is his, but his preference is off: nothing at all
    expect(bruno.locator("#conversation-list .conversation", has_text=ANA)).to_contain_text(secret)
    expect(bruno.locator("#conversation-list .conversation", has_text=BEN)).to_contain_text("Are you there?")
    assert notifications(bruno) == [] and bruno.evaluate("window.__record.tones") == 0

    # clicking the notification brings the tab forward with Ana's conversation open
    alice.evaluate("window.__record.setHidden(false)")
    alice.evaluate("window.__record.notifications[0].instance.dispatchEvent(new Event('click'))")
    expect(alice.locator("#thread-title")).to_have_text(ANA)
    expect(alice.locator("#thread-title")).to_be_focused()
    expect(alice.locator("#messages .message").last).to_contain_text(secret)
    expect(alice).to_have_url(re.compile(r"[?&]c=\d+"))

    # a customer writing while the tab is in front notifies nobody (the page shows it)
    assert post_twilio(inbox.url, "inbound_sms", From=ANA, Body="Thanks!", MessageSid=sid(5)).status_code == 200
    expect(alice.locator("#messages .message").last).to_contain_text("Thanks!")
    assert len(notifications(alice)) == 1
    assert errors == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the page alone: one database is enough
def test_the_screen_reader_hears_the_thread_that_opened_and_its_new_messages(inbox, browser) -> None:
    errors: list[str] = []
    alice = open_page(browser, inbox, "alice@example.com", errors)
    announcer = alice.locator("#announcer")
    expect(announcer).to_have_attribute("aria-live", "polite")
    links = alice.locator("#conversation-list .conversation-link")
    expect(links).to_have_count(2)
    alice.locator("body").press("j")
    expect(links.nth(0)).to_be_focused()  # Ana's: the newest
    alice.keyboard.press("Enter")
    # opened from the keyboard: focus follows into the thread's heading, and the region says so
    expect(alice.locator("#thread-title")).to_be_focused()
    expect(announcer).to_have_text(f"Opened the conversation with {ANA}: 1 message.")
    assert post_twilio(inbox.url, "inbound_sms", From=ANA, Body="Are you there?", MessageSid=sid(3)).status_code == 200
    expect(announcer).to_have_text(f"New message from {ANA}.")
    expect(alice.locator("#thread-title")).to_be_focused()  # an announcement never moves focus
    assert errors == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the page alone: one database is enough
def test_two_tabs_of_one_browser_ring_once_and_not_at_all_with_one_in_front(inbox, browser) -> None:
    errors: list[str] = []
    first = open_page(browser, inbox, "alice@example.com", errors)
    turn_on_notifications_and_sound(first)
    second = first.context.new_page()  # the same browser: signed in already
    second.on("pageerror", lambda error: errors.append(str(error)))
    second.goto(inbox.url + "/")
    tabs = (first, second)
    for tab in tabs:
        expect(tab.locator("#live-status")).to_have_attribute("data-state", "live")

    def alerts() -> list[tuple[int, int]]:
        return [(len(notifications(tab)), tab.evaluate("window.__record.tones")) for tab in tabs]

    def customer_writes(n: int, body: str) -> None:
        assert post_twilio(inbox.url, "inbound_sms", From=ANA, Body=body, MessageSid=sid(n)).status_code == 200
        for tab in tabs:
            expect(tab.locator("#conversation-list .conversation", has_text=ANA)).to_contain_text(body)
        first.wait_for_timeout(1000)  # past the background tabs' wait before they claim an alert

    # Both in the background: one notification and one chime, from one tab, not one from each.
    for tab in tabs:
        tab.evaluate("window.__record.setHidden(true)")
    before = alerts()
    customer_writes(3, "Are you open today?")
    rang = [(n - n0, t - t0) for (n, t), (n0, t0) in zip(alerts(), before, strict=True)]
    assert sorted(rang) == [(0, 0), (1, 2)], rang  # a notification and the chime's two tones

    # One in front: the person is looking at the inbox; the tab behind keeps quiet too.
    first.evaluate("window.__record.setHidden(false)")
    before = alerts()
    customer_writes(4, "Never mind, I will call.")
    assert alerts() == before
    assert errors == []
