"""Twilio's webhook forms, read into plain typed values (no database, no web framework)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import unquote_plus

MAX_MEDIA = 10


class PayloadError(ValueError):
    """A signed form that lacks what Twilio always sends."""


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


def parse_inbound(form: Form) -> InboundPayload:
    """Reads only the fields the inbox needs; Twilio adds fields without notice."""
    sid = _first(form, "MessageSid") or _first(form, "SmsMessageSid")
    from_addr, to_addr = _first(form, "From"), _first(form, "To")
    if not sid or not from_addr or not to_addr:
        raise PayloadError("MessageSid, From and To are required")
    try:
        num_media = min(int(_first(form, "NumMedia") or 0), MAX_MEDIA)
    except ValueError:
        num_media = 0
    media = []
    for n in range(num_media):
        url = _first(form, f"MediaUrl{n}")
        if url:
            media.append({"url": url, "content_type": _first(form, f"MediaContentType{n}") or ""})
    return InboundPayload(
        sid=sid,
        account_sid=_first(form, "AccountSid"),
        from_addr=from_addr,
        to_addr=to_addr,
        body=_first(form, "Body") or "",
        media=media,
        profile_name=_first(form, "ProfileName") or None,
        messaging_service_sid=_first(form, "MessagingServiceSid"),
        opt_out_type=(_first(form, "OptOutType") or "").upper() or None,
    )


@dataclass(frozen=True)
class StatusPayload:
    sid: str
    status: str
    error_code: int | None
    account_sid: str | None


def parse_status(form: Form) -> StatusPayload:
    sid = _first(form, "MessageSid") or _first(form, "SmsSid")
    status = _first(form, "MessageStatus") or _first(form, "SmsStatus")
    if not sid or not status:
        raise PayloadError("MessageSid and MessageStatus are required")
    raw_code = _first(form, "ErrorCode")
    try:
        error_code = int(raw_code) if raw_code else None
    except ValueError:
        error_code = None
    return StatusPayload(sid=sid, status=status.lower(), error_code=error_code, account_sid=_first(form, "AccountSid"))
