"""Routine refusals (401, 403, 404, 409, 422) are answers, not errors: no ERROR record and no
traceback in the log, only the request's own info line."""

from __future__ import annotations

import logging

import httpx

from tests.support.staff import create_staff, issue_token


def test_refusals_log_no_error_and_no_traceback(serve, sqlite_url, caplog) -> None:
    server = serve(sqlite_url)
    create_staff(sqlite_url, "rosa@example.com")
    token = issue_token(sqlite_url, "rosa@example.com")
    caplog.set_level(logging.INFO)
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=15) as api:
        assert api.get("/api/conversations/424242").status_code == 404
        assert api.get("/api/conversations", params={"status": "sideways"}).status_code == 422
        assert api.get("/api/export").status_code == 403
        assert api.post("/api/conversations/424242/messages", json={"body": "hi"}).status_code == 404
        assert httpx.get(server.url + "/api/me", timeout=15).status_code == 401
    noisy = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert noisy == []
