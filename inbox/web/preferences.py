"""The signed-in person's own preferences (inbox/preferences.py).

    PATCH /api/me/preferences   {"desktop_notifications": bool, "sound": bool} (either or both)
                                200 with every preference; 422 for an unknown key or a value that
                                is not true/false; anyone signed in, for themselves only

`GET /api/me` (inbox/web/api.py) carries them as `preferences`.
"""

from __future__ import annotations

from typing import Annotated

from litestar import patch
from litestar.di import NamedDependency, Provide

from inbox import preferences
from inbox.accounts import StaffMember
from inbox.web.api_docs import errors
from inbox.web.auth import api_staff
from inbox.web.bodies import ONLY_ITS_FIELDS, PreferencesChange
from inbox.web.request_body import ApiRequest
from inbox.web.services import Db

Staff = NamedDependency[StaffMember]


@patch(
    "/api/me/preferences",
    dependencies={"staff": Provide(api_staff)},
    responses=errors(401, 403, 422),
    request_class=ApiRequest,  # the body is read strictly into PreferencesChange
)
async def update_my_preferences(
    db: Db, staff: Staff, data: Annotated[PreferencesChange, ONLY_ITS_FIELDS]
) -> preferences.Preferences:
    """Change your own preferences: desktop notifications and sound for new messages."""
    return await preferences.update_preferences(db, staff.id, data.changes())


route_handlers = [update_my_preferences]
