"""The approved WhatsApp templates managers register, which staff may send outside the 24-hour window.

await registered(db)                                  -> [RegisteredTemplate], by name
await register(db, name=, content_sid=, body=, variables=, created_by=)   (or TemplateRefused)
await remove(db, template_id)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import delete, select

from inbox.models import WhatsAppTemplate
from inbox.outbound import MAX_TEMPLATE_VARIABLES
from inbox.refusals import Refused, Why
from inbox.twilio.payloads import CONTENT_SID

if TYPE_CHECKING:
    from inbox.db import Database

MAX_VARIABLE_NAME = 100  # characters


class TemplateRefused(Refused):
    """A template the inbox will not register."""


@dataclass(frozen=True)
class RegisteredTemplate:
    id: int
    name: str
    content_sid: str
    body: str  # the approved text, with {{1}} placeholders
    variables: list[str]  # names of the placeholders, in order


async def registered(db: Database) -> list[RegisteredTemplate]:
    async with db.read() as session:
        rows = (await session.execute(select(WhatsAppTemplate).order_by(WhatsAppTemplate.name))).scalars()
        return [RegisteredTemplate(t.id, t.name, t.content_sid, t.body, t.variables) for t in rows]


async def register(
    db: Database, *, name: str, content_sid: str, body: str, variables: list[str], created_by: int
) -> None:
    if len(variables) > MAX_TEMPLATE_VARIABLES or any(len(v) > MAX_VARIABLE_NAME for v in variables):
        raise TemplateRefused(
            Why.INVALID,
            "too_many_variables",
            f"A template has at most {MAX_TEMPLATE_VARIABLES} variables, "
            f"each named in at most {MAX_VARIABLE_NAME} characters.",
        )
    if not name or not CONTENT_SID.fullmatch(content_sid):
        raise TemplateRefused(
            Why.INVALID,
            "invalid_template",
            "A template needs a name and its Content SID (HX followed by 32 hex characters).",
        )
    async with db.write() as session:
        if await session.scalar(select(WhatsAppTemplate.id).where(WhatsAppTemplate.content_sid == content_sid)):
            raise TemplateRefused(Why.CONFLICT, "template_exists", "That template is already registered.")
        session.add(
            WhatsAppTemplate(name=name, content_sid=content_sid, body=body, variables=variables, created_by=created_by)
        )
        await session.commit()


async def remove(db: Database, template_id: int) -> None:
    """Removing a template that is not there changes nothing."""
    async with db.write() as session:
        await session.execute(delete(WhatsAppTemplate).where(WhatsAppTemplate.id == template_id))
        await session.commit()
