"""The managers' settings page: Twilio connection facts, answers and words, WhatsApp templates."""

from __future__ import annotations

import re
from contextlib import closing

import httpx

from tests.support.db import rows
from tests.support.staff import create_staff, signed_in_client
from tests.support.twilio import AUTH_TOKEN, post_twilio


def page_csrf(client: httpx.Client) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', client.get("/settings").text).group(1)


def test_managers_see_the_connection_and_never_the_secrets(serve, sqlite_url) -> None:
    server = serve(sqlite_url)
    create_staff(sqlite_url, "manager@example.com", role="manager")
    create_staff(sqlite_url, "reception@example.com")
    post_twilio(server.url, "inbound_sms")
    manager, _ = signed_in_client(server.url, "manager@example.com")
    reception, _ = signed_in_client(server.url, "reception@example.com")
    with closing(manager), closing(reception):
        page = manager.get("/settings")
        assert page.status_code == 200
        assert f"{server.url}/webhooks/twilio/inbound" in page.text
        assert f"{server.url}/webhooks/twilio/status" in page.text
        assert AUTH_TOKEN not in page.text
        assert "none yet" not in page.text  # a message was received
        assert reception.get("/settings").status_code == 403
        assert reception.post("/settings/answers", data={"csrf_token": "x", "help": "hijacked"}).status_code == 403


def test_answers_words_and_templates_are_saved(serve, sqlite_url) -> None:
    server = serve(sqlite_url)
    create_staff(sqlite_url, "manager@example.com", role="manager")
    manager, _ = signed_in_client(server.url, "manager@example.com")
    with closing(manager):
        csrf = page_csrf(manager)
        assert manager.post("/settings/answers", data={"csrf_token": "forged", "help": "x"}).status_code == 403
        saved = manager.post(
            "/settings/answers",
            data={
                "csrf_token": csrf,
                "help": "Call us on 020 7946 0000. Reply STOP to opt out.",
                "opt_out": "",
                "opt_in": "",
                "extra_opt_out": "ARRET, baja",
                "extra_opt_in": "",
                "extra_help": "AIDE",
            },
        )
        assert saved.status_code == 303 and saved.headers["location"].startswith("/settings?saved")
        post_twilio(server.url, "inbound_sms", Body="arret", MessageSid="SM" + "a" * 32)
        assert rows(sqlite_url, "SELECT action, source FROM consent_records") == [("opt_out", "keyword")]
        clash = manager.post("/settings/answers", data={"csrf_token": csrf, "extra_opt_out": "START"})
        assert "error=" in clash.headers["location"]
        added = manager.post(
            "/settings/templates",
            data={
                "csrf_token": csrf,
                "name": "Reminder",
                "content_sid": "HX" + "b" * 32,
                "body": "Hi {{1}}",
                "variables": "name",
            },
        )
        assert added.status_code == 303
        listed = manager.get("/api/whatsapp-templates").json()["templates"]
        assert [(t["name"], t["variables"]) for t in listed] == [("Reminder", ["name"])]
        assert "Hi {{1}}" in manager.get("/settings").text
