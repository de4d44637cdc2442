"""Signature checks through our code path, against twilio-python's own published test vectors."""

from __future__ import annotations

import pytest

from inbox.twilio.payloads import Form
from inbox.twilio.signature import SignatureChecker, sign, signed_url

# From twilio-python's tests/unit/test_request_validator.py.
VECTOR_TOKEN = "12345"
VECTOR_URI = "https://mycompany.com/myapp.php?foo=1&bar=2"
VECTOR_BODY = b"CallSid=CA1234567890ABCDE&Caller=%2B14158675309&Digits=1234&From=%2B14158675309&To=%2B18005551212"
VECTOR_SIGNATURE = "RSOYDt4T1cUTdK1PDd93/VVr8B8="
DUPLICATE_BODY = b"Sid=CA123&SidAccount=AC123&Digits=5678&Digits=1234"
DUPLICATE_SIGNATURE = "IK+Dwps556ElfBT0I3Rgjkr1wJU="


def test_published_vector_passes_through_our_form_parser() -> None:
    checker = SignatureChecker([VECTOR_TOKEN])
    assert checker.is_valid(VECTOR_URI, Form.parse(VECTOR_BODY), VECTOR_SIGNATURE)
    assert sign(VECTOR_TOKEN, VECTOR_URI, Form.parse(VECTOR_BODY)) == VECTOR_SIGNATURE


def test_repeated_keys_are_all_signed() -> None:
    form = Form.parse(DUPLICATE_BODY)
    assert form["Digits"] == ["5678", "1234"]
    assert SignatureChecker([VECTOR_TOKEN]).is_valid(VECTOR_URI, form, DUPLICATE_SIGNATURE)
    # A plain dict keeps one value per key and breaks the signature: the trap we avoid.
    last_value_only = {name: values[-1] for name, values in Form.parse(DUPLICATE_BODY).items()}
    assert not SignatureChecker([VECTOR_TOKEN]).is_valid(VECTOR_URI, last_value_only, DUPLICATE_SIGNATURE)


@pytest.mark.parametrize(
    ("uri", "signature"),
    [
        ("https://mycompany.com:1234/myapp.php?foo=1&bar=2", VECTOR_SIGNATURE),  # port removed on https
        ("http://mycompany.com:1234/myapp.php?foo=1&bar=2", "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="),
        (VECTOR_URI, "kvajT1Ptam85bY51eRf/AJRuM3w="),  # signed with :443 added
        ("http://mycompany.com/myapp.php?foo=1&bar=2", "0ZXoZLH/DfblKGATFgpif+LLRf4="),  # :80 added
    ],
)
def test_published_port_vectors(uri: str, signature: str) -> None:
    assert SignatureChecker([VECTOR_TOKEN]).is_valid(uri, Form.parse(VECTOR_BODY), signature)


def test_tampering_and_missing_signatures_fail() -> None:
    checker = SignatureChecker([VECTOR_TOKEN])
    tampered = Form.parse(VECTOR_BODY.replace(b"Digits=1234", b"Digits=1235"))
    assert not checker.is_valid(VECTOR_URI, tampered, VECTOR_SIGNATURE)
    assert not checker.is_valid(VECTOR_URI, Form.parse(VECTOR_BODY), None)
    assert not checker.is_valid(VECTOR_URI, Form.parse(VECTOR_BODY), "")
    assert not checker.is_valid(VECTOR_URI.replace("foo=1", "foo=2"), Form.parse(VECTOR_BODY), VECTOR_SIGNATURE)
    assert not SignatureChecker(["54321"]).is_valid(VECTOR_URI, Form.parse(VECTOR_BODY), VECTOR_SIGNATURE)
    assert not SignatureChecker([]).is_valid(VECTOR_URI, Form.parse(VECTOR_BODY), VECTOR_SIGNATURE)


def test_blank_values_count() -> None:
    body = b"A=1&Blank=&B=2"
    form = Form.parse(body)
    assert form["Blank"] == [""]
    signature = sign("tok", "https://x.test/hook", form)
    assert SignatureChecker(["tok"]).is_valid("https://x.test/hook", Form.parse(body), signature)
    assert not SignatureChecker(["tok"]).is_valid("https://x.test/hook", Form.parse(b"A=1&B=2"), signature)


def test_rotation_accepts_either_token() -> None:
    form = Form.parse(VECTOR_BODY)
    checker = SignatureChecker(["new-token", VECTOR_TOKEN])
    assert checker.is_valid(VECTOR_URI, form, VECTOR_SIGNATURE)
    assert checker.is_valid(VECTOR_URI, form, sign("new-token", VECTOR_URI, form))


def test_signed_url_uses_public_url_path_and_raw_query() -> None:
    assert signed_url("https://inbox.example.com/", "/webhooks/twilio/inbound", b"") == (
        "https://inbox.example.com/webhooks/twilio/inbound"
    )
    assert signed_url("https://inbox.example.com", "/webhooks/twilio/inbound", b"a=1&b=%20") == (
        "https://inbox.example.com/webhooks/twilio/inbound?a=1&b=%20"
    )


def test_a_signature_with_odd_characters_is_simply_invalid() -> None:
    checker = SignatureChecker([VECTOR_TOKEN])
    assert not checker.is_valid(VECTOR_URI, Form.parse(VECTOR_BODY), "RSOYDt4T1cUTdK1PDd93/VVr8B8é")
    assert not checker.is_valid(VECTOR_URI, Form.parse(VECTOR_BODY), "\x00" * 28)


def test_form_parser_reads_bodies_exactly_as_parse_qsl() -> None:
    """Form.parse only skips unquoting where nothing is quoted; what it reads must not differ."""
    import random
    from urllib.parse import parse_qsl

    def reference(body: bytes) -> dict[str, list[str]]:
        form: dict[str, list[str]] = {}
        for name, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
            form.setdefault(name, []).append(value)
        return form

    generator = random.Random(7)
    alphabet = "ab=&%+;2EF0é😀 "
    bodies = [
        b"",
        b"a",
        b"a=",
        b"=b",
        b"&&",
        b"a==b",
        b"a=1&a=2",
        b"a=%zz",
        b"a=%E2%82",
        b"a+b=c+d",
        b"a=1;b=2",
        "é=ü".encode(),
        b"Body=%F0%9F%98%80+hi&Body=&From=%2B14155550123",
        VECTOR_BODY,
        DUPLICATE_BODY,
    ]
    bodies += [
        "".join(generator.choice(alphabet) for _ in range(generator.randint(0, 14))).encode() for _ in range(5000)
    ]
    for body in bodies:
        assert dict(Form.parse(body)) == reference(body), body
