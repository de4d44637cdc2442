"""The API's JSON bodies are read strictly into their Structs, and a body of the wrong shape gets
the code and sentence of its field, never msgspec's own words (inbox.web.request_body)."""

from __future__ import annotations

import pytest

from inbox.web.bodies import ConsentChange, ConversationChange, PreferencesChange, ReplyBody
from inbox.web.errors import ApiError
from inbox.web.request_body import MAX_JSON_DEPTH, decode_object, read_body


@pytest.mark.parametrize(
    "raw", [b"", b"nope", b'{"body": "\xff"}', b"[1]", b'"text"', b"[" * (MAX_JSON_DEPTH + 1) + b"]" * 40]
)
def test_what_is_not_a_json_object_is_invalid_json(raw: bytes) -> None:
    with pytest.raises(ApiError) as refused:
        decode_object(raw)
    assert (refused.value.status_code, refused.value.code) == (400, "invalid_json")


@pytest.mark.parametrize(
    ("body_type", "payload", "code"),
    [
        (ConversationChange, {"assignee_id": "1"}, "unknown_staff"),  # lax mode would make it 1
        (ConversationChange, {"assignee_id": True}, "unknown_staff"),
        (ConversationChange, {"status": None}, "invalid_status"),
        (PreferencesChange, {"sound": 0}, "invalid_preference"),  # lax mode would make it false
        (PreferencesChange, {"sound": "true"}, "invalid_preference"),
        (PreferencesChange, {"volume": 11}, "unknown_preference"),
        (ConsentChange, {"channel": "sms", "action": "opt_out"}, "note_required"),
        (ConsentChange, {"channel": "fax", "action": "opt_out", "note": "asked"}, "invalid_consent"),
        (ReplyBody, {"media_ids": [1, "2"]}, "invalid_media_ids"),
        (ReplyBody, {"content_variables": {"1": 5}}, "invalid_template"),
    ],
)
def test_a_field_of_the_wrong_shape_gets_its_code(body_type: type, payload: dict, code: str) -> None:
    with pytest.raises(ApiError) as refused:
        read_body(payload, body_type)
    assert (refused.value.status_code, refused.value.code) == (422, code)
    assert "Expected" not in refused.value.detail and "`" not in refused.value.detail


def test_a_long_unknown_preference_is_named_shortened() -> None:
    with pytest.raises(ApiError) as refused:
        read_body({"x" * 100: True}, PreferencesChange)
    assert "x" * 40 + "…" in refused.value.detail and "x" * 41 not in refused.value.detail


def test_a_body_of_the_right_shape_is_its_struct() -> None:
    change = read_body({"assignee_id": None, "ignored": 1}, ConversationChange)
    assert change.assignee_id is None
    assert read_body({"sound": True}, PreferencesChange).changes() == {"sound": True}
