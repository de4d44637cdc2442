"""Phone addresses as Twilio writes them: `+15551234567` for SMS, `whatsapp:+15551234567`."""

from __future__ import annotations

import functools
import re

import phonenumbers

from inbox.models import Channel

WHATSAPP_PREFIX = "whatsapp:"


def channel_of(address: str) -> Channel:
    return Channel.WHATSAPP if address.startswith(WHATSAPP_PREFIX) else Channel.SMS


def bare(address: str) -> str:
    """The number without its `whatsapp:` prefix."""
    return address.removeprefix(WHATSAPP_PREFIX)


@functools.lru_cache(maxsize=65536)  # customers write again and again; parsing is the costly part
def to_e164(address: str) -> str:
    """E.164 where the number parses as possible; otherwise what the carrier gave, unchanged.

    `is_possible_number`, not `is_valid_number`: fictional and newly allocated ranges fail the
    latter, and a customer's message must never be refused for it.
    """
    number = bare(address).strip()
    try:
        parsed = phonenumbers.parse(number if number.startswith("+") else "+" + number, None)
    except phonenumbers.NumberParseException:
        return number
    if phonenumbers.is_possible_number(parsed):
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return number


_TYPED = re.compile(r"^[+(]?[0-9][0-9 ().\-/]{3,30}$")


def typed_number(text: str, default_country: str = "US") -> str | None:
    """E.164 for a number as people type it: `(415) 555-0123`, `415.555.0123`, `+44 7700 900123`,
    `whatsapp:+1…`; numbers without `+country` are read in `default_country`. None if it is not one."""
    raw = bare(text.strip())
    if not _TYPED.match(raw):
        return None
    try:
        parsed = phonenumbers.parse(raw, None if raw.startswith("+") else default_country)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def address_for(channel: str, e164: str) -> str:
    return f"{WHATSAPP_PREFIX}{e164}" if channel == Channel.WHATSAPP else e164


def mask(address: str | None) -> str:
    """For logs: only the last four digits survive."""
    if not address:
        return ""
    number = bare(address)
    return "…" + number[-4:] if len(number) > 4 else "…"
