"""Each person's own choices, kept server-side so they follow them from browser to browser.

    await preferences_of(db, staff_id)               -> Preferences {desktop_notifications, sound}
    await update_preferences(db, staff_id, changes)  -> the same, after the change (or PreferenceRefused)

Stored in `staff.preferences` (a JSON object). Only the keys of DEFAULTS may be written, each with
a value of its type; a key this version does not know is refused, never stored. A key already in
the column that this version does not know (written by a newer one) is kept as it is.

Anyone signed in may change their own preferences, receptionists included: they are nobody
else's business, so there is no manager's check here.
"""

from __future__ import annotations

from typing import Any

import msgspec
from sqlalchemy import select

from inbox.db import Database
from inbox.models import Staff
from inbox.refusals import Refused, Why

# A desktop notification and a short sound for a new message in a conversation that is yours or
# nobody's, while the inbox's tab is in the background. Both off until the person turns them on:
# a notification needs the browser's permission, asked for only on their click.
DEFAULTS: dict[str, bool] = {"desktop_notifications": False, "sound": False}


class Preferences(msgspec.Struct, kw_only=True):
    """Every known preference (the keys of DEFAULTS, in their order)."""

    desktop_notifications: bool
    sound: bool


class PreferenceRefused(Refused):
    """A preference change that names an unknown preference or a value of the wrong type."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(Why.INVALID, code, detail)


def with_defaults(stored: Any) -> dict[str, bool]:
    """Every known preference: the stored value where it has the right type, else the default."""
    stored = stored if isinstance(stored, dict) else {}
    return {
        key: value if type(value := stored.get(key)) is type(default) else default for key, default in DEFAULTS.items()
    }


def check(changes: dict[str, Any]) -> dict[str, bool]:
    """The changes, or PreferenceRefused (422) naming the first wrong key or value."""
    if not changes:
        raise PreferenceRefused("nothing_to_change", f"Give at least one of: {', '.join(DEFAULTS)}.")
    for key, value in changes.items():
        if key not in DEFAULTS:
            shown = key if len(key) <= 40 else key[:40] + "…"
            raise PreferenceRefused(
                "unknown_preference", f"There is no preference {shown!r}; the known ones are {', '.join(DEFAULTS)}."
            )
        if type(value) is not type(DEFAULTS[key]):
            raise PreferenceRefused("invalid_preference", f"{key} must be true or false.")
    return dict(changes)


async def preferences_of(db: Database, staff_id: int) -> Preferences:
    async with db.read() as session:
        stored = await session.scalar(select(Staff.preferences).where(Staff.id == staff_id))
    return Preferences(**with_defaults(stored))


async def update_preferences(db: Database, staff_id: int, changes: dict[str, Any]) -> Preferences:
    """Merges the changes into the stored preferences, in one transaction; the row is locked
    (PostgreSQL) so two tabs saving different keys at once both keep their change."""
    checked = check(changes)
    async with db.write() as session:
        stored = await session.scalar(select(Staff.preferences).where(Staff.id == staff_id).with_for_update())
        merged = {**(stored if isinstance(stored, dict) else {}), **checked}
        staff = await session.get(Staff, staff_id)
        if staff is None:  # the account was deleted after this request was let in
            raise LookupError(f"staff {staff_id} vanished")
        staff.preferences = merged  # a new dict: SQLAlchemy sees the JSON column change
        await session.commit()
    return Preferences(**with_defaults(merged))
