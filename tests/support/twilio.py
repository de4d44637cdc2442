"""Signed Twilio webhooks from raw form bodies on disk (tests/fixtures/twilio/*.txt)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import httpx

from inbox.twilio.signature import sign

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "twilio"
ACCOUNT_SID = "AC" + "1" * 32
AUTH_TOKEN = "2" * 32
SECONDARY_TOKEN = "3" * 32


def fixture_pairs(name: str, **overrides: str) -> list[tuple[str, str]]:
    """The fixture's (name, value) pairs, in order, repeats kept, with fields replaced or added."""
    pairs = parse_qsl((FIXTURES / f"{name}.txt").read_text().strip(), keep_blank_values=True)
    replaced = [(k, overrides[k]) if k in overrides else (k, v) for k, v in pairs]
    existing = {k for k, _ in pairs}
    return replaced + [(k, v) for k, v in overrides.items() if k not in existing]


def signature_for(url: str, pairs: list[tuple[str, str]], token: str = AUTH_TOKEN) -> str:
    from inbox.twilio.payloads import Form

    return sign(token, url, Form.parse(urlencode(pairs).encode()))


def post_twilio(
    base_url: str,
    name: str,
    *,
    public_url: str | None = None,
    path: str = "/webhooks/twilio/inbound",
    token: str = AUTH_TOKEN,
    signature: str | None = None,
    **overrides: str,
) -> httpx.Response:
    """Signs the fixture for `public_url` (default: `base_url`) as Twilio would, and posts it."""
    pairs = fixture_pairs(name, **overrides)
    url = (public_url or base_url).rstrip("/") + path
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    headers["X-Twilio-Signature"] = signature if signature is not None else signature_for(url, pairs, token)
    return httpx.post(base_url.rstrip("/") + path, content=urlencode(pairs), headers=headers, timeout=15)
