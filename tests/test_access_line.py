"""The access line (one per HTTP request) is written by inbox.logs.access_line, not through
structlog's processor chain, for speed: it must be the very line structlog would have written,
redaction included."""

from __future__ import annotations

import io
import json
import re

import structlog

from inbox import logs

REQUEST_IDS = (
    "5f0c1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b",
    "12345678-3c4d-4e5f-8a9b-012345678901",  # a UUID whose groups look like numbers: kept whole
    "lb-7f3a9c:2",
    "call-14155550123",  # not a UUID: a number in it is masked
)
PATHS = (
    "/webhooks/twilio/inbound",
    "/api/customers/+14155550123",  # a number in a path: masked
    "/ws?token=inbox_" + "a" * 43,  # a token: blanked
    "/x/" + "0123456789abcdef" * 2,  # a 32-hex secret: blanked
    "/",
)


def test_the_access_line_is_the_line_structlog_would_write(monkeypatch) -> None:
    fast = io.StringIO()
    monkeypatch.setattr(logs, "_access_stream", fast)
    slow = io.StringIO()
    chain = structlog.wrap_logger(
        logs._NamedWriteLogger(slow, "inbox.access"), processors=structlog.get_config()["processors"]
    )
    for request_id in REQUEST_IDS:
        for path in PATHS:
            for status, duration in ((200, 1.25), (503, 0.0)):
                tokens = structlog.contextvars.bind_contextvars(request_id=request_id)
                try:
                    chain.info("request", method="POST", path=path, status=status, duration_ms=duration)
                finally:
                    structlog.contextvars.reset_contextvars(**tokens)
                logs.access_line(request_id, "POST", path, status, duration)
    fast_lines, slow_lines = fast.getvalue().splitlines(), slow.getvalue().splitlines()
    assert len(fast_lines) == len(slow_lines) == len(REQUEST_IDS) * len(PATHS) * 2
    for mine, theirs in zip(fast_lines, slow_lines, strict=True):
        mine_fields, their_fields = json.loads(mine), json.loads(theirs)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", mine_fields.pop("timestamp"))
        their_fields.pop("timestamp")
        assert list(mine_fields.items()) == list(their_fields.items())  # same keys, same order, same values
    assert "14155550123" not in fast.getvalue() and "inbox_aaaa" not in fast.getvalue()
    assert "0123456789abcdef0123456789abcdef" not in fast.getvalue()
    for request_id in REQUEST_IDS[:3]:
        assert f'"request_id":"{request_id}"' in fast.getvalue()  # as the client got it in X-Request-Id


def test_a_uuid_request_id_is_logged_whole_by_every_logger(monkeypatch) -> None:
    # One request in forty gets an id whose first group is all digits; the phone rule masked it,
    # so the log line could not be found from the id the client reported.
    request_id = "20261203-0000-4000-8000-000000000000"
    assert logs.redact(None, "info", {"request_id": request_id, "event": "websocket"})["request_id"] == request_id
    assert logs.redact(None, "info", {"request_id": "x.y-14155550123"})["request_id"] != "x.y-14155550123"


def test_no_access_line_when_info_is_not_logged(monkeypatch) -> None:
    monkeypatch.setattr(logs, "_access_stream", None)  # configure_logging(level=WARNING) leaves it so
    logs.access_line("id", "GET", "/", 200, 1.0)  # writes nowhere, raises nothing
