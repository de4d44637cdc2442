"""Server-rendered pages. Customer text never reaches them unescaped: the templates autoescape,
and everything the scripts add goes through `textContent`."""

from __future__ import annotations

import re
from typing import Any

from litestar import HttpMethod, Request, Response, route
from litestar.response import Redirect, Template

from inbox import accounts, store
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
    wanted = request.query_params.get("c")
    async with db.read() as session:
        last_event_id = await store.latest_event_id(session)
        team = [
            {"id": row.id, "name": row.name or row.email.split("@")[0]}
            for row in await accounts.list_staff(session)
            if row.enabled
        ]
        missing = wanted is not None and not (
            re.fullmatch(r"[0-9]{1,18}", wanted) and await store.conversation_exists(session, int(wanted))
        )
    if missing:
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
            "last_event_id": last_event_id,
            "team": sorted(team, key=lambda member: member["name"].casefold()),
        },
    )
