"""Post a correctly signed inbound webhook, as Twilio would (`inbox simulate`, benchmarks, demo)."""

from __future__ import annotations

import secrets
from urllib.parse import urlencode

import httpx

from inbox.paths import INBOUND_WEBHOOK
from inbox.twilio.payloads import E164
from inbox.twilio.signature import sign

INBOUND_PATH = INBOUND_WEBHOOK


def inbound_form(
    *,
    from_: str,
    to: str,
    body: str,
    channel: str = "sms",
    account_sid: str | None = None,
    sid: str | None = None,
    profile_name: str | None = None,
) -> dict[str, str]:
    if not E164.fullmatch(from_):
        raise ValueError(f"--from must be an E.164 number such as +15551234567, not {from_!r}")
    if not E164.fullmatch(to.removeprefix("whatsapp:")):
        raise ValueError(f"--to must be an E.164 number such as +15551234567, not {to!r}")
    prefix = "whatsapp:" if channel == "whatsapp" else ""
    sid = sid or "SM" + secrets.token_hex(16)
    form = {
        "MessageSid": sid,
        "SmsMessageSid": sid,
        "SmsSid": sid,
        "AccountSid": account_sid or "AC" + "0" * 32,
        "From": prefix + from_,
        "To": prefix + to.removeprefix("whatsapp:"),
        "Body": body,
        "NumMedia": "0",
        "NumSegments": "1",
        "SmsStatus": "received",
        "ApiVersion": "2010-04-01",
    }
    if channel == "whatsapp":
        form["ProfileName"] = profile_name or "Customer"
        form["WaId"] = from_.lstrip("+")
    return form


def signed_request(public_url: str, auth_token: str, form: dict[str, str]) -> tuple[str, bytes, dict[str, str]]:
    """(url, body, headers) of the webhook Twilio would send to `public_url`."""
    url = public_url.rstrip("/") + INBOUND_PATH
    headers = {"X-Twilio-Signature": sign(auth_token, url, form), "Content-Type": "application/x-www-form-urlencoded"}
    return url, urlencode(form).encode(), headers


def simulate_inbound(
    *,
    base_url: str,
    public_url: str,
    auth_token: str,
    account_sid: str | None,
    from_: str,
    to: str,
    channel: str,
    body: str,
) -> tuple[int, str]:
    form = inbound_form(from_=from_, to=to, body=body, channel=channel, account_sid=account_sid)
    _, payload, headers = signed_request(public_url, auth_token, form)
    # Signed for the public URL Twilio would call, posted wherever the inbox listens.
    response = httpx.post(base_url.rstrip("/") + INBOUND_PATH, content=payload, headers=headers, timeout=15)
    return response.status_code, form["MessageSid"]
