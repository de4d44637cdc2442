"""Twilio's webhook forms, read into plain typed values (no database, no web framework).

Every Twilio identifier read here must have Twilio's exact shape (two letters + 32 hex
characters), and the account must be ours. Twilio's signature concatenates the sorted names and
values with no separator, so a captured request can be re-cut without breaking it: moving a key
into the previous value (`MessageSid=SM…MessagingServiceSidMG…` with `MessagingServiceSid`
removed) keeps the signature valid. Exact shapes make every such re-cut fail to parse, and a form
that does not parse as Twilio's is refused (400) before anything is stored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import unquote_plus, urlsplit

MAX_MEDIA = 10

MESSAGE_SID = re.compile(r"(?:SM|MM)[0-9a-fA-F]{32}")
ACCOUNT_SID = re.compile(r"AC[0-9a-fA-F]{32}")
SERVICE_SID = re.compile(r"MG[0-9a-fA-F]{32}")
MEDIA_SID = re.compile(r"ME[0-9a-fA-F]{32}")
E164 = re.compile(r"\+[1-9][0-9]{6,14}")  # a phone number as Twilio writes it (fullmatch)
CONTENT_SID = re.compile(r"HX[0-9a-fA-F]{32}")  # an approved WhatsApp template
ERROR_CODE = re.compile(r"[0-9]{1,6}")  # Twilio's codes are five digits (30003, 63016)


class PayloadError(ValueError):
    """A signed form that lacks what Twilio always sends, or holds a field of the wrong shape."""


class Form(dict[str, list[str]]):
    """A form body with every value of every key, blanks kept: the signature covers them all.

    `getall` is the multi-dict method twilio's RequestValidator looks for.
    """

    @classmethod
    def parse(cls, body: bytes) -> Form:
        """As `parse_qsl(…, keep_blank_values=True)` reads it (the tests hold the two equal), but
        unquoting only the parts that need it: most of a Twilio form is plain text."""
        form = cls()
        for pair in body.decode("utf-8", "replace").split("&"):
            if not pair:
                continue
            name, _, value = pair.partition("=")
            if "%" in name or "+" in name:
                name = unquote_plus(name)
            if "%" in value or "+" in value:
                value = unquote_plus(value)
            if name in form:
                form[name].append(value)
            else:
                form[name] = [value]
        return form

    def getall(self, name: str) -> list[str]:
        return self[name]


def _first(form: Form, name: str) -> str | None:
    values = form.get(name)
    return values[0] if values else None


@dataclass(frozen=True)
class InboundPayload:
    sid: str
    account_sid: str | None
    from_addr: str
    to_addr: str
    body: str
    media: list[dict[str, str]] = field(default_factory=list)
    profile_name: str | None = None
    messaging_service_sid: str | None = None
    opt_out_type: str | None = None  # STOP | START | HELP when Advanced Opt-Out is on
    received_at: datetime | None = None  # Twilio's time, for messages recovered later (reconcile)


def _shaped(form: Form, name: str, shape: re.Pattern[str], what: str) -> str | None:
    """The field's value if present; PayloadError if it is present but not of Twilio's shape."""
    value = _first(form, name)
    if value is None:
        return None
    if not shape.fullmatch(value):
        raise PayloadError(f"{name} must be {what}")
    return value


def _message_sid(form: Form, *names: str) -> str | None:
    """The first of `names` present; every one present must be a message SID (SM/MM + 32 hex)."""
    found = None
    for name in names:
        value = _shaped(form, name, MESSAGE_SID, "SM or MM followed by 32 hex characters")
        found = found or value
    return found


def _account(form: Form, ours: str | None) -> str | None:
    account = _shaped(form, "AccountSid", ACCOUNT_SID, "AC followed by 32 hex characters")
    if ours and account is not None and account.lower() != ours.lower():
        raise PayloadError("AccountSid is not this inbox's Twilio account")
    return account


def _media_url(url: str, n: int) -> str:
    """An http(s) URL; one of Twilio's own (`…/Media/<sid>`) must name a media SID (ME + 32 hex)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or any(c.isspace() for c in url):
        raise PayloadError(f"MediaUrl{n} must be an http(s) URL")
    segments = parts.path.rstrip("/").split("/")
    if "Media" in segments[:-1] and not MEDIA_SID.fullmatch(segments[segments.index("Media") + 1]):
        raise PayloadError(f"MediaUrl{n} must end in a media SID (ME followed by 32 hex characters)")
    return url


def parse_inbound(form: Form, account_sid: str | None = None) -> InboundPayload:
    """Reads only the fields the inbox needs; Twilio adds fields without notice.

    `account_sid`, when given, is ours: a form from any other account is refused."""
    sid = _message_sid(form, "MessageSid", "SmsMessageSid", "SmsSid")
    from_addr, to_addr = _first(form, "From"), _first(form, "To")
    if not sid or not from_addr or not to_addr:
        raise PayloadError("MessageSid, From and To are required")
    account = _account(form, account_sid)
    service = _shaped(form, "MessagingServiceSid", SERVICE_SID, "MG followed by 32 hex characters")
    raw_count = _first(form, "NumMedia") or "0"
    if not raw_count.isascii() or not raw_count.isdigit() or int(raw_count) > MAX_MEDIA:
        raise PayloadError(f"NumMedia must be a number from 0 to {MAX_MEDIA}")
    media = []
    for n in range(int(raw_count)):
        url = _first(form, f"MediaUrl{n}")
        if url:
            media.append({"url": _media_url(url, n), "content_type": _first(form, f"MediaContentType{n}") or ""})
    return InboundPayload(
        sid=sid,
        account_sid=account,
        from_addr=from_addr,
        to_addr=to_addr,
        body=_first(form, "Body") or "",
        media=media,
        profile_name=_first(form, "ProfileName") or None,
        messaging_service_sid=service,
        opt_out_type=(_first(form, "OptOutType") or "").upper() or None,
    )


@dataclass(frozen=True)
class StatusPayload:
    sid: str
    status: str
    error_code: int | None
    account_sid: str | None
    # The sender Twilio used: how the inbox learns the number a Messaging Service chose (None when
    # absent or not a phone address, e.g. an alphanumeric sender ID, which nobody can write back to)
    from_addr: str | None = None


def parse_status(form: Form, account_sid: str | None = None) -> StatusPayload:
    sid = _message_sid(form, "MessageSid", "SmsSid")
    status = _first(form, "MessageStatus") or _first(form, "SmsStatus")
    if not sid or not status:
        raise PayloadError("MessageSid and MessageStatus are required")
    account = _account(form, account_sid)
    _shaped(form, "MessagingServiceSid", SERVICE_SID, "MG followed by 32 hex characters")
    raw_code = _first(form, "ErrorCode") or None
    if raw_code is not None and not ERROR_CODE.fullmatch(raw_code):
        raise PayloadError("ErrorCode must be Twilio's numeric error code")
    error_code = int(raw_code) if raw_code else None
    sender = _first(form, "From") or ""
    from_addr = sender if E164.fullmatch(sender.removeprefix("whatsapp:")) else None
    return StatusPayload(
        sid=sid, status=status.lower(), error_code=error_code, account_sid=account, from_addr=from_addr
    )
