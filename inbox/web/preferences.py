"""The signed-in person's own preferences (inbox/preferences.py).

    PATCH /api/me/preferences   {"desktop_notifications": bool, "sound": bool} (either or both)
                                200 with every preference; 422 for an unknown key or a value that
                                is not true/false; anyone signed in, for themselves only

`GET /api/me` (inbox/web/api.py) carries them as `preferences`.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, patch
from litestar.di import NamedDependency, Provide
from litestar.openapi.spec import OpenAPIType, Schema

from inbox import preferences
from inbox.accounts import StaffMember
from inbox.web.api import json_object
from inbox.web.api_docs import errors, json_body
from inbox.web.auth import api_staff, runtime_of

Staff = NamedDependency[StaffMember]

PREFERENCES_BODY = json_body(
    Schema(
        type=OpenAPIType.OBJECT,
        min_properties=1,
        additional_properties=False,
        properties={key: Schema(type=OpenAPIType.BOOLEAN) for key in preferences.DEFAULTS},
    ),
    "The preferences to change (any others stay as they are).",
)


@patch(
    "/api/me/preferences",
    dependencies={"staff": Provide(api_staff)},
    responses=errors(401, 403, 422),
    operation_class=PREFERENCES_BODY,
)
async def update_my_preferences(request: Request[Any, Any, Any], staff: Staff) -> dict[str, bool]:
    """Change your own preferences: desktop notifications and sound for new messages."""
    payload = await json_object(request)
    return await preferences.update_preferences(runtime_of(request).db, staff.id, payload)


route_handlers = [update_my_preferences]
