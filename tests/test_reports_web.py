"""Reports over HTTP: GET /api/reports (managers 200, receptionists 403, bad periods 422) on both
databases, and the /reports page in Chromium: every chart drawn, no page error, each chart's CSV
equal to its table, the refused page for a receptionist, the link in the managers' navigation."""

from __future__ import annotations

import csv
import io

import httpx
import pytest
from playwright.sync_api import expect
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.support import loop
from tests.support.browser import CHROMIUM, PHONE, WIDE, fresh_contexts, log_in, sid
from tests.support.db import rows
from tests.support.staff import create_staff, issue_token
from tests.support.twilio import post_twilio
from tests.test_reports import _seed

MANAGER = "maria@example.com"
RECEPTION = "rita@example.com"
PERIOD = {"since": "2024-03-28", "until": "2024-04-02"}


@pytest.fixture
def app(serve, database_url):
    loop.run(_seed(database_url))  # staff 1 and 2, the history of tests/test_reports.py
    create_staff(database_url, MANAGER, "manager", name="Maria Manager")
    create_staff(database_url, RECEPTION, "receptionist", name="Rita Reception")
    server = serve(database_url, INBOX_TIMEZONE="Europe/London")
    server.database_url = database_url
    return server


def bearer(database_url: str, email: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_token(database_url, email)}"}


def test_api_gives_managers_the_figures(app) -> None:
    response = httpx.get(app.url + "/api/reports", params=PERIOD, headers=bearer(app.database_url, MANAGER))
    assert response.status_code == 200, response.text
    figures = response.json()
    assert (figures["since"], figures["until"], figures["timezone"]) == (
        "2024-03-28T00:00:00Z",
        "2024-04-02T23:00:00Z",
        "Europe/London",
    )
    assert [d["date"] for d in figures["days"]] == [
        "2024-03-28",
        "2024-03-29",
        "2024-03-30",
        "2024-03-31",
        "2024-04-01",
        "2024-04-02",
    ]
    assert figures["days"][4] == {
        "date": "2024-04-01",
        "inbound": {"sms": 3, "whatsapp": 1},
        "outbound": {"sms": 3, "whatsapp": 1},
    }
    first = figures["first_response"]
    assert (first["responses"], first["median_s"], first["p90_s"]) == (5, 1800, 59400)
    assert [(s["staff"]["name"], s["replies"], s["median_s"]) for s in first["by_staff"]] == [
        ("Ann", 3, 1800),
        ("Bob", 2, 3300),
    ]
    assert [w["conversation_id"] for w in figures["waiting"]] == [6, 4]
    assert [(d["status"], d["error_code"], d["count"]) for d in figures["delivery"]][-2:] == [
        ("undelivered", 30007, 1),
        ("failed", 63016, 1),
    ]
    assert figures["consent"] == [
        {"week": "2024-03-25", "opt_out": 1, "opt_in": 0},
        {"week": "2024-04-01", "opt_out": 1, "opt_in": 1},
    ]


def test_api_refuses_receptionists_and_strangers(app) -> None:
    response = httpx.get(app.url + "/api/reports", headers=bearer(app.database_url, RECEPTION))
    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"
    assert httpx.get(app.url + "/api/reports").status_code == 401


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"since": "last tuesday"}, "invalid_since"),
        ({"until": "2024-02-30"}, "invalid_until"),
        ({"since": "2024-04-02", "until": "2024-04-01"}, "invalid_until"),
        ({"since": "2020-01-01", "until": "2024-01-01"}, "invalid_until"),
    ],
)
def test_api_refuses_bad_periods_with_422(app, params, error) -> None:
    response = httpx.get(app.url + "/api/reports", params=params, headers=bearer(app.database_url, MANAGER))
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == error and body["detail"].endswith(".")


# ---- the page, in Chromium ------------------------------------------------------------------


async def _execute(database_url: str, sql: str) -> None:
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text(sql))
    finally:
        await engine.dispose()


@pytest.fixture
def page_app(serve, sqlite_url):
    loop.run(_seed(sqlite_url))
    loop.run(_execute(sqlite_url, "UPDATE customers SET name = '=SUM(A1)' WHERE id = 4"))  # Dev, waiting
    create_staff(sqlite_url, MANAGER, "manager", name="Maria Manager")
    create_staff(sqlite_url, RECEPTION, "receptionist", name="Rita Reception")
    return serve(sqlite_url, INBOX_TIMEZONE="Europe/London")


@pytest.fixture
def browser(page_app, chromium):
    """The module's Chromium; this test's contexts close before its server stops."""
    with fresh_contexts(chromium) as browser:
        yield browser


def cells(table) -> list[list[str]]:
    return table.evaluate(
        "t => [...t.querySelectorAll('tr')].map(r => [...r.querySelectorAll('th, td')].map(c => c.textContent.trim()))"
    )


def unquote(cell: str) -> str:
    return cell[1:] if cell.startswith("'") else cell


