"""One look across every page: design tokens, the page frame, error pages, phone width, axe-core.

- Only static/css/tokens.css names colours; every other stylesheet uses its custom properties,
  and the tokens have a dark theme.
- A refused or missing page is a page in the frame for a browser, and JSON for a program.
- At 390×844 no page scrolls sideways, and axe-core (vendored from npm under tests/fixtures/axe)
  finds no serious or critical violation, in the light and the dark theme.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.support.browser import PHONE, fresh_contexts, log_in, sid
from tests.support.staff import PASSWORD, create_staff
from tests.support.twilio import post_twilio

ROOT = Path(__file__).resolve().parent.parent
CSS = ROOT / "static" / "css"
AXE = ROOT / "tests" / "fixtures" / "axe" / "axe.min.js"
COLOUR = re.compile(
    r"#[0-9a-fA-F]{3,8}\b|\b(?:rgba?|hsla?|hwb|lab|lch|oklch|oklab|color)\(|\b(?:white|black|red|gray|grey|silver)\b(?!-)"
)
ANA = "+14155550123"


# --- tokens ------------------------------------------------------------------------------------


def test_only_the_token_file_names_colours() -> None:
    offenders = {}
    for sheet in sorted(CSS.glob("*.css")):
        if sheet.name == "tokens.css":
            continue
        text = re.sub(r"/\*.*?\*/", "", sheet.read_text(), flags=re.S)
        found = COLOUR.findall(text)
        if found:
            offenders[sheet.name] = found
        assert "var(--" in text, f"{sheet.name} uses no design token"
    assert offenders == {}


def test_the_tokens_have_a_dark_theme_and_every_page_loads_them() -> None:
    tokens = (CSS / "tokens.css").read_text()
    assert "@media (prefers-color-scheme: dark)" in tokens
    for name in ("--bg", "--text", "--space-4", "--text-sm", "--font"):
        assert f"{name}:" in tokens
    templates = ROOT / "templates"
    assert 'href="/static/css/tokens.css"' in (templates / "base.html").read_text()
    phone = (templates / "phone.html").read_text()
    assert 'href="/static/css/tokens.css"' in phone
    assert 'rel="icon" href="/static/img/favicon.svg"' in phone  # /dev/phone asked for a favicon it did not have
    for page in templates.glob("*.html"):
        text = page.read_text()
        assert page.name in ("base.html", "phone.html", "_partials.html", "_frame.html") or text.startswith(
            '{% extends "base.html" %}'
        ), page.name


# --- error pages and small HTTP things ---------------------------------------------------------

HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


@contextmanager
def signed_in(base_url: str, email: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=15, follow_redirects=False) as client:
        page = client.get("/login")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        answer = client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": csrf, "next": "/"})
        assert answer.status_code == 303, answer.text
        yield client


@pytest.fixture
def site(serve, database_url):
    inbox = serve(database_url)
    create_staff(database_url, "rosa@example.com", name="Rosa Reyes")
    create_staff(database_url, "maria@example.com", role="manager", name="Maria Lopez")
    post_twilio(inbox.url, "inbound_sms", From=ANA, Body="Is my phone ready?", MessageSid=sid(1))
    return inbox


def assert_framed(response: httpx.Response, person: str) -> None:
    assert response.headers["content-type"].startswith("text/html")
    assert '<header class="topbar">' in response.text
    assert person in response.text
    assert "Sign out" in response.text


def test_a_receptionist_asking_for_settings_gets_a_page_and_a_program_gets_json(site) -> None:
    with signed_in(site.url, "rosa@example.com") as rosa:
        page = rosa.get("/settings", headers=HTML)
        assert page.status_code == 403
        assert_framed(page, "Rosa Reyes")
        assert "Only managers can change the inbox" in page.text
        assert 'href="/"' in page.text and "Back to the inbox" in page.text
        assert 'href="/settings"' not in page.text  # the frame's navigation fits a receptionist
        program = rosa.get("/settings", headers={"Accept": "application/json"})
        assert program.status_code == 403 and program.json()["error"] == "forbidden"


def test_a_missing_conversation_is_a_page(site) -> None:
    with signed_in(site.url, "rosa@example.com") as rosa:
        page = rosa.get("/?c=99999", headers=HTML)
        assert page.status_code == 404
        assert_framed(page, "Rosa Reyes")
        assert "There is no such conversation" in page.text
        assert rosa.get("/?c=1", headers=HTML).status_code == 200
        for odd in ("²", "9" * 40, "abc"):
            assert rosa.get("/", params={"c": odd}, headers=HTML).status_code == 404, odd
        transcript = rosa.get("/conversations/99999/transcript", headers=HTML)
        assert transcript.status_code == 404 and "There is no such conversation" in transcript.text


def test_a_bad_export_range_is_a_page_for_a_browser_and_json_for_a_program(site) -> None:
    with signed_in(site.url, "maria@example.com") as maria:
        url = "/api/export?format=csv&since=2026-03-01&until=2026-02-01"
        page = maria.get(url, headers=HTML)
        assert page.status_code == 422
        assert_framed(page, "Maria Lopez")
        assert 'href="/export"' in page.text and "Back to Export" in page.text
        program = maria.get(url)
        assert program.status_code == 422
        assert program.headers["content-type"].startswith("application/json")
        assert program.json()["error"].startswith("invalid_")


def test_head_answers_like_get_without_a_body(site) -> None:
    with signed_in(site.url, "rosa@example.com") as rosa:
        head = rosa.head("/")
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-type"].startswith("text/html")
    assert httpx.head(site.url + "/", timeout=15).status_code in (302, 303)  # signed out: to the login


# --- 390 px and axe-core -----------------------------------------------------------------------

NO_SIDEWAYS = "() => document.documentElement.scrollWidth <= window.innerWidth"
AXE_RUN = """async () => {
  const result = await axe.run(document, { resultTypes: ["violations"] });
  return result.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(", ")}`);
}"""


def check(page, label: str, failures: list[str]) -> None:
    page.wait_for_load_state("load")
    if not page.evaluate(NO_SIDEWAYS):
        width = page.evaluate("() => document.documentElement.scrollWidth")
        failures.append(f"{label}: {width}px wide on a 390px screen")
    page.add_script_tag(path=str(AXE))
    failures.extend(f"{label}: {violation}" for violation in page.evaluate(AXE_RUN))


@pytest.mark.browser
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_page_fits_a_phone_and_passes_axe(serve, sqlite_url, scheme, chromium) -> None:
    from playwright.sync_api import expect

    inbox = serve(sqlite_url)
    create_staff(sqlite_url, "maria@example.com", role="manager", name="Maria Lopez")
    create_staff(sqlite_url, "rosa@example.com", name="Rosa Reyes")
    post_twilio(inbox.url, "inbound_sms", From=ANA, Body="Is my phone ready? " + "long-" * 40, MessageSid=sid(1))
    failures: list[str] = []
    with fresh_contexts(chromium) as browser:
        # bypass_csp: only so the test can inject axe-core; the pages themselves run under the CSP.
        context = browser.new_context(viewport=PHONE, color_scheme=scheme, bypass_csp=True)
        page = context.new_page()
        page.goto(inbox.url + "/login")
        check(page, "sign-in", failures)
        log_in(page, inbox.url, "maria@example.com")
        expect(page.locator("#conversation-list [data-conversation-id]").first).to_be_visible()
        check(page, "inbox list", failures)
        # At phone width a manager still reaches every page of the navigation and the transcript.
        nav = page.get_by_role("navigation", name="Pages")
        for name in ("Export", "Reports", "Settings", "Staff"):
            expect(nav.get_by_role("link", name=name)).to_be_visible()
        page.get_by_role("button", name="New message").click()
        page.locator("#new-message-to").fill("(415) 555-0142")
        expect(page.locator("#new-message-number")).to_have_attribute("data-state", "ok")
        check(page, "new message dialog", failures)
        page.keyboard.press("Escape")
        page.locator("#conversation-list .conversation-link").first.click()
        expect(page.locator("#composer-body")).to_be_visible()
        expect(page.locator("#thread-transcript")).to_be_visible()
        check(page, "thread", failures)
        page.locator("#composer-body").press_sequentially("/")
        expect(page.locator("#quick-reply-picker")).to_contain_text("No saved replies yet")
        check(page, "saved replies picker", failures)
        page.locator("#composer-body").fill("")
        for path, label in [
            ("/settings", "settings"),
            ("/export", "export"),
            ("/reports", "reports"),
            ("/staff", "staff"),
            ("/conversations/1/transcript", "transcript"),
            ("/?c=424242", "error page"),
        ]:
            page.goto(inbox.url + path)
            check(page, label, failures)
        page.goto(inbox.url + "/?c=424242")
        expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    assert failures == []
