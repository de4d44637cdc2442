"""Phone addresses as Twilio writes them: `+15551234567` for SMS, `whatsapp:+15551234567`."""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone

from inbox.models import Channel

WHATSAPP_PREFIX = "whatsapp:"


def channel_of(address: str) -> Channel:
    return Channel.WHATSAPP if address.startswith(WHATSAPP_PREFIX) else Channel.SMS


def bare(address: str) -> str:
    """The number without its `whatsapp:` prefix."""
    return address.removeprefix(WHATSAPP_PREFIX)


@functools.lru_cache(maxsize=1024)
def _parsed(number: str) -> phonenumbers.PhoneNumber:
    """phonenumbers.parse(number, None), once for a number that to_e164 and then time_zone_of
    both read (a new customer's first webhook). Callers only read the result."""
    return phonenumbers.parse(number, None)


@functools.lru_cache(maxsize=65536)  # customers write again and again; parsing is the costly part
def to_e164(address: str) -> str:
    """E.164 where the number parses as possible; otherwise what the carrier gave, unchanged.

    `is_possible_number`, not `is_valid_number`: fictional and newly allocated ranges fail the
    latter, and a customer's message must never be refused for it.
    """
    number = bare(address).strip()
    try:
        parsed = _parsed(number if number.startswith("+") else "+" + number)
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


@functools.lru_cache(maxsize=65536)
def time_zone_of(e164: str) -> str | None:
    """The customer's likely IANA time zone from their number (phonenumbers' prefix data), or None.

    A number whose prefix spans several zones (an Australian mobile) gets its country's main
    one, the zone of the country's example landline, when that is among them; a number the data
    does not know (a fictional UK drama range) gets its country's zone when the country has one."""
    try:
        number = _parsed(bare(e164))
    except phonenumbers.NumberParseException:
        return None
    zones = [zone for zone in timezone.time_zones_for_number(number) if zone != "Etc/Unknown"]
    if len(zones) == 1:
        return zones[0]
    main = _main_zone(number.country_code)
    if not zones:
        return main if _one_clock(number) else None
    return main if main in zones else zones[0]


def _one_clock(number: phonenumbers.PhoneNumber) -> bool:
    """Whether every zone of the number's country shows the same time now (the UK's four do;
    the United States' do not)."""
    now = datetime.now(UTC)
    quarter = now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0)
    return _one_clock_at(number.country_code, quarter)


@functools.lru_cache(maxsize=512)
def _one_clock_at(country_code: int, quarter: datetime) -> bool:
    """_one_clock for one country, in the quarter hour starting at `quarter`. Clocks change on
    quarter hours of UTC, so the answer holds for the whole quarter; cached, because loading a
    country's zones (the United States has dozens) costs more than the rest of a webhook."""
    country_zones = getattr(timezone, "_country_level_time_zones_for_number", None)
    example = phonenumbers.PhoneNumber(country_code=country_code, national_number=0)
    zones = [zone for zone in (country_zones(example) if country_zones else ()) if zone != "Etc/Unknown"]
    if not zones:
        return False
    try:
        return len({quarter.astimezone(ZoneInfo(zone)).utcoffset() for zone in zones}) == 1
    except ZoneInfoNotFoundError:
        return False


@functools.lru_cache(maxsize=512)
def _main_zone(country_code: int) -> str | None:
    region = phonenumbers.region_code_for_country_code(country_code)
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.FIXED_LINE)
    if example is None:
        return None
    zones = [zone for zone in timezone.time_zones_for_number(example) if zone != "Etc/Unknown"]
    return zones[0] if len(zones) == 1 else None