def test_page_draws_every_chart_and_each_csv_matches_its_table(page_app, browser, tmp_path) -> None:
    assert CHROMIUM
    context = browser.new_context(viewport=WIDE)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    log_in(page, page_app.url, MANAGER)
    expect(page.locator(".topnav a[href='/reports']")).to_have_text("Reports")
    page.locator(".topnav a[href='/reports']").click()
    expect(page.locator("h1")).to_have_text("Reports")
    page.get_by_label("Dates").check()
    page.get_by_label("From").fill(PERIOD["since"])
    page.get_by_label("Until (included)").fill(PERIOD["until"])
    page.get_by_role("button", name="Show").click()
    expect(page.locator(".report-summary")).to_contain_text("From 2024-03-28 to 2024-04-02 (Europe/London)")

    charts = page.locator("svg.chart")
    expect(charts).to_have_count(4)
    for i in range(4):
        chart = charts.nth(i)
        expect(chart).to_be_visible()
        box = chart.bounding_box()
        assert box and box["width"] > 300 and box["height"] > 80
        assert chart.locator("rect, path, circle").count() > 0
    # Six bars' worth of numbers on the messages chart, hatching for WhatsApp, a dashed p90 line.
    assert page.locator("#chart-messages rect[fill='url(#hatch-in)']").count() == 3  # legend + 31 Mar + 1 Apr
    assert page.locator("#chart-response-times path.line.series-b").count() == 1
    assert page.locator("#chart-delivery").get_by_text("55.6 % (5)").count() == 1

    links = page.locator("a.csv-link")
    expect(links).to_have_count(6)
    for i in range(6):
        link = links.nth(i)
        table = page.locator("#" + link.get_attribute("data-table"))
        expected = cells(table)
        response = context.request.get(page_app.url + link.get_attribute("href"))
        assert response.status == 200 and response.headers["content-type"].startswith("text/csv")
        assert "attachment" in response.headers["content-disposition"]
        got = list(csv.reader(io.StringIO(response.text(), newline="")))
        assert [[unquote(c) for c in row] for row in got] == expected, link.get_attribute("href")
        assert len(got) >= 2 or link.get_attribute("data-table") == "table-staff"

    # The formula-looking customer name reaches the CSV as text; the table shows it as typed.
    csv_url = page_app.url + "/reports/csv/waiting?since=2024-03-28&until=2024-04-02"
    waiting = list(csv.reader(io.StringIO(context.request.get(csv_url).text(), newline="")))
    assert [row[:2] for row in waiting[1:]] == [["Fay", "'+447700900006"], ["'=SUM(A1)", "'+447700900004"]]
    expect(page.locator("#table-waiting a")).to_have_text(["Fay", "=SUM(A1)"])
    expect(page.locator("#table-waiting a").first).to_have_attribute("href", "/?c=6")
    page.screenshot(path=str(tmp_path / "reports-wide.png"), full_page=True)

    page.set_viewport_size(PHONE)
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert errors == []
    context.close()


def test_receptionists_get_the_refused_page(page_app, browser) -> None:
    context = browser.new_context(viewport=WIDE)
    page = context.new_page()
    log_in(page, page_app.url, RECEPTION)
    expect(page.locator(".topnav a[href='/reports']")).to_have_count(0)
    response = page.goto(page_app.url + "/reports")
    assert response.status == 403
    expect(page.locator("body")).to_contain_text("Only managers can see the reports.")
    assert context.request.get(page_app.url + "/reports/csv/messages").status == 403
    context.close()


def test_bad_dates_on_the_page_say_what_is_wrong(page_app, browser) -> None:
    context = browser.new_context(viewport=WIDE)
    page = context.new_page()
    log_in(page, page_app.url, MANAGER)
    response = page.goto(page_app.url + "/reports?period=custom&since=2024-04-02&until=2024-04-01")
    assert response.status == 422
    expect(page.get_by_role("alert")).to_have_text("until must come after since.")
    expect(page.locator("svg.chart")).to_have_count(0)
    context.close()


# ---- the stored wait, through the real write path -------------------------------------------


def test_a_reply_queued_through_the_api_stores_the_wait_it_ended(serve, database_url) -> None:
    """Two customer messages, a staff reply, another reply: one first response, timed from the
    first message; an automatic HELP answer in between changes nothing."""
    create_staff(database_url, MANAGER, "manager", name="Maria Manager")
    server = serve(database_url)
    headers = bearer(database_url, MANAGER)
    assert post_twilio(server.url, "inbound_sms", Body="Is my repair ready?", MessageSid=sid(1)).status_code == 200
    assert post_twilio(server.url, "inbound_sms", Body="HELP", MessageSid=sid(2)).status_code == 200  # auto answer
    assert post_twilio(server.url, "inbound_sms", Body="Hello?", MessageSid=sid(3)).status_code == 200
    [conversation] = httpx.get(server.url + "/api/conversations", headers=headers).json()["conversations"]
    for body in ("Yes, come by.", "We close at six."):
        response = httpx.post(
            f"{server.url}/api/conversations/{conversation['id']}/messages", json={"body": body}, headers=headers
        )
        assert response.status_code == 202, response.text
    stored = rows(
        database_url,
        "SELECT m.body, m.wait_started_at, (SELECT MIN(i.created_at) FROM messages i WHERE i.direction = 'inbound') "
        "FROM messages m WHERE m.staff_id IS NOT NULL ORDER BY m.id",
    )
    assert [(body, started == first) for body, started, first in stored] == [
        ("Yes, come by.", True),
        ("We close at six.", False),
    ]
    assert stored[1][1] is None
    figures = httpx.get(server.url + "/api/reports", headers=headers).json()
    assert figures["first_response"]["responses"] == 1
    assert [s["replies"] for s in figures["first_response"]["by_staff"]] == [1]
    assert figures["waiting_total"] == 0
