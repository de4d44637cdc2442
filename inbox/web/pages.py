"""Server-rendered pages. Customer text never reaches them unescaped: the templates autoescape,
and everything the scripts add goes through `textContent`."""

from __future__ import annotations

import re
from typing import Any

from litestar import HttpMethod, Request, Response, route
from litestar.response import Redirect, Template

from inbox import conversations
from inbox.web.auth import page_identity, refusal
from inbox.web.services import AppSettings, Db


# HEAD: the same answer without a body
@route("/", http_method=[HttpMethod.GET, HttpMethod.HEAD], include_in_schema=False)
async def inbox_page(
    request: Request[Any, Any, Any], db: Db, settings: AppSettings
) -> Template | Redirect | Response[Any]:
    identity = await page_identity(request)
    if isinstance(identity, Response):
        return identity
    wanted = request.query_params.get("c")  # the conversation a link opens
    view = None
    if wanted is None or re.fullmatch(r"[0-9]{1,18}", wanted):
        view = await conversations.inbox_view(db, None if wanted is None else int(wanted))
    if view is None:
        return refusal(
            request, 404, "not_found", "There is no such conversation: the link may be mistyped or out of date."
        )
    return Template(
        "inbox.html",
        context={
            "staff": identity.staff,
            "csrf_token": identity.csrf_token,
            "business_name": settings.business_name,
            "timezone": settings.timezone,  # "Send later" reads its date and time there (schedule.js)
            "last_event_id": view.last_event_id,
            "team": view.team,
        },
    )
