"""Twilio's webhooks: verify the signature, parse, hand over to the domain. Nothing else.

A missing or wrong X-Twilio-Signature gets 403 and nothing is stored. Twilio wants 200 with
TwiML for inbound messages (a 201, a redirect or an HTML page is an error to it).
"""

from __future__ import annotations

from litestar import Request, Response, post
from twilio.twiml.messaging_response import MessagingResponse

from inbox import bus as events_bus
from inbox import metrics, status
from inbox.phones import channel_of
from inbox.twilio.payloads import Form, PayloadError, parse_inbound, parse_status
from inbox.twilio.signature import signed_url
from inbox.web.auth import runtime_of

STATUS_PATH = "/webhooks/twilio/status"
MAX_WEBHOOK_BODY = 64 * 1024  # Twilio's forms are a few KiB; refuse more before parsing
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


async def verified_form(request: Request) -> Form | None:
    """The form, if Twilio signed exactly this URL and body with a token in force."""
    runtime = runtime_of(request)
    form = Form.parse(await request.body())
    url = signed_url(runtime.settings.public_url, request.scope["path"], request.scope.get("query_string", b""))
    if not runtime.signatures.is_valid(url, form, request.headers.get("x-twilio-signature")):
        return None
    return form


def forbidden() -> Response:
    return Response("Invalid or missing X-Twilio-Signature.\n", status_code=403, media_type="text/plain")


def twiml(document: str = EMPTY_TWIML) -> Response:
    return Response(document, status_code=200, media_type="text/xml")


@post("/webhooks/twilio/inbound", status_code=200, request_max_body_size=MAX_WEBHOOK_BODY)
async def inbound_webhook(request: Request) -> Response:
    form = await verified_form(request)
    if form is None:
        metrics.webhooks.labels("inbound", "rejected").inc()
        return forbidden()
    try:
        payload = parse_inbound(form)
    except PayloadError as exc:
        metrics.webhooks.labels("inbound", "invalid").inc()
        return Response(f"{exc}\n", status_code=400, media_type="text/plain")
    runtime = runtime_of(request)
    result = await runtime.ingest.submit(payload)
    metrics.webhooks.labels("inbound", "duplicate" if result.duplicate else "stored").inc()
    metrics.inbound_messages.labels(channel_of(payload.from_addr).value, "duplicate" if result.duplicate else "stored").inc()
    if result.answer is None:
        return twiml()
    message_id, text = result.answer
    answer = MessagingResponse()
    answer.message(text, status_callback=f"{runtime.settings.public_url}{STATUS_PATH}?m={message_id}")
    return twiml(str(answer))


@post(STATUS_PATH, status_code=200, request_max_body_size=MAX_WEBHOOK_BODY)
async def status_webhook(request: Request) -> Response:
    """Delivery status for a reply; forward-only, so late or repeated callbacks change nothing."""
    form = await verified_form(request)
    if form is None:
        metrics.webhooks.labels("status", "rejected").inc()
        return forbidden()
    metrics.webhooks.labels("status", "stored").inc()
    try:
        payload = parse_status(form)
    except PayloadError as exc:
        return Response(f"{exc}\n", status_code=400, media_type="text/plain")
    runtime = runtime_of(request)
    raw_id = request.query_params.get("m", "")  # set on keyword answers sent from TwiML
    message_id = int(raw_id) if raw_id.isdigit() else None
    async with runtime.db.write() as session:
        await status.apply_callback(session, payload.sid, payload.status, payload.error_code, message_id)
        await events_bus.commit(session, runtime.bus)
    return Response(b"", status_code=204)
