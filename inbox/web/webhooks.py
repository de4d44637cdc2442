"""Twilio's webhooks: verify the signature, parse, hand over to the domain. Nothing else.

A missing or wrong X-Twilio-Signature gets 403 and nothing is stored. Twilio wants 200 with
TwiML for inbound messages (a 201, a redirect or an HTML page is an error to it).

These two routes are plain ASGI handlers (routed by Litestar, wrapped by its middleware): they
take bytes and give bytes, so Litestar's request and response objects, which the webhook does
not need, stay off the inbox's hottest path. What they would have given is done here: the body
size limit (refused before it is read), the status codes, the content types.
"""

from __future__ import annotations

import json
from typing import Protocol, TypeVar
from urllib.parse import parse_qs

from litestar import asgi
from litestar.types import HTTPResponseBodyEvent, HTTPResponseStartEvent, HTTPScope, Receive, Send
from twilio.twiml.messaging_response import MessagingResponse

from inbox import metrics, status
from inbox.paths import INBOUND_WEBHOOK, STATUS_WEBHOOK
from inbox.phones import channel_of
from inbox.runtime import Runtime
from inbox.twilio.payloads import Form, PayloadError, parse_inbound, parse_status
from inbox.twilio.signature import signed_url

INBOUND_PATH, STATUS_PATH = INBOUND_WEBHOOK, STATUS_WEBHOOK
MAX_WEBHOOK_BODY = 64 * 1024  # Twilio's forms are a few KiB; refuse more before parsing
EMPTY_TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response/>'
_XML = b"text/xml; charset=utf-8"
_JSON = b"application/json"
MAX_MESSAGE_ID_DIGITS = 18  # ?m= is a message id: a 64-bit integer


class _TooLarge(Exception):
    pass


_Payload_co = TypeVar("_Payload_co", covariant=True)


class _Parser(Protocol[_Payload_co]):
    """parse_inbound or parse_status."""

    def __call__(self, form: Form, account_sid: str | None = None) -> _Payload_co: ...


_Payload = TypeVar("_Payload")


async def _read_body(scope: HTTPScope, receive: Receive) -> bytes:
    """The whole body, or _TooLarge as soon as it is known to pass MAX_WEBHOOK_BODY."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            if not value.isdigit() or int(value) > MAX_WEBHOOK_BODY:
                raise _TooLarge
            break
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # http.disconnect, the only other event of an HTTP scope:
            raise _TooLarge  # nobody is left to answer; nothing was read, nothing is stored
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_WEBHOOK_BODY:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _header(scope: HTTPScope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


async def _refuse(send: Send, status_code: int, code: str, detail: str) -> None:
    """The API's JSON error shape, so every refusal reads the same wherever it comes from."""
    await _answer(send, status_code, json.dumps({"error": code, "detail": detail}).encode(), _JSON)


async def _answer(send: Send, status_code: int, body: bytes = b"", content_type: bytes = _JSON) -> None:
    headers = [(b"content-length", str(len(body)).encode())]
    if body:
        headers.append((b"content-type", content_type))
    start: HTTPResponseStartEvent = {"type": "http.response.start", "status": status_code, "headers": headers}
    await send(start)
    # more_body spelled out at its ASGI default, which the TypedDict requires.
    end: HTTPResponseBodyEvent = {"type": "http.response.body", "body": body, "more_body": False}
    await send(end)


async def _verified_payload(
    scope: HTTPScope, receive: Receive, send: Send, kind: str, parse: _Parser[_Payload]
) -> tuple[Runtime, _Payload] | None:
    """(runtime, parse(form)) if this is a POST that Twilio signed, this URL and body, with a
    token in force, and the form holds what Twilio always sends; else the refusal has been sent
    and None is returned."""
    if scope["method"] != "POST":
        await _refuse(send, 405, "method_not_allowed", "Twilio's webhooks are POST only.")
        return None
    try:
        body = await _read_body(scope, receive)
    except _TooLarge:
        metrics.webhooks.labels(kind, "invalid").inc()
        await _refuse(send, 413, "too_large", "Request body too large for a Twilio webhook.")
        return None
    runtime: Runtime = scope["litestar_app"].state.runtime
    form = Form.parse(body)
    url = signed_url(runtime.settings.public_url, scope["path"], scope.get("query_string", b""))
    if not runtime.signatures.is_valid(url, form, _header(scope, b"x-twilio-signature")):
        metrics.webhooks.labels(kind, "rejected").inc()
        await _refuse(
            send,
            403,
            "invalid_signature",
            "The signature did not match this request (X-Twilio-Signature wrong or missing): nothing was stored.",
        )
        return None
    try:
        return runtime, parse(form, account_sid=runtime.settings.twilio_account_sid)
    except PayloadError as exc:
        metrics.webhooks.labels(kind, "invalid").inc()
        await _refuse(send, 400, "invalid_webhook", f"This is not a Twilio webhook form: {exc}.")
        return None


@asgi(INBOUND_PATH, copy_scope=False)
async def inbound_webhook(scope: HTTPScope, receive: Receive, send: Send) -> None:
    verified = await _verified_payload(scope, receive, send, "inbound", parse_inbound)
    if verified is None:
        return
    runtime, payload = verified
    result = await runtime.ingest.submit(payload)
    outcome = "duplicate" if result.duplicate else "stored"
    metrics.webhooks.labels("inbound", outcome).inc()
    metrics.inbound_messages.labels(channel_of(payload.from_addr).value, outcome).inc()
    if result.answer is None:
        await _answer(send, 200, EMPTY_TWIML, _XML)
        return
    message_id, text = result.answer
    answer = MessagingResponse()
    answer.message(text, status_callback=f"{runtime.settings.public_url}{STATUS_PATH}?m={message_id}")
    await _answer(send, 200, str(answer).encode(), _XML)


@asgi(STATUS_PATH, copy_scope=False)
async def status_webhook(scope: HTTPScope, receive: Receive, send: Send) -> None:
    """Delivery status for a reply; forward-only, so late or repeated callbacks change nothing."""
    verified = await _verified_payload(scope, receive, send, "status", parse_status)
    if verified is None:
        return
    runtime, payload = verified
    raw_id = _query_value(scope, "m")  # set on keyword answers sent from TwiML
    if raw_id and not (raw_id.isascii() and raw_id.isdigit() and len(raw_id) <= MAX_MESSAGE_ID_DIGITS):
        metrics.webhooks.labels("status", "invalid").inc()
        await _refuse(send, 400, "invalid_webhook", "The callback URL's m= is not a message id.")
        return
    metrics.webhooks.labels("status", "stored").inc()
    await status.apply_callback(
        runtime.db,
        runtime.bus,
        payload.sid,
        payload.status,
        payload.error_code,
        int(raw_id) if raw_id else None,
        payload.from_addr,
        sweep=runtime.pending_sweep_due(),
    )
    await _answer(send, 204)


def _query_value(scope: HTTPScope, name: str) -> str:
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get(name)
    return values[0] if values else ""
