"""X-Twilio-Signature checks, through twilio-python's own RequestValidator.

The URL is rebuilt from INBOX_PUBLIC_URL + path + raw query, never from the Host header or
X-Forwarded-* (behind a TLS proxy the request arrives as plain http). Every token in force is
tried, so a rotation (TWILIO_AUTH_TOKEN_SECONDARY) drops no webhook.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from twilio.request_validator import RequestValidator


def signed_url(public_url: str, path: str, raw_query: bytes | str = b"") -> str:
    query = raw_query.decode("latin-1") if isinstance(raw_query, bytes) else raw_query
    return f"{public_url.rstrip('/')}{path}" + (f"?{query}" if query else "")


class MultiDict(Protocol):
    """A form with repeated keys (Litestar's FormMultiDict, werkzeug's MultiDict): `getall` is what
    RequestValidator uses to sign every value of a key."""

    def getall(self, key: str) -> list[str]: ...


# What RequestValidator accepts: a multi-dict, a plain mapping, or nothing (a JSON body's URL alone).
Form = MultiDict | Mapping[str, str | Sequence[str]] | None


class SignatureChecker:
    def __init__(self, tokens: Iterable[str]) -> None:
        self._validators = [RequestValidator(token) for token in tokens]

    @property
    def configured(self) -> bool:
        return bool(self._validators)

    def is_valid(self, url: str, form: Form, signature: str | None) -> bool:
        """`form` is a multi-dict (getall), so repeated keys and blank values all count.

        The common case (Twilio signed exactly this URL with the primary token) costs one HMAC;
        anything else goes through `validate`, which also tries the URL with and without its
        default port, so the answer is always the validator's own."""
        if not signature:  # RequestValidator raises TypeError on None
            return False
        first = self._validators[0] if self._validators else None
        if first is not None and hmac.compare_digest(_compute(first, url, form).encode(), signature.encode()):
            return True
        return any(bool(validator.validate(url, form, signature)) for validator in self._validators)


def sign(token: str, url: str, form: Form) -> str:
    """The signature Twilio would send (used by `inbox simulate`, the sandbox and the tests)."""
    return _compute(RequestValidator(token), url, form)


def _compute(validator: RequestValidator, url: str, form: Form) -> str:
    # twilio ships no types: compute_signature returns the base64 text of the HMAC.
    signature: str = validator.compute_signature(url, form)
    return signature
