"""The JSON bodies the API takes, as msgspec Structs: handlers receive them as Litestar's `data`,
and the OpenAPI schema describes them from these classes.

A Struct holds a body's shape: which fields, of which JSON type, which are required, which
values a field may take (`Literal`). It is decoded strictly (inbox.web.request_body): "1" is not
an id, 0 is not false. The limits a person can run into (lengths, a template id's form) are the
domain's rules, refused there with a sentence a receptionist understands; `Described` only
writes them into the schema, from the domain's own constants.

Each Struct's `refusals` says, per field, the code and sentence a client gets when that field
has the wrong type, is missing or (UNKNOWN_FIELD) is not a field at all (inbox.web.errors);
they are the ones the domain gives for a wrong value of the same field.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

import msgspec
from litestar.openapi.spec import OpenAPIFormat
from litestar.params import Body as BodyOf
from litestar.params import KwargDefinition as Described
from msgspec import UNSET, UnsetType

from inbox import attachments, consent, outbound, outreach, quick_replies, team
from inbox.twilio.payloads import CONTENT_SID
from inbox.web.errors import UNKNOWN_FIELD, Refusal

Channel = Literal["sms", "whatsapp"]


class Body(msgspec.Struct, kw_only=True):
    refusals: ClassVar[dict[str, Refusal]] = {}


# What a handler's `data` adds to a change's schema: the domain refuses an empty change
# (`nothing_to_change`), and PreferencesChange (forbid_unknown_fields) refuses any other field.
AT_LEAST_ONE_FIELD = BodyOf(schema_extra={"min_properties": 1})
ONLY_ITS_FIELDS = BodyOf(schema_extra={"min_properties": 1, "additional_properties": False})


_CHANNEL = Refusal("invalid_channel", "channel must be sms or whatsapp.")
_TEMPLATE_ID = Refusal("invalid_template", "That template id is not valid (it starts with HX).")
_TEMPLATE_VARIABLES = Refusal("invalid_template", "Template variables must be text.")

Text = Annotated[str, Described(max_length=outbound.MAX_BODY)]
TemplateId = Annotated[str, Described(pattern=f"^{CONTENT_SID.pattern}$")]
TemplateVariables = Annotated[
    dict[str, str],
    Described(description=f'At most {outbound.MAX_TEMPLATE_VARIABLES}, by their numbers: {{"1": "Ana"}}.'),
]


class ReplyBody(Body):
    """Free text (`body`) or a registered WhatsApp template (`content_sid`, `content_variables`);
    `send_at` (ISO 8601 with its offset) schedules it; `media_ids` from POST /api/media attach
    files (the body may then be empty)."""

    body: Text | None = None
    channel: Channel | None = None
    content_sid: TemplateId | None = None
    content_variables: TemplateVariables | None = None
    send_at: Annotated[str, Described(format=OpenAPIFormat.DATE_TIME)] | None = None
    media_ids: Annotated[list[Annotated[int, Described(ge=1)]], Described(max_items=attachments.MAX_FILES)] | None = (
        None
    )

    refusals: ClassVar[dict[str, Refusal]] = {
        "body": Refusal("invalid_body", "body must be text."),
        "channel": _CHANNEL,
        "content_sid": _TEMPLATE_ID,
        "content_variables": _TEMPLATE_VARIABLES,
        "send_at": Refusal(
            "invalid_send_at", "send_at must be a date and time in ISO 8601, such as 2026-03-01T09:00:00+00:00."
        ),
        "media_ids": Refusal("invalid_media_ids", "media_ids must be a list of attachment ids."),
    }


class NewConversationBody(Body):
    """The number as typed (`to`), the channel, and free text (`body`) or a registered WhatsApp template."""

    to: Annotated[str, Described(max_length=outreach.MAX_TYPED, description="A phone number as typed.")]
    channel: Channel = "sms"
    body: Text | None = None
    content_sid: TemplateId | None = None
    content_variables: TemplateVariables | None = None

    refusals: ClassVar[dict[str, Refusal]] = {
        "to": Refusal("invalid_number", "Give the number to write to in `to`."),
        "channel": _CHANNEL,
        "body": Refusal("invalid_body", "body must be text."),
        "content_sid": _TEMPLATE_ID,
        "content_variables": _TEMPLATE_VARIABLES,
    }


class ConversationChange(Body):
    """Close or reopen (`status`) and/or give an owner (`assignee_id`, null for nobody)."""

    status: Literal["open", "closed"] | UnsetType = UNSET
    assignee_id: Annotated[int, Described(ge=1)] | UnsetType | None = UNSET

    refusals: ClassVar[dict[str, Refusal]] = {
        "status": Refusal("invalid_status", "status must be open or closed."),
        "assignee_id": Refusal("unknown_staff", "assignee_id must be a staff member's id or null."),
    }


class NoteBody(Body):
    """An internal note, shown to the team only."""

    body: Annotated[str, Described(min_length=1, max_length=team.MAX_NOTE)]

    refusals: ClassVar[dict[str, Refusal]] = {"body": Refusal("empty_body", "Write the note before saving it.")}


class CustomerChange(Body):
    """The customer's name and/or the team's notes about them (null clears)."""

    name: Annotated[str, Described(max_length=team.MAX_NAME)] | UnsetType | None = UNSET
    notes: Annotated[str, Described(max_length=team.MAX_CUSTOMER_NOTES)] | UnsetType | None = UNSET

    refusals: ClassVar[dict[str, Refusal]] = {
        "name": Refusal("invalid_name", "name must be text."),
        "notes": Refusal("invalid_notes", "notes must be text."),
    }


class ConsentChange(Body):
    """A consent change the customer asked for some other way, and how they asked."""

    channel: Channel
    action: Literal["opt_in", "opt_out"]
    note: Annotated[str, Described(min_length=1, max_length=consent.MAX_NOTE)]

    refusals: ClassVar[dict[str, Refusal]] = {
        "channel": Refusal("invalid_consent", "channel must be sms or whatsapp, action opt_in or opt_out."),
        "action": Refusal("invalid_consent", "channel must be sms or whatsapp, action opt_in or opt_out."),
        "note": Refusal("note_required", "Write a short note saying how the customer asked (1 to 1,000 characters)."),
    }


class QuickReplyBody(Body):
    """A saved reply: its title and text ({first_name}, {name}, {business_name} are filled in)."""

    title: Annotated[str, Described(min_length=1, max_length=quick_replies.MAX_TITLE)]
    body: Annotated[str, Described(min_length=1, max_length=quick_replies.MAX_BODY)]

    refusals: ClassVar[dict[str, Refusal]] = {
        "title": Refusal("invalid_title", "Give the saved reply a title."),
        "body": Refusal("empty_body", "Write the text of the saved reply."),
    }


class PreferencesChange(Body, forbid_unknown_fields=True):
    """The preferences to change (any others stay as they are): the keys of inbox.preferences.DEFAULTS."""

    desktop_notifications: bool | UnsetType = UNSET
    sound: bool | UnsetType = UNSET

    refusals: ClassVar[dict[str, Refusal]] = {
        "desktop_notifications": Refusal("invalid_preference", "desktop_notifications must be true or false."),
        "sound": Refusal("invalid_preference", "sound must be true or false."),
        UNKNOWN_FIELD: Refusal(
            "unknown_preference", "There is no preference {field!r}; the known ones are desktop_notifications, sound."
        ),
    }

    def changes(self) -> dict[str, bool]:
        return {name: value for name, value in msgspec.structs.asdict(self).items() if value is not UNSET}
