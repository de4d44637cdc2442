"""Team workflow in two browsers at once: ownership, closing, the views' counts and notes, live.

Two staff members, each in their own Chromium context, on SQLite and on PostgreSQL. Every wait
is a condition with a deadline (Playwright's expect), never a fixed sleep.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.support.browser import WIDE, fresh_contexts, log_in, sid
from tests.support.staff import create_staff
from tests.support.twilio import post_twilio

pytestmark = pytest.mark.browser

ANA = "+14155550123"
BEN = "+12125550199"


@pytest.fixture
def inbox(serve, database_url):
    server = serve(database_url)
    create_staff(database_url, "alice@example.com", name="Alice Adams")
    create_staff(database_url, "bruno@example.com", name="Bruno Braga")
    for n, (phone, body) in enumerate([(BEN, "Do you open on Sunday?"), (ANA, "Hi, is my order ready?")], start=1):
        assert post_twilio(server.url, "inbound_sms", From=phone, Body=body, MessageSid=sid(n)).status_code == 200
    return server


@pytest.fixture
def pages(inbox, chromium):
    with fresh_contexts(chromium) as browser:
        opened = []
        errors: list[str] = []
        for email in ("alice@example.com", "bruno@example.com"):
            context = browser.new_context(viewport=WIDE)
            page = context.new_page()
            page.on("pageerror", lambda error: errors.append(str(error)))
            log_in(page, inbox.url, email)
            opened.append(page)
        yield opened
        assert errors == []


def view_option(page, view: str):
    return page.locator(f"#status-filter option[value='{view}']")


def row(page, name: str):
    return page.locator("#conversation-list .conversation", has_text=name)


def test_two_staff_take_close_and_see_a_reopen_live(inbox, pages) -> None:
    alice, bruno = pages
    for page in pages:
        expect(view_option(page, "unassigned")).to_have_text("Unassigned (2)")
        expect(view_option(page, "open")).to_have_text("All open (2)")
    bruno.select_option("#status-filter", "unassigned")
    expect(bruno.locator("#conversation-list .conversation")).to_have_count(2)

    # Alice takes Ana's conversation with one click: Bruno's Unassigned view loses it, live
    alice.locator("#conversation-list .conversation-link", has_text=ANA).click()
    expect(alice.locator("#thread-owner")).to_have_text("Nobody owns this")
    alice.get_by_role("button", name="Take it").click()
    expect(alice.locator("#thread-owner")).to_have_text("You own this")
    expect(row(bruno, ANA)).to_have_count(0)
    expect(view_option(bruno, "unassigned")).to_have_text("Unassigned (1)")
    expect(view_option(alice, "mine")).to_have_text("Mine (1)")
    bruno.select_option("#status-filter", "open")
    expect(row(bruno, ANA).locator(".conversation-owner")).to_have_text("→ Alice Adams")
    bruno.locator("#conversation-list .conversation-link", has_text=ANA).click()
    expect(bruno.locator("#thread-owner")).to_have_text("Owner: Alice Adams")

    # Alice closes it with `e`: both see it closed, Bruno's counts change
    alice.locator("#messages").focus()
    alice.keyboard.press("e")
    expect(alice.locator("#close-toggle")).to_have_text("Reopen")
    expect(bruno.locator("#close-toggle")).to_have_text("Reopen")
    expect(view_option(bruno, "open")).to_have_text("All open (1)")
    expect(view_option(bruno, "closed")).to_have_text("Closed (1)")
    expect(row(bruno, ANA)).to_have_count(0)

    # the customer writes again: it reopens on both screens, still Alice's
    assert post_twilio(inbox.url, "inbound_sms", From=ANA, Body="Hello again", MessageSid=sid(9)).status_code == 200
    for page in pages:
        expect(page.locator("#close-toggle")).to_have_text("Close")
        expect(view_option(page, "open")).to_have_text("All open (2)")
        expect(view_option(page, "closed")).to_have_text("Closed (0)")
    expect(row(bruno, ANA)).to_have_count(1)
    expect(bruno.locator("#thread-owner")).to_have_text("Owner: Alice Adams")

    # `a` assigns to me: Bruno takes it over, Alice sees it move to Bruno
    bruno.locator("#messages").focus()
    bruno.keyboard.press("a")
    expect(bruno.locator("#thread-owner")).to_have_text("You own this")
    expect(alice.locator("#thread-owner")).to_have_text("Owner: Bruno Braga")
    expect(view_option(alice, "mine")).to_have_text("Mine (0)")
    # and the Assign control hands it to anyone
    alice.select_option("#assign-select", label="Alice Adams")
    expect(bruno.locator("#thread-owner")).to_have_text("Owner: Alice Adams")


def test_notes_are_internal_distinct_and_live(inbox, pages) -> None:
    alice, bruno = pages
    for page in pages:
        page.locator("#conversation-list .conversation-link", has_text=ANA).click()
        expect(page.locator("#messages .message")).to_have_count(1)
    alice.locator("#note-box summary").click()
    note = "<b>Called her back</b>, she prefers mornings"
    alice.get_by_label(re.compile("Internal note")).fill(note)
    alice.get_by_role("button", name="Save note").click()
    for page in pages:
        item = page.locator("#messages .note")
        expect(item).to_have_count(1)
        expect(item.locator(".note-body")).to_have_text(note)  # literal text, never markup
        expect(item).to_contain_text("only your team sees this")
        expect(item.locator(".note-author")).to_have_text("Alice Adams")
        assert item.locator("b").count() == 0
    # a reload shows it in place among the messages
    bruno.reload()
    expect(bruno.locator("#messages > li")).to_have_count(2)
    expect(bruno.locator("#messages > li").nth(1)).to_have_class(re.compile(r"\bnote\b"))


def test_the_customer_card_names_them_live_and_tells_their_local_time(inbox, pages) -> None:
    alice, bruno = pages
    for page in pages:
        page.locator("#conversation-list .conversation-link", has_text=ANA).click()
        expect(page.locator("#messages .message")).to_have_count(1)
        # a San Francisco number: the time there, beside the composer
        expect(page.locator("#customer-clock")).to_have_text(re.compile(r"^It is .+ for them \(America/Los Angeles\)$"))
    alice.locator("#customer-card summary").click()
    expect(alice.locator("#customer-phone")).to_have_text(ANA)
    expect(alice.locator("#customer-count")).to_have_text("1 message, 1 from them")
    name = "Ana <i>Lima</i>"
    alice.get_by_label("Name", exact=True).fill(name)
    alice.get_by_label("Notes about this customer").fill("Prefers mornings")
    alice.locator("#customer-form").get_by_role("button", name="Save").click()
    expect(alice.locator("#customer-saved")).to_have_text("Saved.")
    # Bruno sees the new name in the header and the list, literally, without reloading
    expect(bruno.locator("#thread-title")).to_have_text(name)
    expect(row(bruno, name).locator(".conversation-name")).to_have_text(name)
    bruno.locator("#customer-card summary").click()
    expect(bruno.locator("#customer-notes")).to_have_value("Prefers mornings")
    assert bruno.locator("#thread-title i").count() == 0


def test_who_else_is_viewing_and_typing(inbox, pages) -> None:
    alice, bruno = pages
    dialogs: list[str] = []

    def answer(dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    alice.on("dialog", answer)
    for page in pages:
        page.locator("#conversation-list .conversation-link", has_text=ANA).click()
        expect(page.locator("#messages .message")).to_have_count(1)
    expect(alice.locator("#thread-presence")).to_have_text("Bruno Braga is viewing")
    expect(bruno.locator("#thread-presence")).to_have_text("Alice Adams is viewing")
    bruno.locator("#composer-body").press_sequentially("On it")
    expect(alice.locator("#thread-presence")).to_have_text("Bruno Braga is typing…")
    # Alice sending over Bruno's reply is asked first; dismissing sends nothing
    alice.locator("#composer-body").fill("Hello Ana")
    alice.locator("#composer-body").press("Enter")
    expect(alice.locator("#composer-body")).to_have_value("Hello Ana")
    assert dialogs and "Bruno Braga was typing" in dialogs[0]
    expect(alice.locator("#messages .message")).to_have_count(1)


def test_mark_unread_goes_back_to_the_list_unread(inbox, pages) -> None:
    alice, _bruno = pages
    alice.locator("#conversation-list .conversation-link", has_text=ANA).click()
    expect(row(alice, ANA).locator("[data-part=unread]")).to_be_hidden()
    alice.get_by_role("button", name="Mark unread").click()
    expect(alice.locator("#thread-empty")).to_be_visible()
    expect(row(alice, ANA).locator("[data-part=unread-count]")).to_have_text("1")
    alice.reload()
    expect(row(alice, ANA).locator("[data-part=unread-count]")).to_have_text("1")


def test_mark_unread_wins_over_a_read_mark_still_on_its_way(inbox, pages) -> None:
    """Opening marks read a moment later; "Mark unread" right after must not be undone by it."""
    alice, _bruno = pages
    held = []  # the read mark's request, held back as a slow network would
    alice.route("**/api/conversations/*/read", lambda route: held.append(route))
    alice.locator("#conversation-list .conversation-link", has_text=ANA).click()
    for _ in range(200):  # bounded: the read mark goes out 300 ms after opening
        if held:
            break
        alice.wait_for_timeout(25)
    assert held, "opening the conversation never marked it read"
    alice.get_by_role("button", name="Mark unread").click()
    held[0].continue_()
    expect(row(alice, ANA).locator("[data-part=unread-count]")).to_have_text("1")
    alice.reload()
    expect(row(alice, ANA).locator("[data-part=unread-count]")).to_have_text("1")


def test_keyboard_moves_opens_replies_searches_and_lists_the_keys(inbox, pages) -> None:
    alice, _bruno = pages
    links = alice.locator("#conversation-list .conversation-link")
    expect(links).to_have_count(2)
    alice.locator("body").press("j")
    expect(links.nth(0)).to_be_focused()
    alice.keyboard.press("j")
    expect(links.nth(1)).to_be_focused()
    alice.keyboard.press("k")
    expect(links.nth(0)).to_be_focused()
    alice.keyboard.press("Enter")
    expect(alice.locator("#thread-title")).to_have_text(ANA)
    expect(alice.locator("#messages .message")).to_have_count(1)  # loaded, its composer built
    alice.locator("#messages").focus()
    alice.keyboard.press("r")
    expect(alice.locator("#composer-body")).to_be_focused()
    alice.keyboard.type("rk/?")  # typed into the reply box, not taken as shortcuts
    expect(alice.locator("#composer-body")).to_have_value("rk/?")
    alice.locator("#messages").focus()
    alice.keyboard.press("/")
    expect(alice.locator("#search")).to_be_focused()
    alice.locator("#messages").focus()
    alice.keyboard.press("?")
    expect(alice.locator("#shortcuts")).to_be_visible()
    alice.keyboard.press("Escape")
    expect(alice.locator("#shortcuts")).to_be_hidden()
